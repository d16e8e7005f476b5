"""Does a model's W knob do what the paper says, on photos it never saw?  Scores along W and the targets.

A knob that works moves the output from best distortion (W = 0) towards best
perception (W = 1): NIQE falls as W grows while RMSE grows a little, and the
extra NIQE is detail, not a grid or noise.  Training can fail in ways one
number hides (an inert knob: W = 1 equals W = 0; a knob that only adds noise:
NIQE falls but RMSE explodes; a period-2 grid the discriminator rewarded), so
the report holds all of them, measured under the PIRM-SR protocol (MATLAB
bicubic LR, uint8 outputs, Y channel, 4 pixels shaved) on a held-out set:

* RMSE, PSNR-Y and NIQE of the set at each W, and of bicubic;
* the worst image's period-2 share over its HR's (a grid shows as >> 1);
* how much NIQE moves between noise draws at the largest W (several seeds),
  which is the tolerance of "monotone" along the curve;
* the classic upscaler's phase spread (a split of its four phases paints a grid).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

import attrs
import numpy as np
import torch

from mgsr.evaluation.protocol import PIRM2018, bicubic_upscale
from mgsr.evaluation.scoring import score_set
from mgsr.evaluation.upscalers import SetEvaluator, model_upscaler
from mgsr.model.generator import GMGBP
from mgsr.registry import Registry, default_registry

#: the W at which a knob is read: best distortion, three between, best perception
KNOB_W: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


@attrs.frozen
class KnobPoint:
    """The held-out set's scores at one W (``period2_ratio``: the worst image's output/HR period-2 share)."""

    w: float
    rmse: float
    psnr_y: float
    niqe: float
    period2_ratio: float


@attrs.frozen
class KnobReport:
    """Scores along W on one held-out set, with bicubic's and the draw-to-draw spread of NIQE at the last W."""

    points: tuple[KnobPoint, ...]
    bicubic_rmse: float
    bicubic_niqe: float
    #: NIQE at the largest W for each extra seed (the first point's seed included first)
    niqe_draws: tuple[float, ...]
    phase_spread: float | None

    def at(self, w: float) -> KnobPoint:
        for point in self.points:
            if point.w == w:
                return point
        raise KeyError(f"the report has no point at W = {w}; it has {[p.w for p in self.points]}")

    @property
    def niqe_gap(self) -> float:
        """NIQE(W = 1) - NIQE(W = 0): negative when W = 1 looks more natural."""
        return self.at(1.0).niqe - self.at(0.0).niqe

    @property
    def rmse_ratio(self) -> float:
        """RMSE(W = 1) / RMSE(W = 0): how much distortion the detail costs."""
        return self.at(1.0).rmse / self.at(0.0).rmse

    @property
    def draw_noise(self) -> float:
        """The tolerance of a monotone curve: twice the std of NIQE over the draws (0.05 at least)."""
        spread = statistics.stdev(self.niqe_draws) if len(self.niqe_draws) > 1 else 0.0
        return max(2.0 * spread, 0.05)

    @property
    def monotone(self) -> bool:
        """Along W, NIQE never rises by more than the draw's noise and RMSE never falls by more than 1 %."""
        pairs = list(zip(self.points, self.points[1:], strict=False))
        niqe_ok = all(b.niqe <= a.niqe + self.draw_noise for a, b in pairs)
        rmse_ok = all(b.rmse >= a.rmse * 0.99 for a, b in pairs)
        return niqe_ok and rmse_ok

    def table(self) -> str:
        """One line per W (and bicubic), for a terminal or a README."""
        lines = ["     W    RMSE  PSNR-Y    NIQE  period-2 W/HR"]
        for p in self.points:
            lines.append(f"{p.w:6.2f}  {p.rmse:6.3f}  {p.psnr_y:6.2f}  {p.niqe:6.3f}  {p.period2_ratio:13.2f}")
        lines.append(f"bicubic {self.bicubic_rmse:6.3f}  {'':6}  {self.bicubic_niqe:6.3f}")
        return "\n".join(lines)


def phase_spread(gains: torch.Tensor | None) -> float | None:
    """(max - min) / mean of each channel's four phase gains, the largest over the channels; None without."""
    if gains is None:
        return None
    gains = gains.detach().double().reshape(-1, gains.shape[-1])
    mean = gains.mean(dim=1).abs().clamp_min(1e-12)
    return float(((gains.amax(dim=1) - gains.amin(dim=1)) / mean).max())


def measure_knob(
    generator: GMGBP,
    hr_dir: str | os.PathLike[str],
    scale: int = 4,
    ws: Sequence[float] = KNOB_W,
    seeds: Sequence[int] = (0, 1, 2),
    registry: Registry | None = None,
) -> KnobReport:
    """Score ``generator`` on the HR images of ``hr_dir`` at every W of ``ws`` (seed ``seeds[0]``) and at the
    largest W with every other seed; ``ws`` must hold 0 and 1."""
    if 0.0 not in ws or 1.0 not in ws:
        raise ValueError(f"the knob is read between W = 0 and W = 1; ws = {list(ws)} lacks one of them")
    registry = registry or default_registry()
    period2_cls = registry.get("metric", "period2")
    period2 = period2_cls(period2_cls.Config(shave=4))
    generator = generator.eval()
    first = SetEvaluator.create(model_upscaler(generator, scale, seeds[0]), hr_dir, scale, PIRM2018, registry)
    hr_share = [period2.score(image.hr) for image in first.images]

    def point(w: float) -> KnobPoint:
        outputs = [first.output(image, w) for image in first.images]
        scores = _set_scores(first, outputs)
        ratio = max(period2.score(out) / hr for out, hr in zip(outputs, hr_share, strict=True))
        return KnobPoint(w, scores["rmse"], scores["psnr"], scores["niqe"], ratio)

    points = tuple(point(float(w)) for w in sorted(ws))
    top = max(ws)
    # the other draws reuse the first evaluator's HR images and LR inputs: only the upscaler's seed differs
    others = [attrs.evolve(first, upscale=model_upscaler(generator, scale, seed)) for seed in seeds[1:]]
    draws = (points[-1].niqe, *(other.evaluate(top).aggregate["niqe"] for other in others))
    bicubic = _set_scores(first, [bicubic_upscale(image.lr, scale) for image in first.images])
    spread = phase_spread(generator.classic_upscaler.phase_gains())
    return KnobReport(points, bicubic["rmse"], bicubic["niqe"], draws, spread)


def _set_scores(evaluator: SetEvaluator, outputs: list[np.ndarray]) -> dict[str, float]:
    """The set's scores of ``outputs`` (one per image of ``evaluator``, in order) under its protocol."""
    items = ((im.name, out, im.hr) for im, out in zip(evaluator.images, outputs, strict=True))
    return dict(score_set(items, list(evaluator.metrics), evaluator.protocol).aggregate)
