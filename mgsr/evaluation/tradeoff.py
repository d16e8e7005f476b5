"""The perception-distortion path of the noise amplitude W: sweeps, their CSV and plot, and calibration.

G-MGBP is trained only at W = 0 (least distortion) and W = 1 (most realistic);
the path between is whatever the network does, so it is measured, not assumed.
A sweep scores a list of W; calibration finds the largest W whose RMSE meets a
budget (as the authors did by hand for PIRM-SR regions 1 and 2), by bisection
on a bracket whose ends are checked, because nothing guarantees that RMSE grows
monotonically with W.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mgsr.errors import EvaluationError
from mgsr.evaluation.scoring import Evaluation, cannot_write, save_figure, write_json
from mgsr.io.atomic import atomic_text
from mgsr.model.amplitude import check_amplitude


def parse_noise_values(text: str, option: str = "--noise") -> list[float]:
    """``START:STOP:COUNT`` (COUNT evenly spaced values, ends included) or ``A,B,C``; sorted, without repeats.

    ``option`` names the flag in errors (``--detail`` sweeps take the same forms; each t is then checked to be
    in [0, 1] as the curve maps it).
    """
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            if int(count) < 1:
                raise ValueError("COUNT must be >= 1")
            values = np.linspace(float(start), float(stop), int(count)).tolist()
        else:
            values = [float(part) for part in text.split(",")]
    except ValueError as exc:
        raise EvaluationError(
            f"{option} {text!r}: expected START:STOP:COUNT (e.g. 0:1:21) or a list like 0,0.1,1 ({exc})"
        ) from None
    return sorted({round(check_amplitude(v, f"{option} {text!r}", EvaluationError), 12) for v in values})


@attrs.frozen
class SweepPoint:
    """The scores of the set at one noise amplitude."""

    noise: float
    evaluation: Evaluation
    #: the detail t that chose ``noise`` (``mgsr sweep --detail``), else None
    detail: float | None = None


def score_each_noise(
    evaluate: Callable[[float], Evaluation], noises: Sequence[float], progress: Callable[[str], None] | None = None
) -> list[SweepPoint]:
    """Score the set at every W of ``noises`` (in increasing order)."""
    points = []
    for i, w in enumerate(sorted(noises)):
        points.append(SweepPoint(w, evaluate(w)))
        if progress:
            scores = ", ".join(f"{m} {v:.4f}" for m, v in points[-1].evaluation.aggregate.items())
            progress(f"[{i + 1}/{len(noises)}] W={w:g}: {scores}")
    return points


def write_sweep_csv(path: str | os.PathLike[str], points: Sequence[SweepPoint], context: Mapping[str, Any]) -> None:
    """One row per W with every set score; ``#`` lines first record the protocol and what was swept."""
    metrics = points[0].evaluation.metrics
    try:
        with atomic_text(path, newline="") as f:
            f.write(f"# mgsr sweep: {json.dumps(dict(context))}\n")
            f.write(f"# protocol: {json.dumps(dict(points[0].evaluation.protocol))}\n")
            for note in points[0].evaluation.notes:
                f.write(f"# note: {note}\n")
            writer = csv.writer(f)
            by_detail = points[0].detail is not None  # a detail sweep: t first, then the W it means
            writer.writerow([*(["detail"] if by_detail else []), "noise", *metrics])
            for p in points:
                writer.writerow(
                    [
                        *([repr(p.detail)] if by_detail else []),
                        repr(p.noise),
                        *(repr(p.evaluation.aggregate[m]) for m in metrics),
                    ]
                )
    except OSError as exc:
        raise cannot_write(path, exc) from None


