"""The Natural Image Quality Evaluator of Mittal, Soundararajan and Bovik, as the MATLAB release computes it.

The math lives here, below the plugins, because the ``niqe`` metric plugin and the
adaptive-map fit (which reads NIQE's per-block features) both need it.

NIQE is a distance between two multivariate Gaussians of natural-scene
statistics: one fitted once to pristine photographs (the LIVE model shipped in
``mgsr.niqe_model``), one fitted to the blocks of the image scored.  Lower is
more natural.  The details follow the MATLAB release that PIRM-SR 2018 used,
because each of them moves the score:

* the luminance is ``rgb2ycbcr`` of the uint8 image, rounded, then shaved;
* the image is cut to whole 96x96 blocks from the top-left, with no overlap;
* MSCN coefficients ``(I - mu) / (sigma + 1)`` use a 7x7 Gaussian window
  (sigma 7/6, normalised) with replicated borders, and ``sigma = sqrt(|E[I^2] - mu^2|)``;
* per block: an asymmetric generalised Gaussian (AGGD) fitted by moment matching
  on a grid of shapes 0.2:0.001:10 gives (shape, mean scale) of the
  coefficients and (shape, mean, left scale, right scale) of their products with
  the horizontal, vertical and two diagonal neighbours, shifted circularly
  inside the block: 18 features;
* the same on the image downscaled by MATLAB's ``imresize(0.5)`` (bicubic,
  antialiased, on the unrounded double image) with 48x48 blocks: 36 features;
* the image's Gaussian is the mean (ignoring NaN per feature) and covariance
  (over blocks without NaN) of the features, and the score is
  ``sqrt(d' pinv((C_pristine + C_image) / 2) d)`` with ``d`` the mean difference.
"""

from __future__ import annotations

import functools
import warnings
from importlib import resources

import numpy as np
import torch
from scipy.ndimage import correlate1d
from scipy.special import gamma

from mgsr.ops.imresize import imresize
from mgsr.ops.local_stats import gaussian_taps

MSCN_WINDOW = 7
MSCN_SIGMA = 7 / 6
#: Neighbour offsets (rows, columns) whose products NIQE models: horizontal, vertical, two diagonals.
NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@functools.cache
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """The LIVE pristine Gaussian: mean (36,) and covariance (36, 36)."""
    with (
        resources.files("mgsr.niqe_model").joinpath("pristine.npz").open("rb") as f,
        np.load(f, allow_pickle=False) as data,
    ):
        return data["mu"].copy(), data["cov"].copy()


@functools.cache
def _shape_grid() -> tuple[np.ndarray, np.ndarray]:
    """Candidate shapes 0.2, 0.201, ..., 10 and their moment ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    shapes = np.arange(200, 10001, dtype=np.float64) / 1000
    return shapes, gamma(2 / shapes) ** 2 / (gamma(1 / shapes) * gamma(3 / shapes))


def fit_aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Moment-matching fit of an asymmetric generalised Gaussian: (shape, left scale, right scale).

    The spread on each side gives their ratio; the ratio of the squared mean
    absolute value to the mean square, corrected for the asymmetry, picks the
    shape on the grid (the first best, as MATLAB's ``min``).  Values with
    nothing on one side give NaN scales, as in MATLAB.
    """
    values = values.ravel()
    left, right = values[values < 0], values[values > 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.sum(left * left) / left.size)
        right_std = np.sqrt(np.sum(right * right) / right.size)
        ratio = left_std / right_std
        r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values * values)
        r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    shapes, ratios = _shape_grid()
    shape = float(shapes[np.argmin((ratios - r_norm) ** 2)])  # NaN everywhere -> the first, as MATLAB
    to_scale = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, float(left_std * to_scale), float(right_std * to_scale)


def block_features(mscn: np.ndarray) -> list[float]:
    """The 18 features of one block of MSCN coefficients."""
    shape, left, right = fit_aggd(mscn)
    features = [shape, (left + right) / 2]
    for offset in NEIGHBOURS:
        shape, left, right = fit_aggd(mscn * np.roll(mscn, offset, axis=(0, 1)))
        mean = (right - left) * gamma(2 / shape) / gamma(1 / shape)
        features += [shape, mean, left, right]
    return features


def mscn_coefficients(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients ``(I - mu) / (sigma + 1)`` of a float64 grey image."""
    taps = gaussian_taps(MSCN_WINDOW, MSCN_SIGMA)

    def blur(a: np.ndarray) -> np.ndarray:  # MATLAB imfilter(a, window, 'replicate') with a separable window
        return correlate1d(correlate1d(a, taps, axis=0, mode="nearest"), taps, axis=1, mode="nearest")

    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + 1)


def niqe_features(y: np.ndarray, block: int) -> np.ndarray:
    """The ``(blocks, 36)`` feature matrix of a float64 luminance image in [0, 255]."""
    rows, cols = y.shape[0] // block, y.shape[1] // block
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs at least one {block}x{block} block, the image is {y.shape[0]}x{y.shape[1]}")
    image = y[: rows * block, : cols * block]
    per_scale = []
    for size in (block, block // 2):
        mscn = mscn_coefficients(image)
        per_scale.append(
            [
                block_features(mscn[r * size : (r + 1) * size, c * size : (c + 1) * size])
                for c in range(cols)
                for r in range(rows)
            ]
        )
        image = imresize(torch.from_numpy(image), scale=0.5).numpy()
    return np.concatenate([np.asarray(f, dtype=np.float64) for f in per_scale], axis=1)


def niqe_distance(features: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> float:
    """The distance between the pristine Gaussian and the one of ``features`` (MATLAB nanmean / nancov / pinv)."""
    with warnings.catch_warnings():  # a feature that is NaN in every block stays NaN, as in MATLAB
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_image = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    # MATLAB's cov of a single observation is zero
    cov_image = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros_like(cov)
    pooled = (cov + cov_image) / 2
    diff = mu - mu_image
    inverse = np.linalg.pinv(pooled, rcond=max(pooled.shape) * np.finfo(np.float64).eps)
    return float(np.sqrt(diff @ inverse @ diff))


def niqe(y: np.ndarray, block: int = 96) -> float:
    """NIQE of a float64 luminance image in [0, 255] (already rounded and shaved as the protocol wants)."""
    mu, cov = pristine_model()
    score = niqe_distance(niqe_features(y, block), mu, cov)
    if np.isnan(score):
        raise ValueError("NIQE is undefined for this image: its blocks are flat, so they have no statistics to fit")
    return score
