"""Ruderman's variance normalisation: the local statistics NIQE and the VN+SC layer are built on.

``Î = (I - μ) / (σ + 1)`` with μ and σ² = μ(I²) - μ² taken under a Gaussian
window (MATLAB ``fspecial('gaussian', 7, 7/6)``) with replicate borders, as
NIQE's reference code filters (``imfilter(..., 'replicate')``).  On natural
images the result is close to decorrelated and Gaussian; blur and other
distortions break that, which is what makes it a useful feature.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mgsr.ops.precision import full_precision


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of ``size`` taps (float64); its outer square is MATLAB's ``fspecial('gaussian')``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd number, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-(x * x) / (2 * sigma * sigma))
    return taps / taps.sum()


def gaussian_window(size: int = 7, sigma: float = 7 / 6, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The ``(size, size)`` Gaussian of MATLAB's ``fspecial('gaussian', size, sigma)``, summing to one."""
    g = torch.from_numpy(gaussian_taps(size, sigma))
    return torch.outer(g, g).to(dtype)


def local_mean(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of ``(N, 1, H, W)`` with replicate borders; same size out."""
    r = window.shape[-1] // 2
    padded = F.pad(image, (r, r, r, r), mode="replicate")
    return F.conv2d(padded, window.to(image).view(1, 1, *window.shape))


@full_precision  # μ(I²) − μ² cancels: never in half precision
def variance_normalize(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luminance (0..255 scale) -> ``Î = (I - μ) / (σ + 1)``, differentiable.

    The image's own mean is subtracted first: Î does not change, and μ(I²) - μ²
    then cancels far less in float32.  σ² is clamped at a tiny positive value so
    a flat patch has σ ~ 0 and a finite gradient instead of NaN.
    """
    if image.dim() != 4 or image.shape[1] != 1:
        raise ValueError(f"expected an (N, 1, H, W) luminance image, got {tuple(image.shape)}")
    centred = image - image.mean(dim=(2, 3), keepdim=True)
    mu = local_mean(centred, window)
    variance = (local_mean(centred * centred, window) - mu * mu).clamp_min(1e-10)
    return (centred - mu) / (variance.sqrt() + 1)
