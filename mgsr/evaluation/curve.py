"""Measuring a model's perception-distortion curve for its card (``mgsr calibrate --curve``), and plotting it.

The grid has to be dense where the curve moves, and that place differs per model (``pirm-r3`` does all its
moving below W = 0.04 of its top W = 1), so it is found, not assumed: a geometric grid from the top W down
to a thousandth of it (plus 0) first, then the segment that covers the largest share of the path (arc
length in the normalised RMSE-NIQE plane, the measure the ``detail`` scale uses) is split, at its geometric
midpoint, until no segment covers more than ``step`` of the path or the budget of evaluations is spent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mgsr.errors import EvaluationError
from mgsr.evaluation.scoring import Evaluation, save_figure
from mgsr.evaluation.tradeoff import SweepPoint, score_each_noise
from mgsr.model.card import ModelCard, PDCurve
from mgsr.model.detail import arc_progress, noise_for_detail

#: measures the curve is made of (the protocol must provide both)
CURVE_METRICS = ("rmse", "niqe")


def curve_grid(top: float, count: int) -> list[float]:
    """0, then ``count`` geometrically spaced W from ``top / 1000`` to ``top``."""
    if not (math.isfinite(top) and top > 0) or count < 2:
        raise EvaluationError(f"the curve needs a top W > 0 and >= 2 grid points, got top {top}, {count} points")
    return [0.0, *np.geomspace(top / 1000, top, count).tolist()]


def _split_point(a: float, b: float) -> float:
    return math.sqrt(a * b) if a > 0 else b / 2


def measure_curve(
    evaluate: Callable[[float], Evaluation],
    top: float,
    *,
    count: int = 10,
    max_points: int = 24,
    step: float = 0.08,
    progress: Callable[[str], None] | None = None,
) -> list[SweepPoint]:
    """The curve's points from W = 0 to ``top``: the grid of :func:`curve_grid`, refined (see the module doc)."""
    points = score_each_noise(evaluate, curve_grid(top, count), progress)
    missing = [m for m in CURVE_METRICS if m not in points[0].evaluation.metrics]
    if missing:
        raise EvaluationError(f"a curve needs {' and '.join(CURVE_METRICS)}; this protocol lacks {', '.join(missing)}")
    while len(points) < max_points:
        share = np.diff(arc_progress(*([p.evaluation.aggregate[m] for p in points] for m in CURVE_METRICS)))
        worst = int(np.argmax(share))
        if share[worst] <= step:
            break
        w = _split_point(points[worst].noise, points[worst + 1].noise)
        points.insert(worst + 1, SweepPoint(w, evaluate(w)))
        if progress:
            progress(
                f"[refine {len(points)}/{max_points}] W={w:.6g}: RMSE "
                f"{points[worst + 1].evaluation.aggregate['rmse']:.4f}, NIQE "
                f"{points[worst + 1].evaluation.aggregate['niqe']:.4f} (split a segment of {share[worst]:.0%})"
            )
    return points


def curve_of(
    points: Sequence[SweepPoint], *, image_set: str, images: Sequence[str], scale: int, command: str
) -> PDCurve:
    """The card's record of measured ``points``."""
    return PDCurve(
        noise=tuple(p.noise for p in points),
        rmse=tuple(p.evaluation.aggregate["rmse"] for p in points),
        niqe=tuple(p.evaluation.aggregate["niqe"] for p in points),
        image_set=image_set,
        images=tuple(images),
        scale=scale,
        protocol=dict(points[0].evaluation.protocol),
        command=command,
    )


def plot_curves(path: str | os.PathLike[str], cards: Mapping[str, ModelCard], title: str) -> None:
    """Each card's curve in the perception-distortion plane (NIQE, RMSE), with ticks at detail t = 0, 0.1 .. 1.

    One figure for README and ``mgsr calibrate --curve``: where along W each model moves, and how even
    the ``detail`` scale's steps are.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ticks = np.linspace(0, 1, 11)
    for name, card in cards.items():
        curve = card.curve
        if curve is None:
            raise EvaluationError(f"model '{name}' has no curve to plot")
        (line,) = ax.plot(curve.niqe, curve.rmse, "-", linewidth=1, alpha=0.5)
        noise = [noise_for_detail(card, t) for t in ticks]
        niqe = np.interp(noise, curve.noise, curve.niqe)
        rmse = np.interp(noise, curve.noise, curve.rmse)
        ax.plot(niqe, rmse, "o", color=line.get_color(), markersize=4, label=f"{name} (t = 0, 0.1, .., 1)")
        for t, w, x, y in zip(ticks, noise, niqe, rmse, strict=True):
            if t in (0.0, 0.5, 1.0):
                ax.annotate(
                    f"t={t:g}\nW={w:.3g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color=line.get_color(),
                )
    ax.set_xlabel("NIQE (lower: more natural)")
    ax.set_ylabel("RMSE on Y (lower: less distortion)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=110, title=title, software="mgsr calibrate --curve")
