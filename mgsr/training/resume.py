"""Continuing a run from a checkpoint: the trainer takes its state back, and a recipe changed since is said.

Why apart from the loop: resuming is where a changed recipe meets old state (more steps, another learning
rate).  What carries over and what follows the new recipe is the trainer's to decide
(:meth:`~mgsr.training.trainer.Trainer.load_state_dict`: weights, optimizer moments and the data position carry
over, learning rates follow the new recipe); what is said about it is this module's.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mgsr.recipe import Recipe
from mgsr.recipe.tables import changed_keys
from mgsr.training.trainer import Trainer

#: recipe keys a resumed run may change without a word: training longer is what resuming is for
LONGER = ("training.steps", "training.epochs")


def restore(trainer: Trainer, path: Path, state: Mapping[str, Any]) -> None:
    """Continue ``trainer`` from checkpoint ``path`` (its ``state``); a recipe changed since is applied and said."""
    trainer.load_state_dict(state, path)
    warn_if_recipe_changed(path, state, trainer.recipe)


def warn_if_recipe_changed(path: Path, state: Mapping[str, Any], recipe: Recipe) -> None:
    """A warning naming the keys in which ``recipe`` differs from the one checkpoint ``path`` was trained with."""
    changed = [k for k in changed_keys(json.loads(state.get("recipe", "{}")), recipe.to_dict()) if k not in LONGER]
    if changed:
        warnings.warn(
            f"the recipe differs from checkpoint {path.name}'s ({', '.join(changed[:8])}); "
            f"continuing with the new recipe: weights, optimizer moments and data position carry "
            f"over, learning rates follow the new recipe",
            stacklevel=3,
        )
