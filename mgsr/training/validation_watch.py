"""A run's validations as the loop sees them: scores, the grid alarms with limits calibrated at the start, and
the best-knob choice (``training.export``).

Why one object: the three read the same scores, and two of them carry state a resume must keep (the limits,
measured on the start model that a resumed run no longer has; the weights of the best knob so far).  The loop
calls :meth:`ValidationWatch.start` once, :meth:`ValidationWatch.validate` at every validation, and saves
:meth:`ValidationWatch.state_dict` with its checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from mgsr.assembly.loading import load_generator
from mgsr.evaluation.knob import phase_spread
from mgsr.model.generator import GMGBP
from mgsr.training.selection import BestKnob, selection_for
from mgsr.training.validation import Validator
from mgsr.training.watch import period2_limits, warn_alarms

#: the model whose period-2 ratios calibrate a run that starts from nothing it could be compared with (its
#: weights are bundled: no network)
REFERENCE_MODEL = "pirm-r3"


class ValidationWatch:
    """Scores ``validator``'s images (None: none to score), watches them for a grid, keeps the best knob."""

    def __init__(
        self, validator: Validator | None, export: str, trained_w: Collection[float], frozen_until: int = 0
    ) -> None:
        """``frozen_until``: the last step at which the generator is still the one the stage started from (the
        discriminator's warm-up): its validations are scored and watched but never chosen as the best knob
        (seed 3 of knob_cpu would otherwise export its pre-training, whose untrained W = 1 scored best once)."""
        self.validator = validator
        self.trained_w = set(trained_w)
        self.frozen_until = frozen_until
        self.best: BestKnob | None = selection_for(export, validator)
        self.limits: dict[str, float] = {}

    def start(self, generator: GMGBP, own_start: bool) -> dict[str, float]:
        """Calibrate the period-2 limits (see :mod:`mgsr.training.watch`) against ``generator`` when the run
        starts from weights of the user's (``own_start``), else against the released :data:`REFERENCE_MODEL`;
        returns them as ``watch/period2_limit_w<W>`` for the log."""
        if self.validator is None or self.validator.period2 is None:
            return {}
        if own_start:
            reference = generator
        else:
            reference = load_generator(REFERENCE_MODEL, device=next(generator.parameters()).device)
        self.limits = period2_limits(self.validator(reference))
        return {key.replace("val/period2_ratio_", "watch/period2_limit_"): v for key, v in self.limits.items()}

    def validate(self, step: int, generator: GMGBP) -> dict[str, float]:
        """Validation scores and the classic upscaler's phase spread; warnings for a grid; the best knob kept."""
        scores = self.validator(generator) if self.validator is not None else {}
        spread = phase_spread(generator.classic_upscaler.phase_gains())
        if spread is not None:
            scores["val/phase_spread"] = spread
        warn_alarms(step, scores, self.trained_w, self.limits)
        trained = step > self.frozen_until
        if self.best is not None and trained and self.best.consider(step, scores, generator, self.limits):
            scores["val/best_knob_step"] = step
        return scores

    def exported(self, generator: GMGBP, step: int) -> str:
        """Load the weights ``training.export`` chose into ``generator`` (the run is over); which step they are."""
        return self.best.chosen(generator, step) if self.best is not None else f"step {step}"

    def state_dict(self) -> dict[str, Any]:
        return {"limits": dict(self.limits), "best_knob": self.best.state_dict() if self.best is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """A checkpoint's watch (one written before limits existed has none: the default limit applies)."""
        self.limits = {str(k): float(v) for k, v in (state.get("limits") or {}).items()}
        if self.best is not None and state.get("best_knob") is not None:
            self.best.load_state_dict(state["best_knob"])


def own_start(weights: str | None, pretrain_dir: Path) -> bool:
    """Whether a stage starts from weights worth comparing with: the user's, not its own pre-training's."""
    return weights is not None and Path(weights).resolve() != pretrain_dir.resolve()
