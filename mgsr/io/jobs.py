"""Planning a batch of image outputs: which input goes where, what is already done, what must never be touched.

A folder job of 10,000 images is interrupted and started again, or split over
several processes: so every decision that depends on the file system (is this
output one of the inputs? is it already there?) is made once, up front, for the
whole list, before anything is written.  Outputs are written atomically
(:mod:`mgsr.io.atomic`), so an output that exists is complete and can be skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from mgsr.errors import ImageError
from mgsr.io.files import real_path


@attrs.frozen
class Task:
    """One input, its output, and why it is not done (``clash``: another input's output has the same path)."""

    source: Path
    target: Path
    clash: Path | None = None


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path (symlinks followed) and, when the file exists, its (device, inode): hard links too."""
    resolved = real_path(path)
    try:
        st = resolved.stat()
    except OSError:
        return resolved, None
    return resolved, (st.st_dev, st.st_ino)


def plan(sources: Iterable[Path], target_of: Callable[[Path], Path]) -> list[Task]:
    """One task per source; a source whose output an earlier source already claims carries that ``clash``."""
    tasks: list[Task] = []
    claimed: dict[Path, Path] = {}
    for source in sources:
        target = target_of(source)
        key = real_path(target)
        tasks.append(Task(source, target, claimed.get(key)))
        claimed.setdefault(key, source)
    return tasks


def refuse_overwriting_inputs(tasks: Iterable[Task], protected: Iterable[Path] = ()) -> None:
    """Raise :class:`ImageError` naming the first output that is one of the inputs (or a ``protected`` file).

    Paths are compared resolved (so ``./a.png``, ``a.png`` and a symlink to it are the same file) and, for
    files that exist, by device and inode (hard links, case-insensitive file systems).  Called before
    anything is written, so a refused job leaves every file as it was.
    """
    tasks = list(tasks)
    paths: dict[Path, Path] = {}
    inodes: dict[tuple[int, int], Path] = {}
    for path in [t.source for t in tasks] + list(protected):
        resolved, inode = _identity(path)
        paths.setdefault(resolved, path)
        if inode is not None:
            inodes.setdefault(inode, path)
    for task in tasks:
        resolved, inode = _identity(task.target)
        original = paths.get(resolved) or (inodes.get(inode) if inode is not None else None)
        if original is not None:
            raise ImageError(
                f"{task.target}: this output would overwrite the input {original}; choose another "
                f"output file or folder (nothing was written)"
            )


def already_done(task: Task) -> bool:
    """True when the output is a file already (atomic writes: an existing output is a complete one)."""
    return task.target.is_file()


def share(items: list, rank: int, world_size: int) -> list:
    """This rank's part of ``items``: every ``world_size``-th item from ``rank`` (each item exactly once overall)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    return items[rank::world_size]


def describe(counts: dict[str, int]) -> str:
    """``3 written, 2 skipped (already there; --overwrite redoes them), 1 failed`` (zero counts left out)."""
    parts = [f"{counts.get('written', 0)} written"]
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped (outputs already there; --overwrite redoes them)")
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed")
    return ", ".join(parts)
