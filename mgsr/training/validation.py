"""Validation during training: the distortion and perception axes of the paper's figure 8, and sample grids.

Outputs come from the one inference core (:func:`mgsr.inference.core.upscale_tensor`, W = 1 with seed 0), so
a validation score is what ``mgsr upscale`` would give for the same crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgsr.errors import MgsrError
from mgsr.inference.core import upscale_tensor
from mgsr.io.images import Picture, to_uint8, write_picture
from mgsr.model.generator import GMGBP
from mgsr.ops.imresize import imresize
from mgsr.registry import Registry


def _metric(registry: Registry, name: str, **settings: Any) -> Any:
    cls = registry.get("metric", name)
    return cls(cls.Config(**settings))


def _low_resolution(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The MATLAB-bicubic downscale, quantised to 8 bits as an LR file would be."""
    return (imresize(hr.double(), 1 / scale).clamp(0, 1) * 255).round().float() / 255


@torch.no_grad()
def validate(generator: GMGBP, images: Sequence[tuple[str, torch.Tensor]], scale: int,
             registry: Registry) -> dict[str, float]:
    """L1 and PSNR-Y at W = 0 (with bicubic for reference) and, when the ``niqe`` metric is installed,
    NIQE at W = 0 and W = 1."""
    device = next(generator.parameters()).device
    psnr = _metric(registry, "psnr", shave=scale)
    niqe = _metric(registry, "niqe") if "niqe" in registry.names("metric") else None
    scores: dict[str, list[float]] = {}
    was_training = generator.training
    generator.eval()
    for _, hr in images:
        hr = hr.to(device)
        lr = _low_resolution(hr, scale)
        sr = upscale_tensor(generator, lr, scale=scale, noise_amp=0.0)
        reference = to_uint8(hr)
        scores.setdefault("val/l1", []).append(float((sr.clamp(0, 1) - hr).abs().mean()))
        scores.setdefault("val/psnr_y", []).append(psnr.score(to_uint8(sr), reference))
        bicubic = imresize(lr.double(), scale).float()
        scores.setdefault("val/psnr_y_bicubic", []).append(psnr.score(to_uint8(bicubic), reference))
        if niqe is not None:
            noisy = upscale_tensor(generator, lr, scale=scale, noise_amp=1.0, seed=0)
            for key, image in (("val/niqe_w0", sr), ("val/niqe_w1", noisy)):
                try:
                    scores.setdefault(key, []).append(niqe.score(to_uint8(image)))
                except (MgsrError, ValueError):  # too small or flat for NIQE's 96x96 blocks
                    pass
    generator.train(was_training)
    return {key: float(np.mean(values)) for key, values in scores.items() if values}


@torch.no_grad()
def write_sample_grid(generator: GMGBP, images: Sequence[tuple[str, torch.Tensor]], scale: int, path: Path) -> Path:
    """One row per validation image (up to 4): bicubic | W = 0 | W = 1 | HR."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    rows = []
    for _, hr in images[:4]:
        hr = hr.to(device)
        lr = _low_resolution(hr, scale)
        tiles = [imresize(lr.double(), scale).float(),
                 upscale_tensor(generator, lr, scale=scale, noise_amp=0.0),
                 upscale_tensor(generator, lr, scale=scale, noise_amp=1.0, seed=0), hr]
        rows.append(torch.cat([t.clamp(0, 1) for t in tiles], dim=-1))
    generator.train(was_training)
    width = max(r.shape[-1] for r in rows)
    grid = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[-1])) for r in rows], dim=-2)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_picture(path, Picture(color=grid[0].permute(1, 2, 0).cpu().numpy()))
    return path
