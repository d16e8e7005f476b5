"""Luminance as MATLAB's ``rgb2ycbcr`` computes it (ITU-R BT.601, studio range 16..235).

Two forms: a differentiable one for training (the VN+SC layer needs Y in
[0, 255] without rounding) and the protocol one for metrics (uint8 in, Y
rounded as MATLAB's uint8 output is).  Full-range Y would move RMSE by x1.164.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

#: pixels PIRM-SR cuts from each side of an image before scoring it
PIRM_SHAVE = 4

#: BT.601 studio-range weights for R, G, B in [0, 1]; Y = 16 + dot(weights, rgb)
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, 1, H, W)`` Y in [16, 235], differentiable, not rounded."""
    if rgb.shape[-3] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {tuple(rgb.shape)}")
    w = torch.tensor(Y_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return Y_OFFSET + (rgb * w).sum(dim=-3, keepdim=True)


def rgb_uint8_to_y(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float64 Y rounded to integers, as MATLAB's rgb2ycbcr on uint8."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    y = Y_OFFSET + rgb.astype(np.float64) @ (np.asarray(Y_WEIGHTS) / 255.0)
    return np.round(y)


def shaved_y(rgb: np.ndarray, shave: int) -> np.ndarray:
    """The protocol's Y (:func:`rgb_uint8_to_y`) with ``shave`` pixels cut from every side.

    PIRM-SR shaves 4 pixels: the border, where an upscaler has to invent what
    lies beyond the image, is not scored.
    """
    if shave < 0:
        raise ValueError(f"shave must be >= 0 pixels, got {shave}")
    h, w = rgb.shape[:2]
    if h <= 2 * shave or w <= 2 * shave:
        raise ValueError(f"a {h}x{w} image has nothing left after shaving {shave} pixels from each side")
    return rgb_uint8_to_y(rgb)[shave : h - shave, shave : w - shave]


@attrs.frozen
class ShaveConfig:
    """The ``Config`` of a metric that scores an image without its border, or the base of one with more fields.

    ``shave``: pixels cut from each side before scoring (default PIRM-SR's 4).  Declared once so that every
    metric accepts and refuses the same values (a negative shave is an error naming the field).
    """

    shave: int = attrs.field(default=PIRM_SHAVE, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
