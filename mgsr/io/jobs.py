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
from mgsr.io.overwrite import refuse_overwriting


@attrs.frozen
class Task:
    """One input, its output, and why it is not done (``clash``: another input's output has the same path)."""

    source: Path
    target: Path
    clash: Path | None = None


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
    """Raise :class:`ImageError` naming the first output that is one of the inputs (or a ``protected`` file),
    by the rule of every command that writes (:func:`mgsr.io.overwrite.refuse_overwriting`)."""
    tasks = list(tasks)
    refuse_overwriting([t.target for t in tasks], [*(t.source for t in tasks), *protected], ImageError)


def already_done(task: Task) -> bool:
    """True when the output is a file already (atomic writes: an existing output is a complete one)."""
    return task.target.is_file()


def share(items: list, rank: int, world_size: int) -> list:
    """This rank's part of ``items``: every ``world_size``-th item from ``rank`` (each item exactly once overall)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    return items[rank::world_size]


def describe(counts: dict[str, int]) -> str:
    """``3 written, 2 skipped (already there; --overwrite redoes them), 1 incomplete (...), 1 failed`` (zero counts
    left out)."""
    parts = [f"{counts.get('written', 0)} written"]
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped (outputs already there; --overwrite redoes them)")
    if counts.get("incomplete"):
        parts.append(f"{counts['incomplete']} incomplete (frames missing: kept as NAME.incomplete.EXT)")
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed")
    return ", ".join(parts)


def unexpected(source: Path, exc: Exception) -> str:
    """The error line of a failure mgsr did not foresee: the file, what was raised, and that it is a bug.

    Folder jobs catch such failures per input, so one file that trips a bug costs that file, not the job.
    """
    return f"{source}: failed unexpectedly ({type(exc).__name__}: {exc}); this is a bug in mgsr, please report it"
