"""Validation during training, scored exactly as ``mgsr eval`` scores: the paper's figure 8 axes and more.

A validation number must mean the same thing in ``metrics.jsonl`` as in
``mgsr eval`` and the paper's PIRM-SR tables, so validation reuses the
evaluation code rather than a look-alike: the protocol's LR maker (HR cropped
to a multiple of the scale from the top-left, MATLAB bicubic, rounded to
uint8), the one inference core with the protocol's noise seed, outputs
quantised to uint8, and the protocol's metrics (RMSE-Y, PSNR-Y, SSIM-Y, NIQE)
plus ``l1`` (figure 8's distortion axis) and the recipe's ``training.validate_metrics`` (e.g. ``lpips``),
each at W = 0 and W = 1.  The record
of step s is therefore what ``mgsr eval --model <checkpoint of step s> --hr
<val folder> --scale S --noise W --metric l1`` prints, as ``val/<metric>_w<W>`` (for images resized by
``data.target_megapixels``: what it prints for the images so resized).  Beside them, the worst image's
period-2 share over its HR's, ``val/period2_ratio_w<W>`` (see :mod:`mgsr.training.watch`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from mgsr.errors import EvaluationError
from mgsr.evaluation.curve import curve_of, measure_curve
from mgsr.evaluation.protocol import PIRM2018, Protocol, bicubic_upscale, crop_to_multiple, make_lr
from mgsr.evaluation.scoring import Evaluation, score_set
from mgsr.evaluation.upscalers import HRImage, model_upscaler
from mgsr.inference.core import upscale_tensor
from mgsr.interfaces import Metric
from mgsr.io.images import Picture, write_picture
from mgsr.model.card import PDCurve
from mgsr.model.generator import GMGBP
from mgsr.registry import Registry
from mgsr.training.watch import worst_ratio

#: figure 8's distortion axis, scored beyond the protocol's own metrics (``mgsr eval --metric l1``)
EXTRA_METRICS = ("l1",)
#: the noise amplitudes every validation scores: best distortion and best perception (section 6.2)
NOISE_LEVELS = (0.0, 1.0)


def validation_images(images: Sequence[tuple[str, np.ndarray]], scale: int) -> list[HRImage]:
    """``(name, (H, W, 3) uint8)`` images as the protocol prepares them: cropped to a multiple of ``scale``
    from the top-left, with the MATLAB-bicubic uint8 LR input."""
    prepared = []
    for name, hr in images:
        cropped = crop_to_multiple(hr, scale)
        prepared.append(HRImage(name, cropped, make_lr(cropped, scale)))
    return prepared


def _usable_metrics(metrics: Sequence[Metric], images: Sequence[HRImage]) -> list[Metric]:
    """The metrics that can score every image (NIQE needs a 96x96 block after shaving): one that cannot is
    left out with a warning, never averaged over fewer images than ``mgsr eval`` would refuse."""
    usable = []
    for metric in metrics:
        try:
            for image in images:
                metric.score(image.hr, image.hr if metric.needs_reference else None)
        except ValueError as exc:
            warnings.warn(
                f"validation leaves out '{metric.name}': {image.name} at {image.hr.shape[1]}x"
                f"{image.hr.shape[0]}: {exc}",
                stacklevel=3,
            )
            continue
        usable.append(metric)
    return usable


@contextlib.contextmanager
def evaluating(generator: GMGBP) -> Iterator[None]:
    """``generator`` in eval mode for the block, then back in the mode it came in (training goes on after)."""
    was_training = generator.training
    generator.eval()
    try:
        yield
    finally:
        generator.train(was_training)


class Validator:
    """Scores a generator on the validation images at one scale, with the evaluation protocol's own code."""

    def __init__(
        self,
        images: Sequence[tuple[str, np.ndarray]],
        scale: int,
        registry: Registry,
        protocol: Protocol = PIRM2018,
        extra: Sequence[str] = (),
        noise_levels: Sequence[float] = NOISE_LEVELS,
    ) -> None:
        self.scale = scale
        self.noise_levels = tuple(noise_levels)
        self.protocol = protocol
        self.images = validation_images(images, scale)
        metrics = protocol.metric_instances(registry, with_reference=True, extra=(*EXTRA_METRICS, *extra))
        self.metrics = _usable_metrics(metrics, self.images)
        self.description = protocol.describe(self.metrics)
        self._bicubic: dict[str, float] | None = None
        self.period2, self._hr_period2 = self._period2_baseline(registry)

    def _period2_baseline(self, registry: Registry) -> tuple[Metric | None, list[float]]:
        """The ``period2`` metric (through the registry: the host does not import plugins) and each HR's
        share; no metric when it is not installed or an HR has none (a flat image): no ratio is logged then."""
        if "period2" not in registry.names("metric") or not self.images:
            return None, []
        cls = registry.get("metric", "period2")
        metric = cls(cls.Config())
        try:
            return metric, [metric.score(image.hr) for image in self.images]
        except ValueError as exc:
            warnings.warn(f"validation leaves out the period-2 ratio: {exc}", stacklevel=3)
            return None, []

    def _period2_ratio(self, outputs: Sequence[np.ndarray], suffix: str) -> dict[str, float]:
        if self.period2 is None:
            return {}
        try:
            shares = [self.period2.score(out) for out in outputs]
        except ValueError:  # a flat output has no spectrum besides DC: no grid to report
            return {}
        return {f"val/period2_ratio_{suffix}": worst_ratio(shares, self._hr_period2)}

    def _score(self, outputs: Sequence[np.ndarray], suffix: str) -> dict[str, float]:
        items = ((im.name, out, im.hr) for im, out in zip(self.images, outputs, strict=True))
        try:
            evaluation = score_set(items, list(self.metrics), self.description)
        except EvaluationError as exc:  # e.g. NIQE of a flat output: a gap in the log, not a failed run
            warnings.warn(f"validation ({suffix}) not scored: {exc}", stacklevel=2)
            return {}
        return {f"val/{name}_{suffix}": value for name, value in evaluation.aggregate.items()}

    def bicubic(self) -> dict[str, float]:
        """The classic baseline's scores (computed once: they do not change during training)."""
        if self._bicubic is None:
            self._bicubic = self._score([bicubic_upscale(im.lr, self.scale) for im in self.images], "bicubic")
        return self._bicubic

    @torch.no_grad()
    def __call__(self, generator: GMGBP) -> dict[str, float]:
        """``val/<metric>_w0`` and ``val/<metric>_w1`` of ``generator`` (left in the mode it came in; only the
        validator's ``noise_levels``), and the bicubic baseline's ``val/<metric>_bicubic``."""
        if not self.images:
            return {}
        device = next(generator.parameters()).device
        upscale = model_upscaler(generator, self.scale, self.protocol.seed, device=str(device))
        scores: dict[str, float] = {}
        with evaluating(generator):
            for w in self.noise_levels:
                outputs = []
                for image in self.images:
                    try:
                        outputs.append(upscale(image.lr, w))
                    except (RuntimeError, ValueError) as exc:
                        raise EvaluationError(f"validation image {image.name}: upscaling failed: {exc}") from exc
                scores.update(self._score(outputs, f"w{w:g}"))
                scores.update(self._period2_ratio(outputs, f"w{w:g}"))
        return {**scores, **self.bicubic()}

    @torch.no_grad()
    def curve(self, generator: GMGBP, top: float, count: int = 8, max_points: int = 12) -> PDCurve | None:
        """The generator's perception-distortion curve (W = 0 .. ``top``) on the validation images, as
        ``mgsr calibrate --curve`` measures it, for the run's model card (so ``--detail`` works with the run);
        None without NIQE (images under a 96x96 block) or noise, with a warning when the outputs cannot give one."""
        if top <= 0 or not self.images or all(m.name != "niqe" for m in self.metrics):
            return None
        device = next(generator.parameters()).device
        upscale = model_upscaler(generator, self.scale, self.protocol.seed, device=str(device))

        def evaluate(w: float) -> Evaluation:
            items = ((im.name, upscale(im.lr, w), im.hr) for im in self.images)
            return score_set(items, list(self.metrics), self.description)

        try:
            with evaluating(generator):
                points = measure_curve(evaluate, top, count=count, max_points=max_points)
        except (EvaluationError, ValueError) as exc:
            warnings.warn(f"the run's card gets no perception-distortion curve: {exc}", stacklevel=2)
            return None
        names = [im.name for im in self.images]
        return curve_of(
            points,
            image_set=f"the run's {len(names)} validation images",
            images=names,
            scale=self.scale,
            command=f"measured at the end of training ({count} points, up to {max_points})",
        )


