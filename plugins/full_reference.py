"""``rmse``, ``psnr`` and ``ssim``: full-reference scores on the protocol's luminance, border shaved; ``l1``.

Y is MATLAB's ``rgb2ycbcr`` of the uint8 images, rounded (studio range, so a
white-versus-black error is 219, not 255); ``shave`` pixels are cut from each
side first.  These are PIRM-SR 2018's conventions.  ``l1`` is the distortion
axis of the paper's figure 8: the mean absolute RGB error in [0, 1] units, the
quantity the L1 loss (eq. 11) minimises, on the same shaved uint8 images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import correlate1d

from mgsr import hookimpl
from mgsr.interfaces import Metric
from mgsr.ops.color import ShaveConfig, shaved_y
from mgsr.ops.local_stats import gaussian_taps

PEAK = 255.0


def same_size_reference(output: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """``reference``, after checking there is one and that it has the output's size."""
    if reference is None:
        raise ValueError("this metric compares with a reference image, and none was given")
    if output.shape != reference.shape:
        raise ValueError(f"output is {output.shape[:2]} pixels but the reference is {reference.shape[:2]}")
    return reference


def shaved_y_pair(output: np.ndarray, reference: np.ndarray | None, shave: int) -> tuple[np.ndarray, np.ndarray]:
    """The shaved float64 Y of an output and its reference, which must have the same size."""
    reference = same_size_reference(output, reference)
    return shaved_y(output, shave), shaved_y(reference, shave)


def mse_y(output: np.ndarray, reference: np.ndarray | None, shave: int) -> float:
    """Mean squared error between the shaved Y channels of two same-size uint8 RGB images."""
    a, b = shaved_y_pair(output, reference, shave)
    return float(np.mean((a - b) ** 2))


class RMSE(Metric):
    """Root mean squared error on Y.  The score of a set is sqrt(mean of the per-image MSEs) (PIRM-SR)."""

    name = "rmse"
    Config = ShaveConfig
    needs_reference = True
    higher_is_better = False

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        return math.sqrt(mse_y(output, reference, self.config.shave))

    def aggregate(self, scores: Sequence[float]) -> float:
        per_image = np.asarray(scores, dtype=np.float64)
        return float(np.sqrt(np.mean(per_image * per_image)))


class PSNR(Metric):
    """Peak signal-to-noise ratio on Y, in dB (peak 255).  The score of a set is the mean per-image PSNR.

    Identical images score ``inf``.
    """

    name = "psnr"
    Config = ShaveConfig
    needs_reference = True
    higher_is_better = True

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        mse = mse_y(output, reference, self.config.shave)
        return math.inf if mse == 0 else 10.0 * math.log10(PEAK * PEAK / mse)


# SSIM as published by Wang, Bovik, Sheikh and Simoncelli (2004): an 11x11 Gaussian window with sigma 1.5,
# K1 = 0.01, K2 = 0.03, dynamic range 255, statistics only where the window fits ("valid"), no downsampling.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _valid_local_mean(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean over every window that fits entirely inside ``image``."""
    half = len(taps) // 2
    smooth = correlate1d(correlate1d(image, taps, axis=0, mode="nearest"), taps, axis=1, mode="nearest")
    return smooth[half : image.shape[0] - half, half : image.shape[1] - half]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The SSIM of two float64 grey images in [0, 255] at every valid window position."""
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after shaving, got {a.shape}")
    taps = gaussian_taps(SSIM_WINDOW, SSIM_SIGMA)
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    mu_a, mu_b = _valid_local_mean(a, taps), _valid_local_mean(b, taps)
    var_a = _valid_local_mean(a * a, taps) - mu_a * mu_a
    var_b = _valid_local_mean(b * b, taps) - mu_b * mu_b
    cov = _valid_local_mean(a * b, taps) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))


class SSIM(Metric):
    """Mean structural similarity on Y; the score of a set is the mean per-image SSIM."""

    name = "ssim"
    Config = ShaveConfig
    needs_reference = True
    higher_is_better = True

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        return float(np.mean(ssim_map(*shaved_y_pair(output, reference, self.config.shave))))


class L1(Metric):
    """Mean absolute RGB error in [0, 1] units (255 = 1), border shaved; the set score is the mean per image."""

    name = "l1"
    Config = ShaveConfig
    needs_reference = True
    higher_is_better = False

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        reference = same_size_reference(output, reference)
        s = self.config.shave
        a, b = (np.asarray(x[s : x.shape[0] - s, s : x.shape[1] - s], dtype=np.float64) for x in (output, reference))
        if a.size == 0:
            raise ValueError(f"nothing is left of a {output.shape[0]}x{output.shape[1]} image after shaving {s} pixels")
        return float(np.mean(np.abs(a - b))) / PEAK


@hookimpl
def mgsr_metrics() -> list[type]:
    return [RMSE, PSNR, SSIM, L1]
