"""Write a file so that readers only ever see the old version or the complete new one.

Every file mgsr writes (images, weights, checkpoints, downloads, converted models, evaluation records and
plots) goes to a temporary
file in the target's folder, is flushed to disk, given the user's usual file mode (``mkstemp`` makes it
0600) and renamed over the target; on failure (an exception inside the block) the temporary file is
removed and the target is untouched.  :func:`atomic_path` hands out the temporary path, for writers that
take a file name; :func:`atomic_file` an open binary file, for a stream written piece by piece, and
:func:`atomic_text` an open text file.

Two kinds of file are written otherwise, on purpose: a log that grows line by line (a run's ``metrics.jsonl``,
appended and flushed per record, so a reader sees every complete line and at most one partial last line), and a
lock's owner file (``O_EXCL`` creation is the lock itself: see :mod:`mgsr.training.prepared`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], durable: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on clean exit it replaces ``target``.

    ``durable=True`` also fsyncs the folder, so the rename survives a power cut
    (checkpoints).  ``suffix`` ends the temporary name, for writers that choose the format by it.
    Raises OSError when the folder cannot be written (on entering the block).
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, target, durable)
    finally:
        tmp.unlink(missing_ok=True)


def publish(tmp: Path, target: Path, durable: bool = False) -> None:
    """Flush ``tmp``, give it the user's file mode and rename it to ``target`` (see :func:`atomic_path`).

    Public for a writer that learns only at the end which name its output gets (a video found incomplete is
    kept under a marked name): called inside an ``atomic_path`` block, which must then be left by an exception
    (the block's own rename would find no file).
    """
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)
    if durable:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str], durable: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file open for writing that replaces ``target`` on clean exit (see :func:`atomic_path`).

    For data that arrives in pieces (a download): the caller can still refuse it, by raising inside the
    block, after the last piece and before the rename (a hash that does not match).
    """
    with atomic_path(target, durable) as tmp, open(tmp, "wb") as fh:
        yield fh


@contextlib.contextmanager
def atomic_text(target: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """Yield a UTF-8 text file open for writing that replaces ``target`` on clean exit (see :func:`atomic_path`).

    For text written line by line (a CSV table; ``newline=""`` as the csv module asks) or at once (a JSON
    record): a reader never sees half a table.  UTF-8 rather than the locale's encoding, so that the same
    results are the same bytes on every machine.
    """
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        yield fh
