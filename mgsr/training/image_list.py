"""The training images a checkpoint was made with, and what changed in them when a run resumes.

Why: a resumed run continues the patch stream at the checkpoint's position, but the stream is a permutation
of the images found *now*; when a file was added, removed or replaced since (a folder edited, a store
rebuilt), the run silently trained on other patches.  So each checkpoint records the image list (names in
stream order and the first 16 hex of each source file's SHA-256, compact JSON), and a resume names what
changed.  A prepared store already knows its sources' hashes; an image file is hashed once per process (cached
by path, size and modification time), so later checkpoints only stat the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mgsr.training.store import StoredImage

#: hex digits of the SHA-256 kept per image
DIGITS = 16
#: names shown per kind of change
SHOWN = 3

_hashes: dict[tuple[str, int, int], str] = {}


def image_list(images: Sequence[Path | StoredImage]) -> str:
    """The record of ``images`` (in stream order): JSON ``{"root": folder, "images": [[name, digest], ...]}``,
    names relative to the folder all images share."""
    entries = [_entry(image) for image in images]
    try:
        root = os.path.commonpath([os.path.dirname(name) for name, _ in entries]) if entries else ""
    except ValueError:  # Windows drives, or absolute and relative mixed
        root = ""
    listed = [[os.path.relpath(name, root) if root else name, digest] for name, digest in entries]
    return json.dumps({"root": root, "images": listed}, separators=(",", ":"))


def _entry(image: Path | StoredImage) -> tuple[str, str]:
    """(absolute source path, digest): a store's source names (resolved) and hashes, or a file's own."""
    if isinstance(image, StoredImage):
        return image.source, image.sha256[:DIGITS]
    path = Path(image).resolve()
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _hashes:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            _hashes[key] = digest.hexdigest()[:DIGITS]
        return str(path), _hashes[key]
    except OSError:
        return str(path), "unreadable"


def source_digest(image: Path | StoredImage) -> tuple[str, str | None]:
    """(absolute source path, content digest), the digest None when unknown (a store prepared before mgsr
    recorded hashes, an unreadable file): held-out images are recognised by it whatever their path."""
    path, digest = _entry(image)
    return path, None if digest in ("", "unreadable") else digest


def _read(record: str) -> list[tuple[str, str]]:
    data = json.loads(record)
    root = data["root"]
    return [(os.path.join(root, name) if root else name, str(digest)) for name, digest in data["images"]]


def describe_change(recorded: str, current: str) -> str | None:
    """What differs between two records: counts and a few names of images added, removed and changed, or
    None when the lists are equal.  Raises ValueError (or KeyError, TypeError) for a malformed record."""
    old, new = _read(recorded), _read(current)
    if old == new:
        return None
    before, after = dict(old), dict(new)
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [name for name in after if name in before and before[name] != after[name]]
    if added and Counter(before.values()) == Counter(after.values()):
        return f"the same {len(new)} image contents, {len(added)} under other names (moved or renamed: {_few(added)})"
    parts = [
        f"{len(names)} {kind} ({_few(names)})"
        for kind, names in (("added", added), ("removed", removed), ("changed", changed))
        if names
    ]
    return ", ".join(parts) or f"the same {len(new)} images in another order"


def _few(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f", ... {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def warn_if_changed(checkpoint: Path, recorded: object, images: Sequence[Path | StoredImage]) -> None:
    """Warn, naming the change, when the images now found differ from those ``checkpoint`` recorded.

    A checkpoint without a record (written before mgsr recorded one) is not compared; a malformed record is
    said, not fatal: the weights are still good.
    """
    if recorded is None:
        return
    try:
        change = describe_change(str(recorded), image_list(images))
    except (ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"checkpoint {checkpoint.name}: cannot read its image list ({exc}); not compared", stacklevel=3)
        return
    if change is not None:
        warnings.warn(
            f"the training images differ from checkpoint {checkpoint.name}'s: {change}; continuing with the "
            f"images found now: weights and data position carry over, but the patches from here on are not "
            f"those the checkpoint's run would have drawn",
            stacklevel=3,
        )
