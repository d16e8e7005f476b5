"""Named evaluation protocols: every convention that moves a score, fixed in one place and recorded.

A protocol fixes how low-resolution inputs are made from high-resolution
images and which metrics score the outputs, with which settings.  Its name and
parameters go into every results file, so two numbers can be compared only when
their protocols agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import torch

from mgsr.assembly.build import part_builder
from mgsr.errors import EvaluationError
from mgsr.interfaces import Metric
from mgsr.ops.imresize import imresize
from mgsr.registry import Registry
from mgsr.specs import MetricSpec

#: The metric whose presence makes the evaluator report PIRM-SR's perceptual index.
MA_METRIC = "ma"
PI_NAME = "pi"
PI_ABSENT_NOTE = (
    "PI not computed: PI = ((10 - Ma) + NIQE) / 2 needs Ma et al.'s no-reference score, whose trained "
    "regression model is not distributed with mgsr (an implementation nothing can verify is not shipped). "
    "Install a plugin that provides a metric named 'ma' (hook mgsr_metrics) and PI is reported."
)


@attrs.frozen
class Protocol:
    """One evaluation protocol: LR maker, metrics and their settings, seed of the noise draws."""

    name: str
    description: str
    #: metric name -> the values of its Config that the protocol fixes (the rest keep their defaults)
    metrics: Mapping[str, Mapping[str, Any]]
    #: how an HR image becomes the LR input; recorded, and implemented by :meth:`make_lr`
    lr_maker: str = (
        "HR cropped from the top-left to a multiple of the scale; MATLAB imresize(HR, 1/scale) "
        "(bicubic, antialiased, double precision), rounded and clipped to uint8"
    )
    #: how outputs are quantised before scoring
    quantisation: str = "outputs clipped to [0, 1] and rounded to uint8, as a saved PNG"
    #: seed of the generator's noise draws, the same for every image and every W
    seed: int = 0

    def metric_instances(self, registry: Registry, with_reference: bool, extra: Sequence[str] = ()) -> list[Metric]:
        """The protocol's metrics (those that need a reference only when there is one), plus ``ma`` if installed
        and the ``extra`` ones a user asks for (e.g. ``cx``, which needs the VGG-19 weights)."""
        names = list(self.metrics)
        if MA_METRIC in registry.names("metric") and MA_METRIC not in names:
            names.append(MA_METRIC)
        names += [n for n in extra if n not in names]
        build_part = part_builder(registry)
        built = []
        for name in names:
            cls = registry.get("metric", name)
            if cls.needs_reference and not with_reference:
                continue
            try:
                config = cls.Config(**self.metrics.get(name, {}))
            except (TypeError, ValueError) as exc:
                raise EvaluationError(f"protocol '{self.name}': metric '{name}' rejects its settings: {exc}") from exc
            built.append(build_part(MetricSpec(type=name, config=config)))  # parts resolved as a recipe's are
        return built

    def describe(self, metrics: list[Metric]) -> dict[str, Any]:
        """The protocol's name and every parameter, with each metric's full config, for results files."""
        return {
            "name": self.name,
            "description": self.description,
            "lr_maker": self.lr_maker,
            "quantisation": self.quantisation,
            "seed": self.seed,
            "metrics": {m.name: attrs.asdict(m.config) for m in metrics},
            "perceptual_index": f"((10 - {MA_METRIC}) + niqe) / 2, when a metric named '{MA_METRIC}' is installed",
        }


PIRM2018 = Protocol(
    name="pirm2018",
    description=(
        "PIRM-SR 2018 challenge: x4 inputs made with MATLAB bicubic imresize; RMSE (sqrt of the mean per-image "
        "MSE), PSNR and SSIM on Y = MATLAB rgb2ycbcr of uint8 RGB, rounded, 4 border pixels shaved; NIQE on the "
        "same Y with the LIVE pristine model, 96x96 blocks without overlap"
    ),
    metrics=MappingProxyType(
        {
            "rmse": MappingProxyType({"shave": 4}),
            "psnr": MappingProxyType({"shave": 4}),
            "ssim": MappingProxyType({"shave": 4}),
            "niqe": MappingProxyType({"shave": 4, "block": 96}),
        }
    ),
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({PIRM2018.name: PIRM2018})


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or an error listing the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise EvaluationError(f"unknown protocol '{name}'; known: {', '.join(PROTOCOLS)}") from None


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Keep the top-left part of ``image`` whose height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"a {h}x{w} image is smaller than the scale {scale}")
    return image[: h - h % scale, : w - w % scale]


def _resize_uint8(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(uint8 image, scale)``: bicubic in double precision, then rounded and clipped."""
    x = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)
    y = imresize(x, scale=scale).permute(1, 2, 0).numpy()
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The low-resolution input of an ``(H, W, 3)`` uint8 image whose size is a multiple of ``scale``."""
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f"crop the {hr.shape[0]}x{hr.shape[1]} image to a multiple of {scale} first")
    return _resize_uint8(hr, 1.0 / scale)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The classic baseline: MATLAB ``imresize(lr, scale)`` of the uint8 input, rounded to uint8."""
    return _resize_uint8(lr, float(scale))


def perceptual_index(ma: float, niqe: float) -> float:
    """PIRM-SR's perceptual index ((10 - Ma) + NIQE) / 2: lower is better."""
    return ((10.0 - ma) + niqe) / 2.0
