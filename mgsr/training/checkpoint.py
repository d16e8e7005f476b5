"""Training checkpoints: complete, atomic, safe to load.

A checkpoint holds everything an exact resume needs: generator and
discriminator weights, both optimizers and schedulers, the step, the position
in the data stream and every RNG state, plus the resolved recipe.  It contains
only tensors and plain containers, so it loads with ``weights_only=True``.  It
is written to a temporary file, fsynced and renamed: a crash leaves either the
previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mgsr.errors import WeightsError
from mgsr.io.atomic import atomic_path
from mgsr.model.checkpoint_file import FORMAT, load_checkpoint

_NAME = re.compile(r"^step-(\d{9})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}.pt"


def save_checkpoint(folder: Path, step: int, payload: Mapping[str, Any], keep: int = 3) -> Path:
    """Write ``folder/step-NNNNNNNNN.pt`` atomically and durably; keep the ``keep`` newest up to ``step``.

    Checkpoints of later steps are never pruned here (``refuse_newer`` keeps a
    resumed run from meeting them), and the file just written is never removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / checkpoint_name(step)
    with atomic_path(target, durable=True) as tmp:
        torch.save({"format": FORMAT, "step": step, **payload}, tmp)
    older = [p for p in list_checkpoints(folder) if checkpoint_step(p) < step]
    for old in older[: max(0, len(older) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return target


def checkpoint_step(path: Path) -> int:
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"not a checkpoint file name: {path.name}")
    return int(match.group(1))


def refuse_newer(folder: Path, step: int) -> None:
    """Refuse to resume at ``step`` over checkpoints of later steps: they would be mistaken for this run's."""
    newer = [p for p in list_checkpoints(folder) if checkpoint_step(p) > step]
    if newer:
        raise WeightsError(
            f"resuming at step {step}, but {folder} holds later checkpoints ({', '.join(p.name for p in newer)}) "
            f"from another continuation; move them away (nothing is deleted) or resume from the newest"
        )


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temporary files are never listed)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def newest_loadable(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, skipping damaged ones (named in a warning)."""
    import warnings

    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path)
        except WeightsError as exc:
            warnings.warn(f"skipping damaged checkpoint: {exc}", stacklevel=2)
    return None
