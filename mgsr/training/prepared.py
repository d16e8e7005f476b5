"""Raw training folders prepared once into a cached store, so ``--data RAWDIR`` is fast without a user step.

Why: a raw folder decodes a 2K PNG and runs the float64 bicubic for every patch (~1.5 patches/s per
worker), a store serves ~1000x that.  When the recipe resizes (``data.target_megapixels``), each raw folder
is prepared by :func:`mgsr.training.store.prepare` into ``<cache>/stores/<name>-<key>``, the key being the
folder's resolved path and the resize; the store's own manifest (sizes, mtimes, hashes) then decides what a
later run decodes again, so a changed folder is updated incrementally and an unchanged one not at all.
Folders that already are stores are used as they are; without a resize a folder stays raw (its images
would be stored at full size, several times the PNGs' bytes).

Processes preparing the same store (torchrun ranks, two runs) take turns on ``<store>.lock``; whoever comes
second finds it up to date.  The holder names itself in the lock file, so a waiting process says on stderr
whom it waits for, and gives up, naming the lock and that process, when the store stops changing for
LOCK_TIMEOUT seconds or the holder is gone while the lock stays held; the decoding workers end with the process
that started them (:func:`mgsr.training.store_readers.die_with_parent`), so a kill -9 frees the lock at once.
On a filesystem without ``flock`` (some network filesystems) the lock is the file
``<store>.lock.owner``, created exclusively and naming its process: a second process is then refused, naming
it, instead of waiting.  Without ``fcntl`` (Windows) there is no lock: run one process at a time there.
Runs reading the store meanwhile keep their version of it (see :mod:`mgsr.training.store_readers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import attrs

from mgsr.errors import DataError
from mgsr.io.cache import CACHE_ENV, cache_root
from mgsr.training.store import ARRAYS, MANIFEST, StoreError, is_store, open_store, pending, prepare
from mgsr.training.store_readers import lock_holders, process_alive
from mgsr.training.training_images import image_folders

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: sub-folder of the cache root that holds the prepared stores
STORES = "stores"
#: the states :func:`source_status` reports
STATES = ("raw", "store", "ready", "stale", "missing", "corrupt")
#: seconds a process waits for another's preparation of the same store without seeing the store change
LOCK_TIMEOUT = 600.0
#: seconds between the "still waiting" lines of a process waiting for a store's lock
WAIT_REPORT_EVERY = 60.0
#: seconds a store's lock may stay held after the process that took it is gone (its children ending meanwhile)
DEAD_HOLDER_GRACE = 5.0


def cached_store(folder: str | os.PathLike[str], megapixels: float) -> Path:
    """Where the store of raw ``folder`` resized to ``megapixels`` lives: one per (resolved path, resize)."""
    resolved = Path(folder).resolve()
    key = hashlib.sha256(json.dumps([str(resolved), megapixels]).encode()).hexdigest()[:16]
    return cache_root() / STORES / f"{resolved.name or 'root'}-{key}"


@attrs.frozen
class SourceStatus:
    """What training would do with one ``--data`` folder; ``str()`` is the line a plan prints."""

    folder: str
    state: str  # one of STATES
    images: int  # image files in a raw folder, or images in a given store
    to_decode: int  # files the next run decodes into the cached store
    store: Path | None  # the cached store (None for "raw" and "store")

    def __str__(self) -> str:
        if self.state == "raw":
            return f"{self.folder}: raw folder, {self.images} images decoded per patch (the recipe does not resize)"
        if self.state == "store":
            return f"{self.folder}: prepared store, {self.images} images"
        if self.state == "ready":
            return f"{self.folder}: prepared store {self.store} ({self.images} images, up to date)"
        if self.state == "stale":
            return (
                f"{self.folder}: prepared store {self.store} is out of date ({self.to_decode} of "
                f"{self.images} images new or changed, or removed); the run updates it first"
            )
        if self.state == "corrupt":
            return f"{self.folder}: the cached store {self.store} is unreadable; the run prepares it again"
        return f"{self.folder}: {self.images} images not prepared yet; the run prepares them into {self.store} first"


def source_status(folder: str | os.PathLike[str], megapixels: float | None) -> SourceStatus:
    """Read-only: whether ``folder``'s cached store is ready, stale or missing, and how many images it has.

    Nothing is decoded, locked or written (``--dry-run`` prints this).  Raises DataError naming the folder
    when it does not exist.
    """
    name = str(folder)
    if is_store(folder):
        return SourceStatus(name, "store", len(open_store(folder).images), 0, None)
    files = _files(folder)
    if megapixels is None:
        return SourceStatus(name, "raw", len(files), 0, None)
    store = cached_store(folder, megapixels)
    try:
        if not is_store(store):
            return SourceStatus(name, "missing", len(files), len(files), store)
        now = pending([folder], store)
    except (StoreError, KeyError, TypeError, AttributeError):  # a manifest cut short or edited by hand
        return SourceStatus(name, "corrupt", len(files), len(files), store)
    except OSError as exc:
        raise StoreError(
            f"cannot read the cached store {store} ({exc.strerror or exc}); make it readable or "
            f"set {CACHE_ENV} to another folder"
        ) from None
    return SourceStatus(
        name,
        "ready" if now.up_to_date else "stale",
        now.images if now.up_to_date else len(files),
        now.to_decode + now.removed,
        store,
    )


class TrainingSources(list[str]):
    """The folders to train on, and ``skipped``: how many images their stores left out as unreadable.

    Why: a store's preparation decodes every image and records the ones that fail (a truncated PNG), which the
    scan of the store then never sees; the run's ``data/skipped`` must count them as a raw folder's scan would.
    """

    skipped: int = 0


def training_sources(
    folders: Sequence[str | os.PathLike[str]], megapixels: float | None, *, progress: bool, workers: int | None = None
) -> TrainingSources:
    """The folders to hand to :func:`mgsr.training.data.scan_images`: raw folders replaced by cached stores.

    When ``megapixels`` is set, each raw folder is prepared (or updated) into its cached store first, with a
    progress bar and a line on stderr (both silent when ``progress`` is False); stores and, without a
    resize, raw folders pass through unchanged.  Safe to call from several processes at once (a lock per
    store); under torchrun, let rank 0 call it first and the others after a barrier to avoid idle
    decoding.  ``workers`` decoding processes (default all cores, 0 in this process).  The images each store
    skipped are named in a warning and counted in the result's ``skipped``.
    """
    if megapixels is None:
        sources = TrainingSources(str(f) for f in folders)
    else:
        sources = TrainingSources(str(_prepared(folder, megapixels, progress, workers)) for folder in folders)
    sources.skipped = sum(_warn_skipped(folder) for folder in sources if is_store(folder))
    return sources


def _files(folder: str | os.PathLike[str]) -> list[Path]:
    if not Path(folder).is_dir():
        raise DataError(f"training folder not found: {folder} (given in --data or data.train); check the path")
    return image_folders([folder])


def _say(progress: bool, line: str) -> None:
    if progress:
        print(f"mgsr: {line}", file=sys.stderr, flush=True)


def _prepared(folder: str | os.PathLike[str], megapixels: float, progress: bool, workers: int | None) -> Path:
    """``folder`` itself when it is a store or holds no images (scan_images says so), else its cached store."""
    if is_store(folder) or not _files(folder):
        return Path(folder)
    store = cached_store(folder, megapixels)
    with store_lock(store):
        status = source_status(folder, megapixels)
        if status.state == "ready":
            _say(progress, f"using prepared store {store} ({status.images} images, up to date)")
            return store
        if status.state == "corrupt":
            warnings.warn(
                f"the cached store {store} (of {folder}) has an unreadable manifest; preparing it again", stacklevel=3
            )
            _drop_manifest(store)
        _say(progress, f"preparing {folder} into {store} ({status.to_decode} images to decode; later runs reuse it)")
        try:
            report = prepare([folder], store, target_megapixels=megapixels, workers=workers, progress=progress)
        except OSError as exc:
            raise StoreError(
                f"cannot write the cached store {store} ({exc.strerror or exc}); make it "
                f"writable or set {CACHE_ENV} to another folder"
            ) from None
        _say(
            progress,
            f"prepared store {store}: {len(report.store.images)} images ({report.decoded} decoded now, "
            f"{report.reused} kept, {len(report.skipped)} unreadable skipped)",
        )
    return store


def _warn_skipped(store: str) -> int:
    """Name the files ``store`` skipped on every run, as the raw stream's scan does; how many there are."""
    skipped = open_store(store).skipped
    for source, reason in skipped:
        warnings.warn(f"skipping {source}: {reason}", stacklevel=4)  # the caller of training_sources
    return len(skipped)