def plot_sweep(path: str | os.PathLike[str], points: Sequence[SweepPoint], title: str) -> None:
    """RMSE against NIQE (and against PI and LPIPS when computed), one point per W joined in order of W, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = points[0].evaluation.metrics
    perceptual = [m for m in ("niqe", "pi", "lpips") if m in metrics]
    if "rmse" not in metrics or not perceptual:
        raise EvaluationError("the plot needs RMSE and NIQE; the protocol provides neither")
    labels = {
        "niqe": "NIQE (lower: more natural)",
        "pi": "perceptual index PI (lower: more natural)",
        "lpips": "LPIPS to the reference (lower: more alike)",
    }
    noises = np.array([p.noise for p in points])
    rmse = np.array([p.evaluation.aggregate["rmse"] for p in points])
    fig = Figure(figsize=(6.4 * len(perceptual), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(perceptual):
        ax = fig.add_subplot(1, len(perceptual), i + 1)
        x = np.array([p.evaluation.aggregate[name] for p in points])
        ax.plot(x, rmse, "-", color="0.6", linewidth=1, zorder=1)
        dots = ax.scatter(x, rmse, c=noises, cmap="viridis", zorder=2)
        for k in _legible_labels(x, rmse):
            ax.annotate(f"W={noises[k]:g}", (x[k], rmse[k]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel(labels[name])
        ax.set_ylabel("RMSE on Y (lower: less distortion)")
        ax.grid(True, alpha=0.3)
        fig.colorbar(dots, ax=ax, label="noise amplitude W")
    fig.suptitle(title)
    save_figure(fig, path, dpi=120, title=title, software="mgsr sweep")


def _legible_labels(x: np.ndarray, y: np.ndarray, spacing: float = 0.08) -> list[int]:
    """Indices of the points to label with their W: the first, the last, then in order of W any point at
    least ``spacing`` (a fraction of the data's extent) away from those already labelled."""

    def unit(v: np.ndarray) -> np.ndarray:
        extent = np.ptp(v)
        return (v - v.min()) / extent if extent > 0 else np.zeros_like(v)

    where = np.stack([unit(x), unit(y)], axis=1)
    chosen: list[int] = []
    for k in [0, len(x) - 1, *range(1, len(x) - 1)]:
        if k not in chosen and all(np.hypot(*(where[k] - where[j])) >= spacing for j in chosen):
            chosen.append(k)
    return sorted(chosen)


@attrs.frozen
class Calibration:
    """The largest W found within the RMSE budget, with every (W, RMSE) evaluated on the way."""

    noise: float
    rmse: float
    max_rmse: float
    bracket: tuple[float, float]
    evaluated: tuple[tuple[float, float], ...]
    #: False when the evaluated RMSEs do not grow with W: another W in the bracket may also meet the budget
    monotone: bool
    warnings: tuple[str, ...]

    def save(self, path: str | os.PathLike[str], **context: Any) -> None:
        """Write the calibration record (JSON, atomically) with ``context`` (model, protocol, data, version)."""
        record = {
            **context,
            "noise": self.noise,
            "max_rmse": self.max_rmse,
            "rmse": self.rmse,
            "bracket": list(self.bracket),
            "monotone": self.monotone,
            "evaluated": [list(point) for point in self.evaluated],
            "warnings": list(self.warnings),
        }
        write_json(path, record)

    @staticmethod
    def load_noise(path: str | os.PathLike[str]) -> float:
        """The calibrated W of a record written by :meth:`save`; an error naming the file otherwise."""
        path = Path(path)
        try:
            noise = float(json.loads(path.read_text())["noise"])
        except FileNotFoundError:
            raise EvaluationError(f"{path}: calibration file not found") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EvaluationError(f"{path}: not a calibration file with a numeric 'noise' ({exc})") from None
        return check_amplitude(noise, f"{path}: its 'noise'", EvaluationError)


def calibrate(
    rmse_at: Callable[[float], float], max_rmse: float, low: float = 0.0, high: float = 1.0, tolerance: float = 1e-3
) -> Calibration:
    """The largest W in ``[low, high]`` with ``rmse_at(W) <= max_rmse``, found by bisection to ``tolerance``.

    Both ends are evaluated first: if even ``low`` misses the budget it cannot be
    met (an error); if ``high`` meets it, ``high`` is the answer.  Otherwise the
    bisection keeps ``rmse(lo) <= budget < rmse(hi)``.  Every evaluated point is
    kept, and the result says when they show RMSE is not monotone in W.
    """
    if not (0 <= low < high) or tolerance <= 0:
        raise EvaluationError(f"need 0 <= low < high and tolerance > 0, got [{low}, {high}], tolerance {tolerance}")
    evaluated: list[tuple[float, float]] = []

    def measure(w: float) -> float:
        value = float(rmse_at(w))
        evaluated.append((w, value))
        return value

    warnings = []
    lo_rmse = measure(low)
    if lo_rmse > max_rmse:
        raise EvaluationError(
            f"the budget cannot be met: RMSE is {lo_rmse:.4f} already at W={low:g}, the low end of the bracket, "
            f"above --max-rmse {max_rmse:g}"
        )
    hi_rmse = measure(high)
    if hi_rmse <= max_rmse:
        warnings.append(
            f"RMSE at the high end W={high:g} is {hi_rmse:.4f}, within the budget: W={high:g} is returned; "
            "a larger W might also meet it (widen the bracket with --range)"
        )
        lo, lo_rmse = high, hi_rmse
    else:
        lo, hi = low, high
        while hi - lo > tolerance:
            mid = (lo + hi) / 2
            value = measure(mid)
            if value <= max_rmse:
                lo, lo_rmse = mid, value
            else:
                hi = mid
    ordered = sorted(evaluated)
    drops = [(a, b) for a, b in itertools.pairwise(ordered) if b[1] < a[1]]
    if drops:
        shown = "; ".join(f"W={a[0]:g}: {a[1]:.4f} > W={b[0]:g}: {b[1]:.4f}" for a, b in drops[:3])
        warnings.append(
            f"RMSE is not monotone in W on this set ({shown}): W={lo:g} meets the budget and a slightly "
            "larger W does not, but a larger W elsewhere in the bracket might; run `mgsr sweep` to see the path"
        )
    return Calibration(lo, lo_rmse, max_rmse, (low, high), tuple(evaluated), not drops, tuple(warnings))
