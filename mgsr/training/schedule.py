"""A recipe's schedule in steps: epochs and per-epoch validation resolved once the training set is known; the
learning-rate decay over the steps.

The paper's ablations (figure 8) train "for 100 epochs" and validate "after
each epoch", so a recipe may count in epochs (``training.epochs``,
``training.validate_every_epochs``).  The patch stream (see
:class:`mgsr.training.data.ResumableSampler`) draws one random patch of every
training image per pass, in a fresh order each pass; an epoch is that pass
rounded up to whole batches: ``ceil(images / batch_size)`` steps.  Counting in
whole steps keeps every epoch the same length, so "after epoch e" is step
``e * steps_per_epoch`` and a resumed run validates at the same steps.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

from mgsr.errors import TrainingError
from mgsr.recipe import TrainingSpec


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Steps that draw one patch of each of ``images`` training images: ``ceil(images / batch_size)``."""
    if images <= 0:
        raise TrainingError("an epoch needs at least one training image")
    return -(-images // batch_size)


def validation_scale(spec: TrainingSpec) -> int:
    """``validate_scale``, or its default: 4 when the recipe trains 4x (the PIRM-SR scale the paper
    reports), else the largest trained scale."""
    if spec.validate_scale is not None:
        return spec.validate_scale
    return 4 if 2 in spec.scales else 1 << max(spec.scales)


def resolve_schedule(spec: TrainingSpec, images: int) -> TrainingSpec:
    """``spec`` counted in steps only: ``steps`` from ``epochs``, ``validate_every`` from
    ``validate_every_epochs``, for a training set of ``images`` images (the global batch counts)."""
    if spec.epochs is None and spec.validate_every_epochs is None:
        return spec
    per_epoch = steps_per_epoch(images, spec.batch_size)
    changes: dict[str, Any] = {}
    if spec.epochs is not None:
        changes.update(steps=spec.epochs * per_epoch, epochs=None)  # one count; a spec never holds both
    if spec.validate_every_epochs is not None:
        changes.update(validate_every=spec.validate_every_epochs * per_epoch, validate_every_epochs=None)
    return attrs.evolve(spec, **changes)


def sqrt_decay(optimizer: torch.optim.Optimizer, decay_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The paper's square-root learning-rate decay of ``optimizer``: its rate times 1 / sqrt(1 + t / decay_steps)
    at step t (``training.lr_decay_steps``: the step at which the rate is down to 1 / sqrt(2))."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / math.sqrt(1.0 + step / decay_steps))


def set_base_lr(scheduler: torch.optim.lr_scheduler.LambdaLR, lr: float) -> None:
    """Make a restored schedule follow the recipe's base learning rate from its current step on."""
    scheduler.base_lrs = [lr for _ in scheduler.base_lrs]
    for group, factor in zip(scheduler.optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(scheduler.last_epoch)
