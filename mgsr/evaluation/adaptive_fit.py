"""Fitting an adaptive W map to an RMSE budget: the rule with the lowest set NIQE whose set RMSE stays within it.

How: the set is upscaled once per W of a grid of global W (:mod:`mgsr.evaluation.adaptive_grid`), after which
a candidate map's set RMSE and NIQE are read off those outputs in milliseconds, without a pass of its own.
That is what makes a real search affordable: the named shapes (the global map first, so the fit can answer
"one W"; noise on flat regions or on busy ones, at an absolute level or at each image's own quantile) and a
few hundred seeded random rules, each at a range of amplitudes, cost the grid's ten passes in all instead of
three passes each.  The estimate is exact at the grid W and approximate across a map's edges (the network
is not linear in W: a per-pixel blend of two global outputs is not the output of the map, and the error is
largest for sharp maps), so the global map and the few best-estimated maps are each scored by a real pass
(amplitude stepped down, one pass a step, while over the budget) and the best real score wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from mgsr.errors import EvaluationError
from mgsr.evaluation.adaptive_grid import GridImage, set_scores
from mgsr.evaluation.scoring import Evaluation, write_json
from mgsr.evaluation.tradeoff import Calibration
from mgsr.inference.adaptive import (
    ADAPTIVE_FORMAT,
    ADAPTIVE_KIND,
    AdaptiveRule,
    Noise,
    activity,
    is_adaptive_record,
    map_of_activity,
)

if TYPE_CHECKING:
    from mgsr.evaluation.upscalers import SetEvaluator

#: mean W (over the set's pixels) at which every candidate's curve is read: across pirm-r3's cliff and past it
AMPLITUDES = (0.0025, 0.004, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.04)
#: seeded random rules searched beside the named shapes
RANDOM_RULES = 150


def candidate_shapes(
    levels: int, lr_images: Sequence[np.ndarray], random_rules: int = RANDOM_RULES, seed: int = 0
) -> list[tuple[str, AdaptiveRule]]:
    """The map shapes searched, with unit level amplitudes: the global map first (so the fit can say the map
    does not help), the named flat- and busy-favouring ones, then ``random_rules`` rules drawn from ``seed``
    over every parameter of :class:`AdaptiveRule` (centre, softness of either sign, floor, gradient weight,
    smoothing, absolute or per-image quantile).

    Absolute centres are quantiles of the set's activity, so they adapt to the fitting set's units.
    """
    unit = (1.0,) * levels
    probe = AdaptiveRule(unit, gradient=1.0)
    plain = np.concatenate([_activity(AdaptiveRule(unit), im) for im in lr_images])
    with_gradient = np.concatenate([_activity(probe, im) for im in lr_images])
    shapes = [
        ("global", AdaptiveRule(unit, floor=1.0, smooth=0.0)),
        ("flat-absolute", AdaptiveRule(unit, centre=float(np.median(plain)), softness=0.15, floor=0.2, smooth=2.0)),
        ("flat-relative", AdaptiveRule(unit, centre=0.5, softness=0.15, floor=0.2, smooth=2.0, relative=True)),
        ("busy-relative", AdaptiveRule(unit, centre=0.5, softness=-0.15, floor=0.2, smooth=2.0, relative=True)),
    ]
    rng = np.random.default_rng(seed)
    for k in range(random_rules):
        gradient = float(rng.choice([0.0, 0.5, 1.0, 2.0]))
        quantile = float(rng.uniform(0.05, 0.95))
        relative = bool(rng.random() < 0.5)
        activity_of_set = with_gradient if gradient else plain
        rule = AdaptiveRule(
            unit,
            centre=quantile if relative else float(np.quantile(activity_of_set, quantile)),
            softness=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.03, 0.6)),
            floor=float(rng.choice([0.0, rng.uniform(0.0, 0.8)])),
            gradient=gradient,
            smooth=float(rng.choice([0.0, 1.0, 2.0, 4.0, 8.0])),
            relative=relative,
        )
        shapes.append((f"random-{k}", rule))
    return shapes


def _activity(rule: AdaptiveRule, lr: np.ndarray) -> np.ndarray:
    return activity(rule, lr.astype(np.float32) / 255).numpy().ravel()


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


Evaluate = Callable[[Noise | None], Evaluation]


def measure_curves(
    images: Sequence[GridImage],
    shapes: Sequence[tuple[str, AdaptiveRule]],
    amplitudes: Sequence[float] = AMPLITUDES,
) -> list[Curve]:
    """Every shape's curve on the grid's estimate: W = 0, then each shape scaled to each mean W of ``amplitudes``
    (the mean of its map over the set's pixels), so all shapes land near the same RMSEs.  The grid holds one W
    at every level, so the shapes must have equal levels (those of :func:`candidate_shapes` do)."""
    zero = set_scores(images, [np.zeros(im.lr.shape[:2]) for im in images])
    activities: dict[float, list[torch.Tensor]] = {}
    curves = []
    for name, shape in shapes:
        if shape.gradient not in activities:
            activities[shape.gradient] = [activity(shape, im.lr.astype(np.float32) / 255) for im in images]
        maps = [map_of_activity(shape, s).astype(np.float64) for s in activities[shape.gradient]]
        if len(set(shape.levels)) != 1:
            raise EvaluationError(f"shape {name}: the grid's estimate needs one W at every level, got {shape.levels}")
        mean = float(sum(m.sum() for m in maps) / sum(m.size for m in maps)) * shape.levels[-1]
        factors = [a / max(mean, 1e-6) for a in amplitudes]
        points = [set_scores(images, [f * shape.levels[-1] * m for m in maps]) for f in factors]
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


def check_budget_at_w0(evaluator: SetEvaluator, max_rmse: float) -> SetEvaluator:
    """Refuse a budget that W = 0 already exceeds, after one pass instead of the grid's ten; returns an
    evaluator that remembers the W = 0 outputs, so the grid's first W costs nothing more.

    Why first: no map can give less distortion than W = 0 everywhere, so such a budget cannot be met, and
    :func:`choose` would only say so after the grid (minutes on a CPU).  Only the RMSE is scored here.
    """
    remembered: dict[int, np.ndarray] = {}
    upscale = evaluator.upscale

    def upscale_remembering_w0(lr: np.ndarray, noise: Noise | None) -> np.ndarray:
        if not (isinstance(noise, float) and noise == 0.0):
            return upscale(lr, noise)
        if id(lr) not in remembered:  # the set's images live as long as the evaluator: ids are stable
            remembered[id(lr)] = upscale(lr, noise)
        return remembered[id(lr)]

    kept = attrs.evolve(evaluator, upscale=upscale_remembering_w0)
    rmse_only = attrs.evolve(kept, metrics=tuple(m for m in evaluator.metrics if m.name == "rmse"))
    rmse = rmse_only.evaluate(0.0).aggregate["rmse"]
    if rmse > max_rmse:
        raise EvaluationError(
            f"the budget cannot be met: RMSE at W = 0 (the least distortion this model gives) is {rmse:.4f}, "
            f"above --max-rmse {max_rmse:g}; give a budget above {rmse:.4f}"
        )
    return kept


#: real passes spent stepping a candidate's amplitude down when the estimate put it over the budget
VERIFY_STEPS = 4
#: the best-estimated candidates checked with real passes (besides the global map): the estimate is least
#: reliable for sharp maps, so the winner is the best of these by the real scores, not by the estimate
CHECKED_CANDIDATES = 3


def _measure(
    evaluate: Evaluate, curve: Curve, factor: float, max_rmse: float
) -> tuple[AdaptiveRule, tuple[float, float]]:
    """``curve``'s rule at ``factor`` scored by a real pass; while over the budget its amplitude is scaled down
    (by the estimate's RMSE overshoot, at least 10 %) and scored again, up to :data:`VERIFY_STEPS` passes; then
    W = 0, whose scores the grid holds."""
    for _ in range(VERIFY_STEPS):
        rule = curve.shape.scaled(factor)
        agg = evaluate(rule).aggregate
        if agg["rmse"] <= max_rmse:
            return rule, (agg["rmse"], agg["niqe"])
        over = (agg["rmse"] - curve.rmse[0]) / max(max_rmse - curve.rmse[0], 1e-9)
        factor *= min(0.9, 1 / over)
    return curve.shape.scaled(0.0), (curve.rmse[0], curve.niqe[0])


def fit_for_budget(
    evaluate: Evaluate,
    curves: Sequence[Curve],
    max_rmse: float,
    seconds: float,
    verify: bool = True,
    checked: int = CHECKED_CANDIDATES,
) -> AdaptiveFit:
    """The fitted rule for one budget.  Without ``verify``: the lowest estimated NIQE.  With it: the global map
    (the first curve) and the ``checked`` best-estimated other shapes are each scored by real passes
    (:func:`_measure`), and the lowest real NIQE within the budget wins, so a map is chosen over one W only
    when it beats it for real on the fitting set."""
    curve, (factor, rmse, niqe) = choose(curves, max_rmse)
    kept = _worth_keeping(curves, max_rmse)
    if not verify:
        return AdaptiveFit(max_rmse, curve.name, curve.shape.scaled(factor), (rmse, niqe), None, kept, seconds)
    ranked = sorted(((p, c) for c in curves[1:] if (p := c.at_budget(max_rmse)) is not None), key=lambda pc: pc[0][2])
    tried = []
    for point, candidate in [(p, c) for c in curves[:1] if (p := c.at_budget(max_rmse))] + ranked[:checked]:
        rule, measured = _measure(evaluate, candidate, point[0], max_rmse)
        tried.append((measured[1], candidate, rule, point, measured))
    _, curve, rule, point, measured = min(tried, key=lambda t: t[0])
    return AdaptiveFit(max_rmse, curve.name, rule, point[1:], measured, kept, seconds)


def _worth_keeping(curves: Sequence[Curve], max_rmse: float, best: int = 10) -> tuple[Curve, ...]:
    """The curves a calibration file records: the named shapes and the ``best`` random rules at the budget."""
    named = [c for c in curves if not c.name.startswith("random-")]
    scored = [(p[2], c) for c in curves if c.name.startswith("random-") and (p := c.at_budget(max_rmse))]
    return (*named, *(c for _, c in sorted(scored, key=lambda nc: nc[0])[:best]))


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
