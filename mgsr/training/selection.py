"""Which validated generator a run exports: its last one, or the one with the best knob (``training.export``).

Why a choice at all: an adversarial objective does not converge to a point.  Measured on the CPU recipe
``knob_cpu`` (docs/knob_experiments.md), the held-out NIQE gap between W = 1 and W = 0 swings by up to
5 NIQE between validations 25 steps apart (one seed: -2.71 at one, -0.21 at the next) while RMSE and
the grid stay put, so "the last step" is a draw from that oscillation.  The run's own validation gap (on
images it never trains on) has the held-out gap's sign at 10 of 12 checkpoints, so keeping the validated
generator whose gap is lowest turns the draw into a choice: model selection on a validation set.

``"best_knob"`` keeps, in memory and in every checkpoint (an exact resume keeps the choice), the weights of
the validation with the lowest ``val/niqe_w1 - val/niqe_w0`` among those a user would accept:

- ``val/rmse_w0`` below bicubic's (W = 0 is still a super-resolver);
- ``val/rmse_w1 <= 1.3 x val/rmse_w0`` (lower NIQE from detail, not from noise);
- nothing the watch warns about: no period-2 grid at either W, no phase split (:mod:`mgsr.training.watch`).

When no validation qualifies, the run exports its last weights and says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from mgsr.errors import TrainingError
from mgsr.training.validation import Validator
from mgsr.training.watch import alarms

#: a knob whose W = 1 costs more than this many times W = 0's RMSE buys its NIQE with noise
RMSE_RATIO_LIMIT = 1.3


def knob_gap(scores: Mapping[str, float]) -> float | None:
    """NIQE(W = 1) - NIQE(W = 0) of one validation (negative: W = 1 looks more natural), or None unscored."""
    if "val/niqe_w0" not in scores or "val/niqe_w1" not in scores:
        return None
    return scores["val/niqe_w1"] - scores["val/niqe_w0"]


def disqualified(step: int, scores: Mapping[str, float], limits: Mapping[str, float] | None = None) -> str | None:
    """Why a validation's generator may not be exported as the best knob, or None when it may."""
    needed = ("val/niqe_w0", "val/niqe_w1", "val/rmse_w0", "val/rmse_w1", "val/rmse_bicubic")
    missing = [key for key in needed if key not in scores]
    if missing:
        return f"not scored: {', '.join(missing)}"
    if not scores["val/rmse_w0"] < scores["val/rmse_bicubic"]:
        return f"RMSE(W=0) {scores['val/rmse_w0']:.3f} is not below bicubic's {scores['val/rmse_bicubic']:.3f}"
    ratio = scores["val/rmse_w1"] / scores["val/rmse_w0"]
    if not ratio <= RMSE_RATIO_LIMIT:
        return f"RMSE(W=1) is {ratio:.3f}x RMSE(W=0) (limit {RMSE_RATIO_LIMIT}x)"
    grid = alarms(step, scores, limits=limits)  # the watch's rule: what it warns about is never the best knob
    return grid[0] if grid else None


class BestKnob:
    """The best-knob weights seen so far (see the module docstring); ``consider`` each validation."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.gap = math.inf
        self.weights: dict[str, torch.Tensor] | None = None

    def consider(
        self,
        step: int,
        scores: Mapping[str, float],
        generator: torch.nn.Module,
        limits: Mapping[str, float] | None = None,
    ) -> bool:
        """Keep ``generator``'s weights (copied to the CPU) when this validation is the best so far (``limits``:
        the run's period-2 limits, see :func:`mgsr.training.watch.period2_limits`)."""
        gap = knob_gap(scores)
        if gap is None or disqualified(step, scores, limits) is not None or not gap < self.gap:
            return False
        self.step, self.gap = step, gap
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in generator.state_dict().items()}
        return True

    def chosen(self, generator: torch.nn.Module, last_step: int) -> str:
        """Load the kept weights into ``generator`` (the run is over); what was exported, for the model card."""
        if self.weights is None or self.step is None:
            warnings.warn(
                "training.export = 'best_knob': no validation qualified (each had a grid, W = 0 no better than "
                "bicubic, W = 1 too noisy, or no NIQE score); exporting the last step's weights",
                stacklevel=2,
            )
            return f"step {last_step} (no validation qualified as the best knob)"
        generator.load_state_dict(self.weights)
        return f"step {self.step} of {last_step}, the validation with the best knob (NIQE gap {self.gap:+.3f})"

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "gap": self.gap, "weights": self.weights}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self.step, self.gap, self.weights = state["step"], float(state["gap"]), state["weights"]
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"the checkpoint's best-knob record does not fit ({exc})") from None


def selection_for(export: str, validation: Validator | None) -> BestKnob | None:
    """The run's selection for ``training.export`` (None: the last step); an error, before the first step, when
    the validation cannot choose (no images, or none large enough for NIQE)."""
    if export == "last":
        return None
    if validation is None:
        raise TrainingError(
            f"training.export = {export!r} chooses among validations, but this run has no validation images: "
            f"set data.val or data.holdout"
        )
    if not any(metric.name == "niqe" for metric in validation.metrics):
        raise TrainingError(
            f"training.export = {export!r} compares NIQE at W = 0 and W = 1, which needs validation images of at "
            f"least 96x96 pixels after data.val_crop (the warning above names the image that is smaller)"
        )
    return BestKnob()
