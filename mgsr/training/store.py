"""A prepared training set: every image decoded and resized once, stored as an uncompressed uint8 array.

Why: the patch stream crops 128x128 pieces at random from thousands of images, so decoding a PNG and running the
float64 MATLAB bicubic for every patch costs hundreds of milliseconds (a cache of decoded images never hits with a
random permutation). Here each image is decoded once by ``mgsr data prepare``, resized as the recipe's
``data.target_megapixels`` asks (the same :func:`mgsr.training.training_images.load_rgb_uint8` the raw stream uses,
so the pixels are identical) and written as one ``.npy`` (H, W, 3) uint8 file that the stream memory-maps: a patch
then reads only its own rows.

Layout of a store folder::

    manifest.json        format, target_megapixels, images (in stream order), skipped
    arrays/<sha>.npy     one per distinct source content (first 20 hex of its SHA-256)
    readers/*.json       the arrays each running reader holds (see :mod:`mgsr.training.store_readers`)

Robustness: each array is written to a temporary name and renamed; the manifest is rewritten atomically every few
seconds and at the end, listing only finished arrays, so an interrupted run leaves a usable (partial) store and the
next run continues. A re-run decodes only sources whose path, size or modification time changed (and whose content
hash changed).

Versions: an array's name is its source's content hash, so a rebuild never rewrites an array with other pixels; it
writes a new manifest, then removes only the arrays that neither the new manifest nor a live reader
(``open_store(..., hold=True)``) lists. A run reads the version it loaded, whatever rebuilds happen meanwhile.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mgsr.errors import DataError, MgsrError
from mgsr.io.atomic import atomic_file, atomic_path
from mgsr.io.images import IMAGE_SUFFIXES
from mgsr.training.store_readers import READERS, die_with_parent, held_arrays, release_hold, write_hold
from mgsr.training.training_images import image_folders, load_rgb_uint8  # the raw stream's decoder

MANIFEST = "manifest.json"
ARRAYS = "arrays"
FORMAT = "mgsr-prepared-images"
VERSION = 1
#: seconds between manifest rewrites while preparing (what an interruption can lose)
CHECKPOINT_EVERY = 10.0
#: how often a reader loads the manifest again when a rebuild replaced it while it registered
HOLD_TRIES = 20


class StoreError(DataError):
    """A prepared store cannot be read or written as asked (a training-data error: exit code 8)."""


@attrs.frozen
class StoredImage:
    """One prepared image: its array file and where it came from (``sha256``: the source file's content)."""

    array_path: Path
    source: str
    height: int
    width: int
    sha256: str = ""

    def array(self) -> np.ndarray:
        """The (H, W, 3) uint8 pixels, memory-mapped (read-only): a crop reads only its rows."""
        try:
            return np.load(self.array_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"cannot read the prepared array {self.array_path} (of {self.source}): {exc}; it was "
                f"removed or damaged outside mgsr while the store was read; run `mgsr data prepare` again"
            ) from None


@attrs.frozen
class Store:
    """An opened store folder; ``hold`` is this process's reader record when opened with ``hold=True``."""

    folder: Path
    target_megapixels: float | None
    images: tuple[StoredImage, ...]
    skipped: tuple[tuple[str, str], ...]
    hold: Path | None = None

    def release(self) -> None:
        """Stop holding this version's arrays before the process ends (it does at exit anyway): a later
        rebuild may then remove the ones the store no longer lists."""
        release_hold(self.hold)


def is_store(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is a prepared store (has a manifest) rather than a folder of image files."""
    return (Path(folder) / MANIFEST).is_file()


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"cannot read the store manifest {path} ({exc}); run `mgsr data prepare` again into a new folder"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StoreError(f"{path} is not an mgsr prepared-image manifest (format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise StoreError(
            f"{path} has store version {data.get('version')}, this mgsr reads version {VERSION}; "
            f"run `mgsr data prepare` again"
        )
    return data


def open_store(folder: str | os.PathLike[str], *, hold: bool = False) -> Store:
    """Read a store's manifest; the arrays are opened only when a patch needs them.

    ``hold=True`` (a training run) records this process as a reader of the version loaded, so that a rebuild
    of the store meanwhile keeps its arrays until the process ends or :meth:`Store.release` is called.
    """
    folder = Path(folder)
    if not hold:
        return _checked(_parsed_store(folder, _read_manifest(folder)))
    record = None
    for _ in range(HOLD_TRIES):
        data = _read_manifest(folder)
        store = _parsed_store(folder, data)
        record = write_hold(folder, (image.array_path.name for image in store.images), record)
        if record is None:  # a read-only store: nobody rebuilds it under us
            return _checked(store)
        if _read_manifest(folder) == data:  # a rebuild after this point sees the record (see store_readers)
            return _checked(attrs.evolve(store, hold=record))
    release_hold(record)
    raise StoreError(
        f"store {folder} was rebuilt {HOLD_TRIES} times while it was being opened; wait for the "
        f"`mgsr data prepare` that writes it to finish"
    )


def _parsed_store(folder: Path, data: dict[str, Any]) -> Store:
    """The store a manifest describes (nothing on disk checked yet)."""
    try:
        images = tuple(
            StoredImage(
                folder / ARRAYS / e["array"], e["source"], int(e["height"]), int(e["width"]), str(e.get("sha256", ""))
            )
            for e in data["images"]
        )
        skipped = tuple((s["source"], s["reason"]) for s in data.get("skipped", []))
        megapixels = data["target_megapixels"]
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"{folder / MANIFEST}: malformed entry ({type(exc).__name__}: {exc}); "
            f"run `mgsr data prepare` again into a new folder"
        ) from None
    return Store(folder, megapixels, images, skipped)


def _checked(store: Store) -> Store:
    """``store``, once every array it lists is found on disk."""
    missing = [image.array_path for image in store.images if not image.array_path.is_file()]
    if missing:
        release_hold(store.hold)
        raise StoreError(
            f"store {store.folder}: {len(missing)} array file(s) listed in the manifest are missing "
            f"(first: {missing[0]}); run `mgsr data prepare` again to restore them"
        )
    return store


@attrs.frozen
class PrepareReport:
    """What a ``prepare`` run did."""

    store: Store
    decoded: int
    reused: int
    skipped: tuple[tuple[str, str], ...]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _prepare_one(source: str, arrays: str, megapixels: float | None, known: dict[str, Any] | None) -> dict[str, Any]:
    """Decode, resize and store one image (runs in a worker process); the manifest entry or a skip record."""

    path = Path(source)
    try:
        size, mtime = _stat(path)
        sha = _file_sha256(path)
    except OSError as exc:
        return {"source": source, "reason": f"unreadable ({exc.strerror or exc})"}
    entry: dict[str, Any] = {
        "source": source,
        "size": size,
        "mtime_ns": mtime,
        "sha256": sha,
        "array": f"{sha[:20]}.npy",
    }
    target = Path(arrays) / entry["array"]
    if known is not None and known.get("sha256") == sha and target.is_file():  # touched, not changed
        return {**entry, "height": known["height"], "width": known["width"], "reused": True}
    try:
        rgb = load_rgb_uint8(path, megapixels)
    except MgsrError as exc:
        return {"source": source, "size": size, "mtime_ns": mtime, "reason": f"unreadable ({exc})"}
    with atomic_file(target) as fh:
        np.save(fh, rgb, allow_pickle=False)
    return {**entry, "height": int(rgb.shape[0]), "width": int(rgb.shape[1])}


def _split(
    files: Sequence[str], old: dict[str, dict[str, Any]], arrays: Path
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The manifest entries still valid (same path, size and mtime, array present) and the sources to decode."""
    done: dict[str, dict[str, Any]] = {}
    todo: list[str] = []
    for source in files:
        entry = old.get(source)
        try:
            unchanged = entry is not None and _stat(Path(source)) == (entry.get("size"), entry.get("mtime_ns"))
        except OSError:
            unchanged = False
        if entry is not None and unchanged and ("reason" in entry or (arrays / entry["array"]).is_file()):
            done[source] = entry
        else:
            todo.append(source)
    return done, todo


@attrs.frozen
class Pending:
    """What :func:`prepare` would do to a store now, found from file sizes and mtimes alone (nothing decoded)."""

    images: int  # images the store lists now
    to_decode: int  # sources new or changed since (a touched but unchanged file counts: its hash decides later)
    removed: int  # sources the store lists that are gone

    @property
    def up_to_date(self) -> bool:
        return not self.to_decode and not self.removed


def pending(sources: Sequence[str | os.PathLike[str]], folder: str | os.PathLike[str]) -> Pending:
    """Compare the store ``folder`` (possibly absent) with the images in ``sources``, read-only.

    Why: a caller (the trainer, ``--dry-run``) says "up to date" or "N to prepare" without taking a lock or
    decoding.  Raises StoreError when the manifest is unreadable, DataError when a source folder is gone.
    """
    folder = Path(folder)
    files = [str(p.resolve()) for p in image_folders(sources)]
    if not is_store(folder):
        return Pending(0, len(files), 0)
    manifest = _read_manifest(folder)
    old = {e["source"]: e for e in manifest.get("images", []) + manifest.get("skipped", [])}
    _, todo = _split(files, old, folder / ARRAYS)
    return Pending(len(manifest.get("images", [])), len(todo), len(set(old) - set(files)))


def _init_worker(parent: int) -> None:
    """Set up a decoding worker: it ends with ``parent`` (a kill -9 of the preparation leaves no worker behind
    holding the store's lock), and decodes on one thread."""
    die_with_parent(parent)
    import torch

    torch.set_num_threads(1)  # one process per core already


def check_preparation(
    sources: Sequence[str | os.PathLike[str]], folder: Path, target_megapixels: float | None
) -> list[str]:
    """The images of ``sources`` (resolved paths), or the StoreError :func:`prepare` would raise for them or for
    ``folder`` (a file, a folder that is no store, a store of another size); reads only, takes no lock, so a
    command can refuse before it creates anything (``mgsr data prepare``'s lock file included)."""
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a folder; give a new or empty folder for the store")
    files = [str(p.resolve()) for p in image_folders(sources)]
    if not files:
        raise StoreError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, sources))}; nothing to prepare"
        )
    _previous_entries(folder, target_megapixels)
    return files