@torch.no_grad()
def write_sample_grid(generator: GMGBP, images: Sequence[HRImage], scale: int, path: Path) -> Path:
    """One row per validation image (up to 4): bicubic | W = 0 | W = 1 | HR, from the same LR input
    (the protocol's) that validation scores."""
    device = next(generator.parameters()).device
    rows = []
    with evaluating(generator):
        for image in images[:4]:
            lr = torch.from_numpy(image.lr).permute(2, 0, 1)[None].float().div(255).to(device)
            hr = torch.from_numpy(image.hr).permute(2, 0, 1)[None].float().div(255).to(device)
            bicubic = torch.from_numpy(bicubic_upscale(image.lr, scale)).permute(2, 0, 1)[None].float().div(255)
            plain = upscale_tensor(generator, lr, scale=scale, noise_amp=0.0)
            noisy = upscale_tensor(generator, lr, scale=scale, noise_amp=1.0, seed=0)
            assert plain is not None and noisy is not None, "upscale_tensor without a sink returns the output"
            tiles = [bicubic.to(device), plain, noisy, hr]
            rows.append(torch.cat([t.clamp(0, 1) for t in tiles], dim=-1))
    width = max(r.shape[-1] for r in rows)
    grid = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[-1])) for r in rows], dim=-2)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_picture(path, Picture(color=grid[0].permute(1, 2, 0).cpu().numpy()))
    return path
