"""The entry point of ``mgsr train``: the run folder, what to resume from, one process or many."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from mgsr.build import build
from mgsr.errors import TrainingError
from mgsr.hub import download_progress
from mgsr.recipe import load_recipe
from mgsr.registry import default_registry
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint, newest_loadable, refuse_newer
from mgsr.training.distributed import Context, from_environment, shutdown
from mgsr.training.trainer import Trainer


def prepare_run(run_dir: Path, resume: str | None) -> tuple[Path, dict[str, Any]] | None:
    """Which checkpoint to resume from; refuses to train over an existing run unless asked to resume."""
    folder = run_dir / "checkpoints"
    if resume is None:
        if list_checkpoints(folder):
            raise TrainingError(f"{run_dir} already holds checkpoints; continue it with --resume auto "
                                f"or choose another --out")
        return None
    if resume == "auto":
        return newest_loadable(folder)
    path = Path(resume)
    if path.is_dir():
        found = newest_loadable(path / "checkpoints") or newest_loadable(path)
        if found is None:
            raise TrainingError(f"no loadable checkpoint in {path}")
        return found
    return path, load_checkpoint(path)


def train(recipe_path: str | os.PathLike[str], *, data: list[str] | None = None, out: str | None = None,
          resume: str | None = None, overrides: list[str] | tuple[str, ...] = (), device: str = "auto",
          progress: bool = True) -> Path:
    """Everything ``mgsr train`` does (on one process or under torchrun); returns the exported generator file."""
    ctx, device = from_environment(device, announce=progress)  # device "auto": mgsr.devices.resolve_device
    try:
        with download_progress(progress):  # files the plugins fetch (VGG-19) are quiet under -q too
            return _train(recipe_path, data=data, out=out, resume=resume, overrides=overrides, device=device,
                          progress=progress, ctx=ctx)
    except BaseException as exc:
        if ctx.active:  # name the rank: torchrun then stops the others and the job exits non-zero
            print(f"mgsr: rank {ctx.rank} of {ctx.world_size} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    finally:
        shutdown(ctx)


def _train(recipe_path: str | os.PathLike[str], *, data: list[str] | None, out: str | None, resume: str | None,
           overrides: list[str] | tuple[str, ...], device: str, progress: bool, ctx: Context) -> Path:
    registry = default_registry()
    extra = list(overrides)
    if data:
        extra.append("data.train=" + json.dumps(list(data)))
    recipe = load_recipe(recipe_path, registry, overrides=extra)
    if not recipe.data.train:  # before building: the losses may need files (VGG-19) that matter less
        raise TrainingError("no training data: set data.train in the recipe or pass --data DIR")
    run_dir = Path(out) if out else Path("runs") / Path(recipe_path).stem
    start = prepare_run(run_dir, resume)
    if start is not None:
        refuse_newer(run_dir / "checkpoints", int(start[1]["step"]))
    if recipe.training.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(recipe.training.seed)
    built = build(recipe, registry, training=True)
    trainer = Trainer(built, run_dir, device=device, progress=progress, ctx=ctx)
    if start is not None:
        trainer.restore(*start)
        print(f"resuming from {start[0]} at step {trainer.step}", file=sys.stderr)
    return trainer.run()
