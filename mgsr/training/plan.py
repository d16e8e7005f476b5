"""``mgsr train RECIPE --dry-run``: what a run would do and how long it would take, before a GPU is committed.

Why: the shipped PIRM recipes train 150,000 steps over the paper's two stages (the step counts are ours: the
paper gives none) on the paper's 4,271 images; a user should learn before starting it that the data is not
prepared yet, that the VGG-19 file will be downloaded, what it validates on, and whether a step takes 0.2 s or
2 s on this machine.  The plan prints the device, each stage with its length and losses, the training images
and whether their cached stores are ready, the validation set, the files the losses need, where ``--resume``
would continue, the run folder and the disk its checkpoints need (:mod:`mgsr.training.preflight`, whose
problems stop a real run before its first step), and the step time of each kind of step a stage runs
(discriminator warm-up and full steps, 3 of each, weighted by their counts) with the memory peak.

Nothing is written: no store is prepared, no file is downloaded, no run folder is created.  The steps are
timed on random patches of the recipe's batch and patch size (a step's cost does not depend on the
pixels) with the stage's real modules; when a file the losses need is missing (VGG-19), they are timed with
random weights of the same shape.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import torch

from mgsr.assembly.build import Built, build
from mgsr.errors import DownloadError, MgsrError, WeightsError
from mgsr.io.hub import OFFLINE_ENV, offline, unreachable
from mgsr.recipe import Recipe, load_recipe
from mgsr.registry import Registry, default_registry
from mgsr.runtime.devices import describe_device, resolve_device
from mgsr.training.data import scan_images
from mgsr.training.data_session import DataFolders, data_folders
from mgsr.training.holdout import holdout_count
from mgsr.training.preflight import readiness, unweighted
from mgsr.training.prepared import source_status
from mgsr.training.run import stage_trainer
from mgsr.training.schedule import resolve_schedule, validation_scale
from mgsr.training.stages import SKIP, Stage, plan_stages, starting_points

#: steps timed per stage (after one warm-up step)
TIMED_STEPS = 3


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No download while planning: a missing file is reported, not fetched."""
    saved = os.environ.get(OFFLINE_ENV)
    os.environ[OFFLINE_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(OFFLINE_ENV, None)
        else:
            os.environ[OFFLINE_ENV] = saved


def _without_pretrained(value: Any) -> Any:
    """A recipe table with every ``pretrained = true`` feature network switched to random weights."""
    if isinstance(value, dict):
        return {k: (False if k == "pretrained" and v is True else _without_pretrained(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_pretrained(v) for v in value]
    return value


def _files_needed(recipe: Recipe, registry: Registry) -> tuple[str, Recipe, Built, str | None]:
    """Whether the losses' files (VGG-19) are on this machine, and if not, what the run will do: (a line, the
    recipe to time steps with, its modules, a problem that stops the run or None)."""
    user_offline = offline()  # before _offline() sets it for the plan's own build
    try:
        with _offline():
            built = build(recipe, registry, training=True)
    except DownloadError as exc:
        timing = load_recipe(_without_pretrained(recipe.to_dict()), registry)
        modules = build(timing, registry, training=True)
        missing = f"{exc.target} is not cached"
        if user_offline:
            problem = f"{missing} and {OFFLINE_ENV}=1: the objective cannot start; unset it or put the file there"
            return problem, timing, modules, problem
        reason = unreachable(exc.url) if exc.url else "no URL known"
        if reason is not None:
            problem = f"{missing} and {exc.url} is unreachable ({reason}): the run cannot start; check the mirror"
            return problem, timing, modules, problem
        return f"{missing}: the run downloads it from {exc.url} first, before any step", timing, modules, None
    except WeightsError as exc:  # a file named in the recipe, missing or unusable: the run would stop on it
        timing = load_recipe(_without_pretrained(recipe.to_dict()), registry)
        return str(exc), timing, build(timing, registry, training=True), str(exc)
    return "all present (nothing to download)", recipe, built, None


@attrs.frozen
class StepTiming:
    """Seconds per step of one kind, and the memory peak while they ran (bytes; CUDA: allocated by torch,
    CPU: the process's resident peak so far)."""

    seconds: float
    peak_bytes: int


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource  # POSIX; the plan runs where training does

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _seconds_per_step(recipe: Recipe, registry: Registry, device: str, at_step: int = 0) -> StepTiming:
    """Mean of ``TIMED_STEPS`` steps numbered from ``at_step + 1`` (a discriminator warm-up step or a full
    one, as the run would take them), after one warm-up, on random patches (CUDA synchronised)."""
    torch.manual_seed(recipe.training.seed)
    with tempfile.TemporaryDirectory(prefix="mgsr-plan-") as tmp:
        built = build(recipe, registry, training=True)
        trainer = stage_trainer(built, Path(tmp), with_data=False, device=device, progress=False)
        trainer.step = at_step
        size = recipe.data.patch_size
        hr = torch.rand(trainer.local_batch, 3, size, size, device=trainer.device)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)

        def sync() -> None:
            trainer.read_losses(flush=True)  # the read-back a run does once per log_every steps
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)

        trainer.train_step(hr)
        sync()
        start = time.perf_counter()
        for _ in range(TIMED_STEPS):
            trainer.train_step(hr)
        sync()
        return StepTiming((time.perf_counter() - start) / TIMED_STEPS, _peak_bytes(trainer.device))


def _timing_line(recipe: Recipe, registry: Registry, device: str, steps: int) -> str:
    """The stage's step time, each kind of step timed and weighted by how many the stage runs (the
    discriminator's warm-up steps cost about half a full step), and the memory peak."""
    warm = min(recipe.training.discriminator_warmup_steps, steps)
    kinds = [(name, count, at) for name, count, at in (("D warm-up", warm, 0), ("full", steps - warm, warm)) if count]
    timed = {name: _seconds_per_step(recipe, registry, device, at) for name, _, at in kinds or [("full", 1, 0)]}
    total = sum(count * timed[name].seconds for name, count, _ in kinds)
    each = ", ".join(f"{t.seconds:.3g} s/step {name}" for name, t in timed.items())
    peak = max(t.peak_bytes for t in timed.values())
    where = "CUDA allocated" if torch.device(device).type == "cuda" else "resident"
    return (
        f"            {each} (measured over {TIMED_STEPS} steps each) -> {_duration(total)} for {steps} steps; "
        f"memory peak {peak / 2**30:.3g} GiB {where}"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _losses(recipe: Recipe) -> str:
    parts = []
    for spec in recipe.losses:
        config = spec.config
        amps = "/".join(f"{w:g}" for w in getattr(config, "noise", ()))
        parts.append(f"{spec.type} {getattr(config, 'weight', 1.0):g} (W {amps})" if amps else spec.type)
    return ", ".join(parts)


@attrs.frozen
class DataPlan:
    lines: tuple[str, ...]
    images: int


def _data(recipe: Recipe, folders: DataFolders) -> DataPlan:
    data = recipe.data
    statuses = [source_status(folder.path(), data.target_megapixels) for folder in folders.train]
    total = sum(s.images for s in statuses)
    resize = f"resized to {data.target_megapixels:g} Mpx" if data.target_megapixels else "at their own size"
    lines = [f"{total} training images, {resize}, {data.patch_size}x{data.patch_size} patches"]
    lines += [f"  {status}" for status in statuses]
    return DataPlan(tuple(lines), total)


def _validation(recipe: Recipe, folders: DataFolders, images: int) -> str:
    data = recipe.data
    scale = validation_scale(recipe.training)
    if data.val:
        found = len(scan_images(folders.val_paths(), min_side=scale).usable)
        return f"{found} data.val images at {scale}x ({', '.join(data.val)})"
    held = holdout_count(data.holdout, images)
    if not held:
        return "none (no data.val, and data.holdout holds out nothing from this many images)"
    return f"{held} held-out training images at {scale}x (data.holdout; set data.val to choose your own)"


def _resume(stages: list[Stage], resume: str | None) -> str:
    try:
        starts = starting_points(stages, resume)
    except MgsrError as exc:
        return f"cannot start: {exc}"
    for stage, start in zip(stages, starts, strict=True):
        if start == SKIP:
            continue
        if start is None:
            return f"stage '{stage.name}' from its first step" + (" (a new run)" if stage is stages[0] else "")
        return f"stage '{stage.name}' from {start[0]} (step {int(start[1]['step'])})"
    return "nothing left to train"


def dry_run(
    recipe: Recipe,
    run_dir: Path,
    *,
    resume: str | None,
    device: str,
    where: str,
    registry: Registry | None = None,
    measure: bool = True,
) -> list[str]:
    """The plan's lines (see the module docstring); ``measure=False`` skips the timed steps."""
    registry = registry or default_registry()
    placed = resolve_device(device)
    stages = plan_stages(recipe, run_dir, registry, where=where)
    folders = data_folders(recipe.data)
    data = _data(recipe, folders)
    held = 0 if recipe.data.val else holdout_count(recipe.data.holdout, data.images)
    files, stage_lines, built, file_problems = "all present (nothing to download)", [], [], []
    for stage in stages:
        # the pre-training's result does not exist yet: the modules are timed from random weights
        start = unweighted(stage.recipe)
        present, timed, modules, problem = _files_needed(start, registry)
        files = present if timed is not start else files
        built.append(modules)
        file_problems += [problem] if problem else []
        spec = resolve_schedule(stage.recipe.training, max(data.images - held, 1))
        scales = "/".join(f"{1 << s}x" for s in spec.scales)
        origin = f"; starts from {stage.recipe.model.weights}" if stage.recipe.model.weights else ""
        stage_lines.append(
            f"stage '{stage.name}'  {spec.steps} steps, batch {spec.batch_size}, {scales}, "
            f"{spec.precision}: {_losses(stage.recipe)}{origin}"
        )
        if measure:
            stage_lines.append(_timing_line(timed, registry, placed, spec.steps))
    lines = [
        f"mgsr: plan of {where} in {run_dir} (dry run: nothing is trained, prepared or downloaded)",
        f"device      {describe_device(device, placed)}",
    ]
    lines += [("data        " if i == 0 else "            ") + line for i, line in enumerate(data.lines)]
    lines.append(f"validation  {_validation(recipe, folders, data.images)}")
    lines.append(f"files       {files}")
    found = readiness(stages, built, run_dir, create=False)
    lines.append(f"disk        {found.disk}")
    lines += [f"problem     {problem}" for problem in (*file_problems, *found.problems)]
    lines.append(f"start       {_resume(stages, resume)}")
    return lines + stage_lines
