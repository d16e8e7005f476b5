"""A run's checkpoint state, and continuing from it: weights, optimizers, schedules, RNG states and the data position.

Why apart from the loop: resuming is where a changed recipe meets old state (more steps, another learning
rate), and the rules for that — what carries over, what follows the new recipe, what is said — are read
together here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from mgsr.errors import TrainingError
from mgsr.model.state import load_module_state
from mgsr.recipe_tables import changed_keys
from mgsr.training.image_list import image_list, warn_if_changed
from mgsr.training.schedule import set_base_lr

#: a :class:`mgsr.training.trainer.Trainer` (not imported: the trainer imports this module)
Trainer = Any


def restore(trainer: Trainer, path: Path, data: dict[str, Any]) -> None:
    """Continue from a checkpoint; a recipe changed since (more steps, another lr) is applied and said."""
    if not isinstance(data.get("generator"), dict):
        raise TrainingError(f"checkpoint {path} holds no generator state")
    load_module_state(trainer.generator, data["generator"], f"checkpoint {path} (generator)")
    if trainer.discriminator is not None:
        if data.get("discriminator") is None:
            raise TrainingError(f"checkpoint {path} has no discriminator but the recipe has one")
        load_module_state(trainer.discriminator, data["discriminator"], f"checkpoint {path} (discriminator)")
    try:
        trainer.opt_g.load_state_dict(data["optimizers"]["generator"])
        trainer.sched_g.load_state_dict(data["schedulers"]["generator"])
        if trainer.opt_d is not None:
            trainer.opt_d.load_state_dict(data["optimizers"]["discriminator"])
            trainer.sched_d.load_state_dict(data["schedulers"]["discriminator"])
        torch.set_rng_state(data["rng"]["torch"])
        trainer.noise_rng.set_state(data["rng"]["noise"])
        trainer.amp.load_state_dict(data.get("scaler"))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise TrainingError(f"checkpoint {path}: optimizer or RNG state does not fit ({exc})") from None
    trainer.watch.load_state_dict(data.get("watch") or {})
    trainer.step = int(data["step"])
    trainer.samples_seen = int(data.get("samples_seen", trainer.step * trainer.spec.batch_size))
    if trainer.dataset is not None:  # the data position means other patches when the images changed
        warn_if_changed(path, data.get("images"), trainer.dataset.images)
    changed = [
        k
        for k in changed_keys(json.loads(data.get("recipe", "{}")), trainer.recipe.to_dict())
        if k not in ("training.steps", "training.epochs")
    ]  # training longer is what resuming is for
    if changed:
        warnings.warn(
            f"the recipe differs from checkpoint {path.name}'s ({', '.join(changed[:8])}); "
            f"continuing with the new recipe: weights, optimizer moments and data position carry "
            f"over, learning rates follow the new recipe",
            stacklevel=2,
        )
    set_base_lr(trainer.sched_g, trainer.spec.lr)
    if trainer.sched_d is not None:
        set_base_lr(trainer.sched_d, trainer.spec.discriminator_lr)


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """Everything an exact resume needs (see :func:`restore`): tensors and plain containers only."""
    return {
        "recipe": json.dumps(trainer.recipe.to_dict(), sort_keys=True),
        "recipe_digest": trainer.recipe.digest(),
        "generator": trainer.generator.state_dict(),
        "discriminator": trainer.discriminator.state_dict() if trainer.discriminator is not None else None,
        "optimizers": {
            "generator": trainer.opt_g.state_dict(),
            "discriminator": trainer.opt_d.state_dict() if trainer.opt_d else None,
        },
        "schedulers": {
            "generator": trainer.sched_g.state_dict(),
            "discriminator": trainer.sched_d.state_dict() if trainer.sched_d else None,
        },
        "samples_seen": trainer.samples_seen,
        "rng": {"torch": torch.get_rng_state(), "noise": trainer.noise_rng.get_state()},
        "watch": trainer.watch.state_dict(),  # the period-2 limits and training.export's choice so far
        "images": image_list(trainer.dataset.images) if trainer.dataset is not None else None,  # see restore
        "scaler": trainer.amp.state_dict(),  # fp16's loss scale and growth counter ({} otherwise): exact resume
    }