def _drop_manifest(store: Path) -> None:
    """Make the store be prepared again from scratch, keeping its arrays (same content hash, same name) for the
    runs that read them: the rebuild removes the unlisted ones that no run holds."""
    try:
        (store / MANIFEST).unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot remove the unreadable cached store {store} ({exc.strerror or exc}); delete it "
            f"yourself or set {CACHE_ENV} to another folder"
        ) from None


@contextlib.contextmanager
def store_lock(store: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``<store>.lock`` exclusively for the block: one process prepares a store at a time (a run's cached
    store, or ``mgsr data prepare -o DIR``'s).

    The holder writes "host pid" into the lock file, so that a process waiting for it can say on stderr whom it
    waits for; it gives up with a StoreError naming the lock and that process when the preparation has not
    progressed for ``timeout`` seconds, or when the holder is gone but processes it started keep the lock (see
    :class:`_Wait`).  Where ``flock`` fails (ENOLCK, EOPNOTSUPP: a filesystem without locks) the lock is
    ``<store>.lock.owner`` instead (see :func:`_owner_lock`), never an uncaught OSError.
    """
    lock = store.with_name(store.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")  # noqa: SIM115 - closed below, after the unlock
    except OSError as exc:
        raise StoreError(
            f"cannot write the store's lock file {lock} ({exc.strerror or exc}); make {lock.parent} writable "
            f"(for mgsr's cache of prepared stores: or set {CACHE_ENV} to another folder)"
        ) from None
    with handle:
        if fcntl is None:
            yield
            return
        try:
            if not _try_lock(handle):
                _Wait(lock, store, timeout).until_locked(handle)
        except OSError as exc:
            with _owner_lock(store, exc):
                yield
            return
        try:
            _write_holder(handle)
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)  # a waiter that finds the lock busy later must not blame this process
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    """Take the lock if it is free; False when another process holds it (an OSError: no ``flock`` here)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(handle: IO[str]) -> None:
    """Name this process in the lock file it holds, for the messages of the processes that wait."""
    with contextlib.suppress(OSError):  # only the messages lose
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()} {os.getpid()}\n")
        handle.flush()


def _holder(lock: Path) -> tuple[str, int] | None:
    """(host, pid) of the process that holds ``lock`` as it wrote them; None when not written (yet)."""
    host, _, pid = _owner_text(lock).partition(" ")
    return (host, int(pid)) if host and pid.isdigit() else None


def _duration(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class _Wait:
    """A process waiting for the lock of a store that another process prepares.

    Why: waiting without a word looks like a hang, and a wait may never end -- a run killed outright while
    preparing left workers that kept its lock (an older mgsr; or processes it started some other way).  So the
    waiter says on stderr whom it waits for and since when, and gives up with a StoreError naming the lock and
    the process to end: when nothing moved in the store for ``timeout`` seconds, or at once (after
    DEAD_HOLDER_GRACE) when the process that took the lock is gone and the lock is still held.
    """

    def __init__(self, lock: Path, store: Path, timeout: float) -> None:
        self.lock, self.store, self.timeout = lock, store, timeout
        self.started = self.progressed = self.reported = time.monotonic()
        self.seen = self._state()
        self.gone_since: float | None = None

    def until_locked(self, handle: IO[str]) -> None:
        """Poll until ``handle`` holds the lock; StoreError when giving up."""
        _say(
            True,
            f"waiting for the lock {self.lock}: {self._who()} prepares {self.store}; this run goes on when it is "
            f"done (it gives up after {_duration(self.timeout)} without progress)",
        )
        delay = 0.05
        while not _try_lock(handle):
            time.sleep(delay)
            delay = min(2 * delay, 1.0)
            self._check(time.monotonic())
        _say(True, f"got the lock {self.lock} after {_duration(round(time.monotonic() - self.started, 1))}")

    def _check(self, now: float) -> None:
        """Give up when the store stalled or its holder is gone; a line every WAIT_REPORT_EVERY seconds."""
        state = self._state()
        if state != self.seen:
            self.seen, self.progressed = state, now
        if now - self.progressed > self.timeout:
            raise StoreError(self._stalled(now))
        holder = _holder(self.lock)
        gone = holder is not None and not process_alive(*holder)
        self.gone_since = (self.gone_since or now) if gone else None
        if holder is not None and self.gone_since is not None and now - self.gone_since > DEAD_HOLDER_GRACE:
            raise StoreError(self._orphaned(*holder))
        if now - self.reported >= WAIT_REPORT_EVERY:
            self.reported = now
            _say(
                True, f"still waiting for the lock {self.lock} ({self._who()}), {_duration(now - self.started)} so far"
            )

    def _state(self) -> tuple[object, ...]:
        """What changes while the holder prepares: who holds the lock, the store's manifest, its arrays."""
        stamps: list[int | None] = []
        for path in (self.store / MANIFEST, self.store / ARRAYS):
            try:
                stamps.append(path.stat().st_mtime_ns)
            except OSError:
                stamps.append(None)
        return (_owner_text(self.lock), *stamps)

    def _who(self) -> str:
        holder = _holder(self.lock)
        return f"process {holder[1]} on {holder[0]}" if holder else "another process"

    def _stalled(self, now: float) -> str:
        holder = _holder(self.lock)
        pids = [holder[1]] if holder else lock_holders(self.lock)
        end = f"end it (kill {' '.join(map(str, pids))})" if pids else f"find it with `fuser -v {self.lock}`, end it"
        return (
            f"gave up waiting for the lock {self.lock} after {_duration(round(now - self.started, 1))}: "
            f"{self._who()} holds it and its preparation of {self.store} has not progressed for "
            f"{_duration(self.timeout)}; if that process hangs, {end} and run again, or set {CACHE_ENV} to "
            f"another folder"
        )

    def _orphaned(self, host: str, pid: int) -> str:
        pids = " ".join(map(str, lock_holders(self.lock)))
        held = (
            f"processes it started ({pids}) still hold it: end them (kill {pids})"
            if pids
            else f"processes it started still hold it: find them with `fuser -v {self.lock}` and end them"
        )
        return (
            f"the lock {self.lock} is still held, but process {pid} on {host}, which took it to prepare "
            f"{self.store}, is gone: {held}, then run again"
        )


@contextlib.contextmanager
def _owner_lock(store: Path, cause: OSError) -> Iterator[None]:
    """The lock without ``flock``: ``<store>.lock.owner`` created exclusively (O_EXCL), holding "host pid".

    Why not wait as ``flock`` does: a file left by a run killed on another host would make every later run
    wait forever.  So a live owner is a StoreError naming it; the file of a dead process of this host is
    taken over.
    """
    owner = store.with_name(store.name + ".lock.owner")
    try:
        claimed = _claim(owner) or (_dead_owner_removed(owner) and _claim(owner))
    except OSError as exc:
        raise StoreError(
            f"cannot write the lock file {owner} ({exc.strerror or exc}); make the mgsr cache folder "
            f"writable or set {CACHE_ENV} to another folder"
        ) from None
    if not claimed:
        raise StoreError(
            f"the cached store {store} is being prepared by another process ({_owner_text(owner) or 'unknown'}): "
            f"its lock file {owner} exists (this filesystem has no file locks: {cause.strerror or cause}); "
            f"wait for that run to finish, or delete {owner} if no such process runs"
        )
    try:
        yield
    finally:
        owner.unlink(missing_ok=True)


def _claim(owner: Path) -> bool:
    """Create ``owner`` naming this process; False when it exists (another process holds the lock)."""
    try:
        fd = os.open(owner, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}\n")
    return True


def _owner_text(owner: Path) -> str:
    try:
        return owner.read_text().strip()
    except OSError:
        return ""


def _dead_owner_removed(owner: Path) -> bool:
    """Remove ``owner`` when it names a process of this host that is gone; an unreadable or half-written file
    counts as live (its process may be writing it now)."""
    text = _owner_text(owner)
    host, _, pid = text.partition(" ")
    if not pid.isdigit() or process_alive(host, int(pid)):
        return False
    if _owner_text(owner) == text:  # not taken over by another process meanwhile
        owner.unlink(missing_ok=True)
    return True
