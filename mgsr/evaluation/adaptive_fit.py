"""Fitting an adaptive W map to an RMSE budget: the rule with the lowest set NIQE whose set RMSE stays within it.

Why a grid of map shapes times a few amplitudes, interpolated: the network's output
is not linear in W, so outputs at a few W cannot be blended into the output of a
map (measured on a 48x48 face at 4x, a relative flat map at W = 0.03: the per-pixel blend of the W = 0 and
W = 0.03 outputs is off the map's real output by 1.8 grey levels on average, 36 at most, while the map
itself moves the output only 3-4 levels from either), and only the analysis of the LR image at level 0 is
W-independent (a small part of a 4x pass), so every candidate costs one pass over
the set.  A map's RMSE and NIQE are smooth in its amplitude, so each shape is
evaluated at three amplitudes (plus the W = 0 outputs, shared by all shapes) and
its NIQE read at the budget by linear interpolation; one grid serves every
budget.  Each shape's amplitudes are the base W values divided by its mean map
value on the set, so all shapes land near the same RMSEs.  The winner is then
checked with one exact pass (``verify``) and falls back to its evaluated
amplitude below the budget when the interpolation overshot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mgsr.errors import EvaluationError
from mgsr.evaluation.scoring import Evaluation, write_json
from mgsr.evaluation.tradeoff import Calibration
from mgsr.inference.adaptive import (
    ADAPTIVE_FORMAT,
    ADAPTIVE_KIND,
    AdaptiveRule,
    activity,
    adaptive_map,
    is_adaptive_record,
)

#: W values (of a global map) the amplitude grid of every shape is matched to: the span of pirm-r3's cliff
BASE_AMPLITUDES = (0.0075, 0.015, 0.03)


def candidate_shapes(levels: int, lr_images: Sequence[np.ndarray]) -> list[tuple[str, AdaptiveRule]]:
    """The map shapes searched, with unit level amplitudes: the global map first (so the fit can say the
    map does not help), flat-favouring and busy-favouring ones, absolute and relative, and a per-level one.

    The absolute centre is the set's median activity, so it adapts to the fitting set's units.
    """
    unit = (1.0,) * levels
    probe = AdaptiveRule(unit)
    median = float(np.median(np.concatenate([_activity(probe, im) for im in lr_images])))
    return [
        ("global", AdaptiveRule(unit, floor=1.0, smooth=0.0)),
        ("flat-absolute", AdaptiveRule(unit, centre=median, softness=0.15, floor=0.2, smooth=2.0)),
        ("flat-relative", AdaptiveRule(unit, centre=0.5, softness=0.15, floor=0.2, smooth=2.0, relative=True)),
        ("busy-relative", AdaptiveRule(unit, centre=0.5, softness=-0.15, floor=0.2, smooth=2.0, relative=True)),
        (
            "last-level-flat",
            AdaptiveRule(
                (0.25,) * (levels - 1) + (1.0,),
                centre=0.5,
                softness=0.15,
                floor=0.2,
                smooth=2.0,
                gradient=1.0,
                relative=True,
            ),
        ),
    ]


def _activity(rule: AdaptiveRule, lr: np.ndarray) -> np.ndarray:
    return activity(rule, lr.astype(np.float32) / 255).numpy().ravel()


def mean_map(rule: AdaptiveRule, lr_images: Sequence[np.ndarray]) -> float:
    """The pixel-weighted mean of the rule's map over uint8 LR images."""
    maps = [adaptive_map(rule, im.astype(np.float32) / 255) for im in lr_images]
    return float(sum(m.sum() for m in maps) / sum(m.size for m in maps))


@attrs.frozen
class Curve:
    """One shape's set scores at increasing amplitude factors (factor 0 = the W = 0 outputs)."""

    name: str
    shape: AdaptiveRule
    factors: tuple[float, ...]
    rmse: tuple[float, ...]
    niqe: tuple[float, ...]

    def at_budget(self, max_rmse: float) -> tuple[float, float, float] | None:
        """(factor, RMSE, NIQE) where the curve reaches ``max_rmse``, interpolated linearly on the first
        segment that crosses it; the last point when all stay below; ``None`` when even factor 0 is over."""
        if self.rmse[0] > max_rmse:
            return None
        for k in range(1, len(self.rmse)):
            if self.rmse[k] > max_rmse:
                t = (max_rmse - self.rmse[k - 1]) / (self.rmse[k] - self.rmse[k - 1])
                factor = self.factors[k - 1] + t * (self.factors[k] - self.factors[k - 1])
                return factor, max_rmse, self.niqe[k - 1] + t * (self.niqe[k] - self.niqe[k - 1])
        return self.factors[-1], self.rmse[-1], self.niqe[-1]