def prepare(
    sources: Sequence[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    *,
    target_megapixels: float | None = None,
    workers: int | None = None,
    progress: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> PrepareReport:
    """Make or update the store ``folder`` from the images in the ``sources`` folders (searched recursively).

    Images are listed in the raw stream's order (so a store and its folders give
    the same patches); ``workers`` processes decode in parallel (default: all
    cores; 0 decodes here).  Raises StoreError when ``folder`` holds a store
    prepared with another ``target_megapixels``.
    """
    folder = Path(folder)
    files = check_preparation(sources, folder, target_megapixels)
    old = _previous_entries(folder, target_megapixels)
    arrays = folder / ARRAYS
    try:
        arrays.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {folder} ({exc.strerror or exc})") from None

    done, todo = _split(files, old, arrays)
    order = {source: i for i, source in enumerate(files)}

    def write_manifest() -> None:
        _write_manifest(folder, target_megapixels, sorted(done.values(), key=lambda e: order[e["source"]]))

    write_manifest()  # before the first array: a store killed at any moment from here on is a (partial) store
    decoded = _decode_all(todo, arrays, target_megapixels, old, done, write_manifest, workers, progress, on_skip)
    _remove_orphans(folder, {e["array"] for e in done.values() if "array" in e and "reason" not in e})
    store = open_store(folder)
    return PrepareReport(store, decoded, len(store.images) - decoded, store.skipped)


def _previous_entries(folder: Path, target_megapixels: float | None) -> dict[str, dict[str, Any]]:
    """The entries (images and skips, by source) of the store already in ``folder``: none for a new folder or
    one an interrupted first run left; an error for a store of another size or a folder that is no store."""
    if is_store(folder):
        manifest = _read_manifest(folder)
        if manifest.get("target_megapixels") != target_megapixels:
            raise StoreError(
                f"{folder} was prepared with target_megapixels = {manifest.get('target_megapixels')}, "
                f"not {target_megapixels}; prepare into another folder (the recipe's "
                f"data.target_megapixels must match the store's)"
            )
        return {e["source"]: e for e in manifest.get("images", []) + manifest.get("skipped", [])}
    if folder.exists() and not _interrupted_start(folder):
        raise StoreError(f"{folder} exists, is not empty and is not a store; choose a new or empty folder")
    return {}


def _write_manifest(folder: Path, target_megapixels: float | None, entries: list[dict[str, Any]]) -> None:
    """Replace the manifest atomically with ``entries`` (in stream order), split into images and skips."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "target_megapixels": target_megapixels,
        "images": [{k: v for k, v in e.items() if k != "reused"} for e in entries if "reason" not in e],
        "skipped": [e for e in entries if "reason" in e],
    }
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _decode_all(
    todo: list[str],
    arrays: Path,
    target_megapixels: float | None,
    old: dict[str, dict[str, Any]],
    done: dict[str, dict[str, Any]],
    save: Callable[[], None],
    workers: int | None,
    progress: bool,
    on_skip: Callable[[str, str], None] | None,
) -> int:
    """Prepare each source in ``todo`` into ``done`` (by source), in ``workers`` processes or here for 0;
    ``save`` (the manifest) runs every CHECKPOINT_EVERY seconds and at the end, interrupted or not, so what is
    finished stays usable.  The number of images decoded (not reused)."""
    from tqdm import tqdm

    workers = (os.cpu_count() or 1) if workers is None else workers
    decoded = 0
    last = time.monotonic()
    bar = tqdm(total=len(todo), unit="img", desc="preparing", disable=not progress or not todo)
    pool = None
    if workers > 0:
        pool = concurrent.futures.ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        if pool is None:
            results = (_prepare_one(s, str(arrays), target_megapixels, old.get(s)) for s in todo)
        else:
            futures = [pool.submit(_prepare_one, s, str(arrays), target_megapixels, old.get(s)) for s in todo]
            results = (f.result() for f in concurrent.futures.as_completed(futures))
        for result in results:
            done[result["source"]] = result
            if "reason" in result:
                if on_skip is not None:
                    on_skip(result["source"], result["reason"])
            elif not result.get("reused"):
                decoded += 1
            bar.update(1)
            if time.monotonic() - last > CHECKPOINT_EVERY:
                save()
                last = time.monotonic()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        save()
    return decoded


def _interrupted_start(folder: Path) -> bool:
    """Whether ``folder`` holds only what a preparation killed before its first manifest leaves (``arrays/``,
    the manifest's temporary file), what remains of a store whose unreadable manifest was removed (its
    ``readers/`` too), or nothing: the next run may take it over."""
    for entry in folder.iterdir():
        ours = (
            entry.name in (ARRAYS, READERS)
            and entry.is_dir()
            or (entry.name.startswith(f".{MANIFEST}.") and entry.name.endswith(".tmp"))
        )
        if not ours:
            return False
    return True


def _remove_orphans(folder: Path, wanted: set[str]) -> None:
    """Drop arrays that neither the manifest just written (``wanted``) nor a live reader uses any more, and
    temporary files an interrupted run left.  The manifest must be written first (see store_readers)."""
    held = held_arrays(folder)
    if held is None:  # a reader's record is unreadable: what it reads is unknown, so keep everything
        return
    for path in (folder / ARRAYS).iterdir():
        if path.name not in wanted and path.name not in held:
            path.unlink(missing_ok=True)
