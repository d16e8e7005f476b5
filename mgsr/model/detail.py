"""The ``detail`` scale: t in [0, 1] -> the noise amplitude W at which the model has gone a fraction t of its way.

W itself is a poor knob: ``pirm-r3`` does its whole perception-distortion walk between W = 0 and W ~ 0.04, so a
slider in W shows an effect in its first few percent only.  ``detail`` measures progress along the model's
measured curve (:class:`~mgsr.model.card.PDCurve`) instead: t = 0 is W = 0, t = 1 the curve's last W (the
model's recorded W, where ``mgsr calibrate --curve`` stops by default), linear in between the samples.

Progress is the **arc length in the normalised (RMSE, NIQE) plane**, each axis divided by its range on the
curve.  Why not RMSE or NIQE alone: neither is monotone in W on real sets (R3's RMSE peaks near W = 0.3 and
falls back by W = 1; its NIQE rises again past W = 0.3), so a fraction of either does not name one W; and the
two do not move in step (from W = 0.003 to 0.012, R3's NIQE covers 3/4 of its range, its RMSE 3/10), so
either alone crowds the visible change into a small part of t.  Arc length grows with W by construction,
counts a step in either measure, and weighs the two equally after normalising: equal steps of t are equal
steps along the plotted curve.

Here too, in the lowest layer every caller can import, the rule for the W a run uses when none is given
(:func:`implied_noise`) and the refusal of a W and a detail together (:func:`refuse_noise_and_detail`): the
command line and the Python API share them instead of keeping copies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mgsr.errors import MgsrError, WeightsError
from mgsr.model.amplitude import check_amplitude
from mgsr.model.card import ModelCard, PDCurve

if TYPE_CHECKING:
    from mgsr.model.generator import GMGBP

#: what to tell a user whose model has no curve
MEASURE_HINT = "measure it with `mgsr calibrate --curve --model M --hr DIR --write-card`"


def arc_progress(rmse: Sequence[float], niqe: Sequence[float]) -> np.ndarray:
    """Per point of a path, the fraction of its arc length in the normalised (RMSE, NIQE) plane: 0 ... 1."""
    axes = [np.asarray(v, dtype=np.float64) for v in (rmse, niqe)]
    axes = [np.diff(v) / np.ptp(v) for v in axes if np.ptp(v) > 0]  # an axis that never moves adds nothing
    if not axes:
        raise WeightsError("the curve does not move (same RMSE and NIQE at every W): no detail scale")
    length = np.concatenate([[0.0], np.cumsum(np.sqrt(sum(a * a for a in axes)))])
    return length / length[-1]


def _curve_of(card: ModelCard | None) -> PDCurve:
    if card is None or card.curve is None:
        name = "this model" if card is None else f"model '{card.name}'"
        raise WeightsError(
            f"{name} has no perception-distortion curve in its card, so a detail value "
            f"cannot be mapped to a noise W: {MEASURE_HINT}, or give the noise W instead"
        )
    return card.curve


def _check_fraction(t: float) -> float:
    t = float(t)
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise MgsrError(f"detail must be a number in [0, 1] (0: least distortion, 1: the model's most detail), got {t}")
    return t


def noise_for_detail(card: ModelCard | None, t: float) -> float:
    """The W at which the model has gone a fraction ``t`` of its way along its curve (see the module doc).

    Monotone in ``t``; ``t = 0`` gives 0.0 and ``t = 1`` the curve's last W (the model's top, even where the
    curve ends flat).  Where the curve stands still between samples, the first W reaching ``t`` is returned.
    """
    t = _check_fraction(t)
    curve = _curve_of(card)
    if t == 1.0:
        return float(curve.noise[-1])
    p, w = arc_progress(curve.rmse, curve.niqe), curve.noise
    k = int(np.searchsorted(p, t, side="left"))  # the first sample with p >= t: p[k - 1] < t <= p[k]
    if k == 0:
        return float(w[0])
    return float(w[k - 1] + (t - p[k - 1]) / (p[k] - p[k - 1]) * (w[k] - w[k - 1]))


def detail_for_noise(card: ModelCard | None, w: float) -> float:
    """The detail t that W means (the inverse of :func:`noise_for_detail`); W beyond the curve's end is 1."""
    curve = _curve_of(card)
    w = check_amplitude(w)
    return float(np.interp(w, curve.noise, arc_progress(curve.rmse, curve.niqe)))


def refuse_noise_and_detail(noise: object, detail: float | None, *, options: bool = False) -> None:
    """Refuse a ``noise`` and a ``detail`` given together: either alone names the W, so both are a contradiction.

    ``options=True`` names them as the command line does (``--noise``, ``--detail T``), else as the Python
    API's parameters.  Public so that a command can refuse them before any work, ahead of loading the model.
    """
    if noise is not None and detail is not None:
        noise_name, detail_name, what = ("--noise", "--detail", "T") if options else ("noise", "detail", "t in [0, 1]")
        raise MgsrError(
            f"give {noise_name} or {detail_name}, not both: {detail_name} {what} chooses the noise W itself"
        )


def implied_noise(generator: GMGBP, detail: float | None = None) -> float:
    """The W of a run given no noise W: the W that ``detail`` means on the model's curve
    (:func:`noise_for_detail`), else the model's recorded W.

    The one home of this rule: ``mgsr upscale`` (pictures and videos) and :func:`mgsr.upscale` all come here
    (after :func:`refuse_noise_and_detail`), so a W given neither way is the same W everywhere.  A W given
    as such stays with the caller: its type is the caller's (one W, one per level, an adaptive rule).

    A model without a measured curve (a run trained without NIQE-sized validation images) still has both ends,
    by the scale's definition: detail 0 is W = 0 and detail 1 the model's recorded W; only the values between
    need the curve, and for them the error names the command that measures it.
    """
    if detail is None:
        return generator.default_noise
    card = generator.card
    if card is None or card.curve is None:
        if detail == 0:
            return 0.0
        if detail == 1:
            return generator.default_noise
    return noise_for_detail(card, detail)
