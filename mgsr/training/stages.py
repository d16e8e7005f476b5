"""The stages of one ``mgsr train`` run: the paper's L1 pre-training, then the recipe's objective from its result.

Why stages live in the host and not in the user's shell: section 6.1 pre-trains
G-MGBP "with W = 0 and only L1 loss" and starts the full objective (eq. 7) from
it.  Started from random weights instead, the adversarial gradient splits the
four phases of the learned bicubic filter into a period-2 grid, and nothing
tells the user why.  So a recipe with a ``[pretrain]`` table runs both
stages in one run folder::

    RUN_DIR/pretrain/   the pre-training: checkpoints/, samples/, generator.safetensors
    RUN_DIR/            the objective:    checkpoints/, samples/, generator.safetensors
    RUN_DIR/metrics.jsonl   both stages' records, each with "stage": "pretrain" | "train"

Why a ``[pretrain]`` table and not a general ``[[stages]]`` list: the paper has
exactly two stages and the second one *is* the recipe; a list of stages would
make every stage a partial recipe with its own merge rules, and the common
case (one objective, one warm start) harder to read.  What the pre-training
changes is small (its losses and its length); the rest is the recipe's.

Resuming (``--resume auto``) finds the stage to continue from the run folder:
checkpoints of the objective mean the pre-training is over; an exported
``pretrain/generator.safetensors`` means it finished (a crash exactly at the
boundary starts the objective from it); otherwise the pre-training continues
from its newest checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

import attrs

from mgsr.errors import TrainingError
from mgsr.interfaces import AdversarialLoss
from mgsr.model.weights import RUN_GENERATOR_FILE
from mgsr.recipe import Recipe
from mgsr.registry import Registry
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint, newest_loadable

PRETRAIN, TRAIN = "pretrain", "train"
#: what a finished stage leaves in its folder (written last, atomically)
EXPORTED = RUN_GENERATOR_FILE


@attrs.frozen
class Stage:
    """One stage: its name (the ``stage`` of its metrics records), the recipe it trains, its folder."""

    name: str
    recipe: Recipe
    run_dir: Path

    @property
    def finished(self) -> bool:
        return (self.run_dir / EXPORTED).is_file()


def pretrain_recipe(recipe: Recipe) -> Recipe:
    """The recipe of the pre-training stage: ``recipe`` with ``[pretrain]``'s losses, length and rate."""
    pre = recipe.pretrain
    if pre is None:
        raise TrainingError("internal: the recipe has no [pretrain] table")
    training = attrs.evolve(
        recipe.training,
        steps=pre.steps,
        epochs=pre.epochs,
        lr=pre.lr if pre.lr is not None else recipe.training.lr,
        lr_decay_steps=pre.lr_decay_steps or recipe.training.lr_decay_steps,
        discriminator_warmup_steps=0,
        export="last",
    )  # nothing adversarial here: the warm-up and the knob are the objective's
    return attrs.evolve(recipe, losses=pre.losses, training=training, pretrain=None)


def is_adversarial(recipe: Recipe, registry: Registry) -> bool:
    return any(issubclass(registry.get("loss", spec.type), AdversarialLoss) for spec in recipe.losses)


def plan_stages(recipe: Recipe, run_dir: Path, registry: Registry, where: str = "the recipe") -> list[Stage]:
    """The stages ``recipe`` trains in ``run_dir``, in order.

    The pre-training runs when the recipe has a ``[pretrain]`` table and no
    ``model.weights`` (weights are a starting point already).  An adversarial
    objective that would start from random weights is refused unless the
    recipe says ``training.from_scratch = true``.
    """
    run_dir = Path(run_dir)
    if recipe.pretrain is None or recipe.model.weights is not None:
        if recipe.model.weights is None and not recipe.training.from_scratch and is_adversarial(recipe, registry):
            raise TrainingError(
                f"{where}: its adversarial objective would start from random weights. The paper pre-trains with "
                f"L1 at W = 0 first: add a [pretrain] table (as recipes/pirm_r3.toml has), or start from trained "
                f"weights with --set model.weights=RUN_DIR (e.g. runs/pirm_r3/pretrain) or =pirm-r3; "
                f"--set training.from_scratch=true trains from random weights anyway"
            )
        return [Stage(TRAIN, recipe, run_dir)]
    pre_dir = run_dir / PRETRAIN
    main = attrs.evolve(recipe, model=attrs.evolve(recipe.model, weights=str(pre_dir)))
    return [Stage(PRETRAIN, pretrain_recipe(recipe), pre_dir), Stage(TRAIN, main, run_dir)]


#: a checkpoint to resume from: its path and its state
Checkpoint = tuple[Path, dict[str, Any]]
#: a stage's starting point: None (from the start), a checkpoint, or SKIP (finished, or not needed)
Start = Checkpoint | Literal["skip"] | None
SKIP: Final = "skip"


def starting_points(stages: list[Stage], resume: str | None) -> list[Start]:
    """Where each stage starts, from ``--resume`` (None, ``auto`` or a checkpoint path / run folder).

    Refuses to train over an existing run unless asked to resume.
    """
    if resume is None:
        for stage in stages:
            if list_checkpoints(stage.run_dir / "checkpoints"):
                raise TrainingError(
                    f"{stage.run_dir} already holds checkpoints; continue it with --resume auto or choose another --out"
                )
        return [None] * len(stages)
    if resume == "auto":
        found = [newest_loadable(stage.run_dir / "checkpoints") for stage in stages]
        starts: list[Start] = []
        for i, stage in enumerate(stages):
            later_started = any(f is not None for f in found[i + 1 :]) or any(s.finished for s in stages[i + 1 :])
            if later_started or (stage.name == PRETRAIN and stage.finished):
                starts.append(SKIP)
            else:
                starts.append(found[i])
        return starts
    path = Path(resume)
    if path.is_dir():
        checkpoint = newest_loadable(path / "checkpoints") or newest_loadable(path)
        if checkpoint is None:
            raise TrainingError(f"no loadable checkpoint in {path}")
    else:
        checkpoint = (path, load_checkpoint(path))
    owner = _owner(stages, checkpoint[0])
    return [SKIP if i < owner else checkpoint if i == owner else None for i in range(len(stages))]


def _owner(stages: list[Stage], checkpoint: Path) -> int:
    """The stage a checkpoint file continues: the one whose folder holds it (the last stage otherwise)."""
    resolved = checkpoint.resolve()
    for i, stage in enumerate(stages):
        if resolved.parent == (stage.run_dir / "checkpoints").resolve() or resolved.parent == stage.run_dir.resolve():
            return i
    return len(stages) - 1
