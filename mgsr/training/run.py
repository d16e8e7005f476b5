"""The entry point of ``mgsr train``: the run folder, its stages, what to resume from, one process or many."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import attrs
import torch

from mgsr.assembly.build import Built, build
from mgsr.io.hub import download_progress
from mgsr.recipe import Recipe, load_recipe
from mgsr.registry import Registry, default_registry
from mgsr.runtime.distributed import SINGLE, Context, barrier, from_environment, shutdown
from mgsr.training.checkpoint import refuse_newer
from mgsr.training.data_session import DataSession
from mgsr.training.holdout import HOLDOUT_FILE
from mgsr.training.preflight import ensure_ready, require_training_data, trainable, unweighted
from mgsr.training.resume import restore
from mgsr.training.stages import EXPORTED, PRETRAIN, SKIP, Checkpoint, Stage, plan_stages, starting_points
from mgsr.training.trainer import Trainer
from mgsr.training.validation_session import ValidationSession, trained_noise


def train(
    recipe_path: str | os.PathLike[str],
    *,
    data: list[str] | None = None,
    out: str | None = None,
    resume: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Everything ``mgsr train`` does (on one process or under torchrun); returns the exported generator file."""
    ctx, device = from_environment(device, announce=progress)  # device "auto": mgsr.runtime.devices.resolve_device
    try:
        with download_progress(progress):  # files the plugins fetch (VGG-19) are quiet under -q too
            return _train(
                recipe_path,
                data=data,
                out=out,
                resume=resume,
                overrides=overrides,
                device=device,
                progress=progress,
                ctx=ctx,
            )
    except BaseException as exc:
        if ctx.active:  # name the rank: torchrun then stops the others and the job exits non-zero
            print(f"mgsr: rank {ctx.rank} of {ctx.world_size} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    finally:
        shutdown(ctx)


def training_recipe(
    recipe_path: str | os.PathLike[str],
    data: list[str] | None,
    overrides: list[str] | tuple[str, ...],
    registry: Registry,
) -> Recipe:
    """The recipe ``mgsr train`` trains: the file with ``--set`` overrides, ``--data`` in place of data.train
    (set on the recipe, not written into an override string for the parser to read back)."""
    recipe = load_recipe(os.fspath(recipe_path), registry, overrides=list(overrides))
    if data:
        recipe = attrs.evolve(recipe, data=attrs.evolve(recipe.data, train=tuple(data)))
    require_training_data(recipe)  # before building: the losses may need files (VGG-19) that matter less
    return recipe


def run_folder(recipe_path: str | os.PathLike[str], out: str | None) -> Path:
    """``--out``, or ``runs/<recipe name>``."""
    return Path(out) if out else Path("runs") / Path(recipe_path).stem


def _train(
    recipe_path: str | os.PathLike[str],
    *,
    data: list[str] | None,
    out: str | None,
    resume: str | None,
    overrides: list[str] | tuple[str, ...],
    device: str,
    progress: bool,
    ctx: Context,
) -> Path:
    registry = default_registry()
    recipe = training_recipe(recipe_path, data, overrides, registry)
    run_dir = run_folder(recipe_path, out)
    stages = plan_stages(recipe, run_dir, registry, where=f"recipe {recipe_path}")
    starts = starting_points(stages, resume)
    if recipe.pretrain is not None and len(stages) == 1 and ctx.is_main:
        print(f"mgsr: no pre-training: starting from model.weights = {recipe.model.weights}", file=sys.stderr)
    if ctx.is_main:  # before any step: the VGG-19 file, the data, the run folder, the disk
        ensure_ready([s for s, start in zip(stages, starts, strict=True) if start != SKIP], run_dir, registry)
    barrier(ctx)
    path = run_dir / EXPORTED
    for stage, start in zip(stages, starts, strict=True):
        if start == SKIP:
            if stage.name == PRETRAIN and ctx.is_main:
                print(f"mgsr: pre-training done ({stage.run_dir}); continuing with the objective", file=sys.stderr)
            continue
        path = _train_stage(
            stage,
            start,
            device=device,
            progress=progress,
            ctx=ctx,
            log_dir=run_dir,
            registry=registry,
            announce=len(stages) > 1,
        )
    return path


def _train_stage(
    stage: Stage,
    start: Checkpoint | None,
    *,
    device: str,
    progress: bool,
    ctx: Context,
    log_dir: Path,
    registry: Registry,
    announce: bool,
) -> Path:
    """Build and train one stage from ``start`` (None: from its beginning); its exported generator."""
    if start is not None:
        refuse_newer(stage.run_dir / "checkpoints", int(start[1]["step"]))
    recipe = stage.recipe
    if recipe.training.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(recipe.training.seed)
    if announce and ctx.is_main:
        losses = ", ".join(spec.type for spec in recipe.losses)
        print(f"mgsr: stage '{stage.name}' ({losses}) in {stage.run_dir}", file=sys.stderr)
    if start is None:
        built = build(recipe, registry, training=True)
    else:  # the weights are the checkpoint's: model.weights (e.g. a deleted RUN/pretrain) is not read
        built = attrs.evolve(build(unweighted(recipe), registry, training=True), recipe=recipe)
    trainer = stage_trainer(
        built, stage.run_dir, device=device, progress=progress, ctx=ctx, stage=stage.name, log_dir=log_dir
    )
    if start is not None:
        restore(trainer, *start)
        print(f"resuming from {start[0]} at step {trainer.step}", file=sys.stderr)
    return trainer.run()


def stage_trainer(
    built: Built,
    run_dir: Path,
    *,
    with_data: bool = True,
    device: str = "cpu",
    progress: bool = True,
    ctx: Context = SINGLE,
    stage: str = "train",
    log_dir: Path | None = None,
) -> Trainer:
    """The trainer of one stage of the recipe ``built`` was built from, in ``run_dir``: the recipe's training
    checks first (in seconds, before any store is prepared), then its data session, its validation session (rank
    0 validates, as ``mgsr eval`` scores) and the loop given both.  ``with_data=False`` (``mgsr train --dry-run``
    times steps on random patches) gives a trainer without data, which can step, score and export.
    ``log_dir``: the folder of the whole run (its log and ``holdout.json``), when ``run_dir`` is a stage's."""
    built = trainable(built, ctx)
    data = validation = None
    if with_data:
        holdout_file = Path(log_dir if log_dir is not None else run_dir) / HOLDOUT_FILE
        data = DataSession.from_recipe(built.recipe, holdout_file, ctx=ctx, progress=progress)
        if ctx.is_main:
            recipe = built.recipe
            validation = ValidationSession.for_run(
                recipe.data,
                recipe.training,
                data.folders.val_paths(),
                data.held_out,
                built.registry,
                trained_noise(built.losses),
            )
    return Trainer(
        built,
        run_dir,
        data=data,
        validation=validation,
        device=device,
        progress=progress,
        ctx=ctx,
        stage=stage,
        log_dir=log_dir,
    )