@attrs.frozen
class AdaptiveFit:
    """The rule chosen for one budget, the curves it was chosen from, and its checked set scores."""

    max_rmse: float
    name: str
    rule: AdaptiveRule
    predicted: tuple[float, float]
    measured: tuple[float, float] | None
    curves: tuple[Curve, ...]
    seconds: float

    def save(self, path: str | os.PathLike[str], **context: Any) -> None:
        """Write the calibration file (JSON, atomically): the rule, the budget, what was searched."""
        scores = self.measured or self.predicted
        record = {
            **context,
            "kind": ADAPTIVE_KIND,
            "format_version": ADAPTIVE_FORMAT,
            "rule": self.rule.to_dict(),
            "shape": self.name,
            "max_rmse": self.max_rmse,
            "rmse": scores[0],
            "niqe": scores[1],
            "checked": self.measured is not None,
            "fit_seconds": self.seconds,
            "searched": [
                {
                    "shape": c.name,
                    "rule": c.shape.to_dict(),
                    "factors": list(c.factors),
                    "rmse": list(c.rmse),
                    "niqe": list(c.niqe),
                }
                for c in self.curves
            ],
        }
        write_json(path, record)


Evaluate = Callable[[Any], Evaluation]


def measure_curves(
    evaluate: Evaluate,
    shapes: Sequence[tuple[str, AdaptiveRule]],
    lr_images: Sequence[np.ndarray],
    base: Sequence[float] = BASE_AMPLITUDES,
    progress: Callable[[str], None] | None = None,
) -> list[Curve]:
    """Every shape's curve: the W = 0 pass once, then ``len(base)`` passes per shape."""

    def scores(noise: Any, label: str) -> tuple[float, float]:
        agg = evaluate(noise).aggregate
        if "niqe" not in agg:
            raise EvaluationError("fitting an adaptive map needs NIQE: use a protocol that computes it")
        if progress:
            progress(f"{label}: RMSE {agg['rmse']:.4f}, NIQE {agg['niqe']:.4f}")
        return agg["rmse"], agg["niqe"]

    zero = scores(0.0, "W=0")
    curves = []
    for name, shape in shapes:
        mean = mean_map(shape, lr_images) * float(np.mean(shape.levels))
        factors = [w / max(mean, 1e-6) for w in base]
        points = [scores(shape.scaled(f), f"{name} x{f:.4g}") for f in factors]
        curves.append(
            Curve(name, shape, (0.0, *factors), (zero[0], *(p[0] for p in points)), (zero[1], *(p[1] for p in points)))
        )
    return curves


def choose(curves: Sequence[Curve], max_rmse: float) -> tuple[Curve, tuple[float, float, float]]:
    """The curve with the lowest interpolated NIQE at ``max_rmse`` and its (factor, RMSE, NIQE) there."""
    found = [(c, p) for c in curves if (p := c.at_budget(max_rmse)) is not None]
    if not found:
        raise EvaluationError(
            f"the budget cannot be met: RMSE at W = 0 is {curves[0].rmse[0]:.4f}, above --max-rmse {max_rmse:g}"
        )
    return min(found, key=lambda cp: cp[1][2])


def fit_for_budget(
    evaluate: Evaluate, curves: Sequence[Curve], max_rmse: float, seconds: float, verify: bool = True
) -> AdaptiveFit:
    """The fitted rule for one budget; with ``verify`` one exact pass, falling back below the budget if over."""
    curve, (factor, rmse, niqe) = choose(curves, max_rmse)
    rule = curve.shape.scaled(factor)
    measured = None
    if verify and factor > 0:
        agg = evaluate(rule).aggregate
        measured = (agg["rmse"], agg["niqe"])
        if measured[0] > max_rmse:  # interpolation overshot: take the evaluated point below the budget
            k = max(i for i, r in enumerate(curve.rmse) if r <= max_rmse)
            rule, measured = curve.shape.scaled(curve.factors[k]), (curve.rmse[k], curve.niqe[k])
    return AdaptiveFit(max_rmse, curve.name, rule, (rmse, niqe), measured, tuple(curves), seconds)


def load_calibration(path: str | os.PathLike[str]) -> float | AdaptiveRule:
    """What a calibration file applies: its adaptive rule, or the global W of the files written before
    adaptive maps (and of ``mgsr calibrate`` without ``--adaptive``); errors name the file."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        record = None  # Calibration.load_noise names the file and the problem
    if is_adaptive_record(record):
        return AdaptiveRule.load(path)
    return Calibration.load_noise(path)
