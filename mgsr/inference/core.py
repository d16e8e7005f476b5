"""Inference with the release's border handling: reflect-pad the input, upscale, crop."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mgsr.model.generator import GMGBP, NoiseAmplitude


def levels_for(scale: int) -> int:
    """Number of 2x levels for ``scale`` (2 -> 1, 4 -> 2, 8 -> 3, ...)."""
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"scale must be a power of two >= 2 (2, 4, 8, ...), got {scale}")
    return scale.bit_length() - 1


def border_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect ``pad`` pixels on each side as the release does; replicate when the image is too small to reflect."""
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


@torch.no_grad()
def upscale_tensor(
    model: GMGBP,
    lr: torch.Tensor,
    *,
    scale: int = 4,
    noise_amp: NoiseAmplitude | None = None,
    noise: Sequence[torch.Tensor] | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Upscale a ``(N, C, H, W)`` batch in [0, 1] by ``scale``; the result is not clamped.

    The input is padded by ``scale`` pixels (reflection) and ``scale * scale``
    pixels are cut from each side of the output, as in the authors' release.
    ``noise`` are explicit unit draws at the padded resolutions; otherwise they
    are drawn from the model's noise source, seeded by ``seed`` when given.
    ``noise_amp`` defaults to the W recorded with the model.
    """
    levels = levels_for(scale)
    if noise_amp is None:
        card = getattr(model, "card", None)
        noise_amp = card.default_noise if card is not None else 0.0
    padded = border_pad(lr, scale)
    rng = None
    if seed is not None:
        rng = torch.Generator(device=lr.device).manual_seed(seed)
    out = model(padded, levels, noise_amp=noise_amp, noise=noise, generator=rng)[-1]
    crop = scale * scale
    return out[..., crop : out.shape[-2] - crop, crop : out.shape[-1] - crop]
