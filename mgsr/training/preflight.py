"""Before a run's first step: everything it will need, checked or fetched, so nothing fails days into it.

Why: the paper's run is 50,000 pre-training steps and then the objective.  Before this check, the
VGG-19 file of the objective's contextual term was first read when the objective started, so an offline
machine or a broken mirror surfaced after the whole pre-training; an empty ``--data`` folder trained on the
others without a word; a full disk surfaced at the first checkpoint.  :func:`ensure_ready` runs them all
before any step (and fetches what the losses download), and ``mgsr train --dry-run`` prints the same
findings without writing or fetching anything (:func:`readiness` with ``fetch=False``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
import torch

from mgsr.assembly.build import Built, build
from mgsr.errors import MgsrError, TrainingError
from mgsr.interfaces import AdversarialLoss
from mgsr.recipe import Recipe
from mgsr.registry import Registry
from mgsr.runtime.distributed import Context
from mgsr.training.data import scan_images
from mgsr.training.data_session import data_folders
from mgsr.training.prepared import source_status
from mgsr.training.schedule import validation_scale
from mgsr.training.stages import Stage

#: bytes of one float32 parameter in a checkpoint: the weight and Adam's two moments
_PER_PARAMETER = 3 * 4
#: room kept beyond the estimate: a checkpoint is written beside the one it replaces
_SLACK = 1.25


@attrs.frozen
class Readiness:
    """What the checks found: the problems that stop a run (empty when none), and the disk line."""

    problems: tuple[str, ...]
    disk: str


def _count(module: torch.nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def checkpoint_bytes(built: Built) -> int:
    """About one checkpoint of ``built``: G and D with their Adam moments, and the best-knob copy of G."""
    generator = _count(built.generator)
    best = 4 * generator if built.recipe.training.export != "last" else 0
    return _PER_PARAMETER * (generator + _count(built.discriminator)) + best


def require_training_data(recipe: Recipe) -> None:
    """The one check that a recipe names training data at all (``mgsr train`` and its dry run, on the recipe,
    before building anything: the losses may need files, VGG-19, that matter less)."""
    if not recipe.data.train:
        raise TrainingError("no training data: set data.train in the recipe or pass --data DIR")


def _data_problems(recipe: Recipe) -> list[str]:
    """Every training folder exists and holds images; every validation folder holds one at the scale."""
    problems = []
    folders = data_folders(recipe.data)
    for folder in folders.train:
        try:
            status = source_status(folder.path(), recipe.data.target_megapixels)
        except MgsrError as exc:
            problems.append(f"data.train: {exc}")
            continue
        if status.images == 0:
            problems.append(f"data.train folder {folder.name} holds no images; add some, or leave it out")
    scale = validation_scale(recipe.training)
    for folder in folders.val:
        try:
            usable = scan_images([folder.path()], min_side=scale).usable
        except MgsrError as exc:
            problems.append(f"data.val: {exc}")
            continue
        if not usable:
            problems.append(
                f"data.val folder {folder.name} holds no image of at least {scale}x{scale} pixels to validate on"
            )
    return problems


def _writable(run_dir: Path, create: bool) -> str | None:
    """None when the run folder can be written (``create``: made and probed; else its nearest parent checked)."""
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".mgsr-probe-"):
                pass
        except OSError as exc:
            return f"the run folder {run_dir} cannot be written ({exc.strerror or exc}); choose another with --out"
        return None
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the run folder {run_dir} cannot be created in {existing} (not writable); choose another with --out"
    return None


def _disk(run_dir: Path, needed: int) -> tuple[str, str | None]:
    """The disk line, and a problem when the free space is short of ``needed`` bytes."""
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    line = f"{free / 1e9:.3g} GB free at {existing}; the checkpoints the recipe keeps need about {needed / 1e9:.2g} GB"
    if free < needed:
        return (
            line,
            f"not enough disk for the checkpoints: {line}; free some, lower training.keep_checkpoints or use --out",
        )
    return line, None


def readiness(stages: Sequence[Stage], built: Sequence[Built], run_dir: Path, *, create: bool) -> Readiness:
    """The checks of the module docstring for the ``stages`` that will run, whose models are ``built``."""
    recipe = stages[-1].recipe
    problems = _data_problems(recipe)
    if (unwritable := _writable(run_dir, create)) is not None:
        problems.append(unwritable)
    needed = sum(
        (stage.recipe.training.keep_checkpoints + 1) * checkpoint_bytes(b) + 4 * _count(b.generator)
        for stage, b in zip(stages, built, strict=True)
    )
    line, short = _disk(run_dir, int(needed * _SLACK))
    if short is not None:
        problems.append(short)
    return Readiness(tuple(problems), line)


def unweighted(recipe: Recipe) -> Recipe:
    """``recipe`` from random weights: a later stage's starting point (the pre-training's result) does not
    exist yet, and a resumed stage takes its weights from the checkpoint."""
    return attrs.evolve(recipe, model=attrs.evolve(recipe.model, weights=None))


def ensure_ready(stages: Sequence[Stage], run_dir: Path, registry: Registry) -> None:
    """Build every stage that will run (which fetches the files its losses need, VGG-19 included, now rather
    than after the pre-training), then the checks; a TrainingError naming every problem found."""
    built = [build(unweighted(stage.recipe), registry, training=True) for stage in stages]
    found = readiness(stages, built, run_dir, create=True)
    if found.problems:
        raise TrainingError("this run cannot start:\n  " + "\n  ".join(found.problems))


def trainable(built: Built, ctx: Context) -> Built:
    """``built`` without a discriminator no loss trains, or an error naming what the recipe lacks for training
    (the run checks it before it prepares any data: :func:`mgsr.training.run.stage_trainer`)."""
    if built.discriminator is None and any(isinstance(loss, AdversarialLoss) for loss in built.losses):
        raise TrainingError("the recipe has an adversarial loss but no [discriminator] table")
    if built.discriminator is not None and not any(isinstance(loss, AdversarialLoss) for loss in built.losses):
        built = attrs.evolve(built, discriminator=None)  # nothing trains it (e.g. the no-GAN ablation)
    if not built.losses:
        raise TrainingError('the recipe has no losses; add at least one [[losses]] table (e.g. type = "l1")')
    if built.recipe.training.batch_size % ctx.world_size:
        raise TrainingError(
            f"training.batch_size {built.recipe.training.batch_size} is the global batch and must divide "
            f"evenly over {ctx.world_size} processes"
        )
    scales = built.recipe.training.scales
    if not any(loss.active(levels) for loss in built.losses for levels in scales):
        raise TrainingError(f"no loss counts at training.scales {list(scales)}; check the losses' scales")
    return built
