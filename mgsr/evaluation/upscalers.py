"""Scoring an upscaler on high-resolution images: the protocol makes the inputs, the upscaler the outputs.

The low-resolution inputs are made once per set (MATLAB bicubic, rounded to
uint8, as the PIRM-SR organisers made theirs); each noise amplitude W then costs
one pass of the upscaler.  The noise draws are seeded by the protocol, the same
for every image and every W, so the scores are a smooth function of W.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from mgsr.errors import EvaluationError
from mgsr.evaluation.protocol import Protocol, bicubic_upscale, crop_to_multiple, make_lr
from mgsr.evaluation.scoring import Evaluation, list_images, read_uint8, score_set
from mgsr.inference.adaptive import Noise, resolve_noise
from mgsr.inference.core import upscale_tensor
from mgsr.interfaces import Metric
from mgsr.io.images import to_uint8
from mgsr.model.generator import GMGBP
from mgsr.registry import Registry
from mgsr.runtime.devices import resolve_device

#: ``--model bicubic``: the classic baseline, MATLAB bicubic upscaling of the uint8 input.
BICUBIC = "bicubic"

#: (uint8 LR image, noise amplitude W or None for the model's default) -> uint8 output
Upscaler = Callable[[np.ndarray, Noise | None], np.ndarray]


@attrs.frozen
class HRImage:
    """One test image: its name, the HR image cropped to a multiple of the scale, and the LR input made from it."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def load_hr_set(hr_dir: str | os.PathLike[str], scale: int) -> list[HRImage]:
    """Read every image of ``hr_dir``, crop it to a multiple of ``scale`` and make its LR input."""
    images = []
    for path in list_images(hr_dir, "HR folder"):
        try:
            hr = crop_to_multiple(read_uint8(path), scale)
        except ValueError as exc:
            raise EvaluationError(f"{path}: {exc}") from exc
        images.append(HRImage(path.name, hr, make_lr(hr, scale)))
    return images


def model_upscaler(model: GMGBP, scale: int, seed: int, device: str = "cpu") -> Upscaler:
    """An :data:`Upscaler` running a G-MGBP model with the release's border handling, quantised to uint8."""

    def upscale(lr: np.ndarray, noise: Noise | None) -> np.ndarray:
        x = torch.from_numpy(lr).permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=torch.float32) / 255
        noise, noise_map = resolve_noise(noise, lr.astype(np.float32) / 255, None)  # adaptive rule: W per pixel
        with torch.inference_mode():
            amp_map = None if noise_map is None else torch.as_tensor(noise_map)
            sr = upscale_tensor(model, x, scale=scale, noise_amp=noise, noise_map=amp_map, seed=seed)
        assert sr is not None, "upscale_tensor without a sink returns the assembled output"
        return to_uint8(sr.cpu())

    return upscale


def bicubic_upscaler(scale: int) -> Upscaler:
    """The classic baseline as an :data:`Upscaler`; it has no noise amplitude."""

    def upscale(lr: np.ndarray, noise: Noise | None) -> np.ndarray:
        if noise is not None:
            raise EvaluationError("bicubic upscaling has no noise amplitude; drop --noise")
        return bicubic_upscale(lr, scale)

    return upscale


def make_upscaler(model_name: str, scale: int, seed: int, device: str = "cpu") -> tuple[Upscaler, float | None]:
    """The upscaler called ``model_name`` (``bicubic``, a bundled model or a weights file) and its default W.

    ``device`` may be ``auto`` (:func:`mgsr.runtime.devices.resolve_device`).
    """
    if model_name == BICUBIC:
        return bicubic_upscaler(scale), None
    from mgsr.assembly.loading import load_generator

    device = resolve_device(device)
    model = load_generator(model_name, device=device)
    return model_upscaler(model, scale, seed, device), model.default_noise


@attrs.frozen
class SetEvaluator:
    """Scores one upscaler on one HR set under one protocol, for any W."""

    upscale: Upscaler
    images: tuple[HRImage, ...]
    metrics: tuple[Metric, ...]
    protocol: dict[str, Any]

    @classmethod
    def create(
        cls,
        upscale: Upscaler,
        hr_dir: str | os.PathLike[str],
        scale: int,
        protocol: Protocol,
        registry: Registry,
        extra_metrics: Sequence[str] = (),
    ) -> SetEvaluator:
        metrics = protocol.metric_instances(registry, with_reference=True, extra=extra_metrics)
        return cls(upscale, tuple(load_hr_set(hr_dir, scale)), tuple(metrics), protocol.describe(metrics))

    def evaluate(self, noise: Noise | None) -> Evaluation:
        """Upscale every LR input with noise amplitude ``noise`` and score the outputs against the HR images."""
        items = ((im.name, self.output(im, noise), im.hr) for im in self.images)
        return score_set(items, list(self.metrics), self.protocol)

    def output(self, image: HRImage, noise: Noise | None) -> np.ndarray:
        """The uint8 output for one image of the set at ``noise`` (a W, W per level, or an adaptive rule)."""
        try:
            out = self.upscale(image.lr, noise)
        except (RuntimeError, ValueError) as exc:
            raise EvaluationError(f"{image.name}: upscaling failed: {exc}") from exc
        if out.shape != image.hr.shape:
            raise EvaluationError(f"{image.name}: the output is {out.shape[:2]}, the HR image {image.hr.shape[:2]}")
        return out
