"""MATLAB's bicubic ``imresize``, differentiable: the S_down of the paper and the PIRM-SR low-resolution maker.

The PIRM-SR protocol makes its inputs with MATLAB; PIL, OpenCV and torch use
other kernels or border rules and cost about 1 dB.  MATLAB's rules: Keys' cubic
with a = -0.5; when shrinking by s < 1 with antialiasing, the kernel is
stretched by 1/s (and scaled by s); output pixel x (1-based) samples input
position ``x / s + 0.5 * (1 - 1 / s)``; weights are normalised per output pixel;
indices beyond the border are mirrored with the edge repeated (symmetric).

Each axis is one dense (out x in) matrix, so a resize is two matrix products:
exact, differentiable and fast for the image sizes SR works with.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

from mgsr.ops.precision import full_precision


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The ``(out_length, in_length)`` float64 matrix of MATLAB's bicubic resize along one axis."""
    columns, weights = resize_taps(in_length, out_length, scale, antialias)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_length), columns.shape[1]), columns.ravel()), weights.ravel())
    return matrix


def resize_taps(in_length: int, out_length: int, scale: float, antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The input index (mirrored into range) and float64 weight of each tap, both ``(out_length, taps)``.

    The sparse form of :func:`resize_matrix`: a resize to a large size reads it without the dense matrix.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"cannot resize a length-{in_length} axis to {out_length}")
    width = 4.0
    stretch = antialias and scale < 1
    if stretch:
        width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if stretch else _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    return mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)], weights


def output_size(in_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ``ceil(in * scale)`` per axis."""
    return tuple(int(math.ceil(n * scale - 1e-9)) for n in in_size)  # type: ignore[return-value]


@full_precision  # bfloat16 would miss MATLAB's kernel sums by ~1e-2 under autocast
def imresize(
    image: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resize the last two axes of ``image`` like MATLAB's ``imresize(image, scale)`` (bicubic).

    Give ``scale`` (MATLAB's size rule applies) or an explicit ``size`` (then
    each axis uses ``out / in`` as its scale, as MATLAB does).  Computed in the
    tensor's dtype; use float64 for bit-level agreement with MATLAB.
    """
    h, w = image.shape[-2:]
    if scale is not None and size is None:
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        size = output_size((h, w), scale)
        scales = (scale, scale)
    elif size is not None and scale is None:
        scales = (size[0] / h, size[1] / w)
    else:
        raise ValueError("give exactly one of scale and size")
    rows = torch.from_numpy(resize_matrix(h, size[0], scales[0], antialias)).to(image)
    cols = torch.from_numpy(resize_matrix(w, size[1], scales[1], antialias)).to(image)
    return rows @ image @ cols.T


def resize_strips(image: np.ndarray, size: tuple[int, int], rows: int = 256) -> Iterator[tuple[int, int, np.ndarray]]:
    """MATLAB's bicubic resize of an ``(H, W, C)`` array to ``size``, as float32 strips of output rows.

    Yields ``(y0, y1, strip)`` with ``strip`` the ``(y1 - y0, W', C)`` rows of the result, in the input's
    units (uint8 stays 0..255, not clamped).  Why strips and taps: a 16-megapixel result would need dense
    matrices of several hundred MB and a float copy of the whole image; here memory is one strip of input
    rows in float32 and one of output, whatever the size.  Equal to :func:`imresize` with ``size`` to float32
    rounding.
    """
    h, w = image.shape[:2]
    row_taps, row_weights = resize_taps(h, size[0], size[0] / h)
    col_taps, col_weights = resize_taps(w, size[1], size[1] / w)
    row_weights, col_weights = row_weights.astype(np.float32), col_weights.astype(np.float32)
    for y0 in range(0, size[0], rows):
        y1 = min(size[0], y0 + rows)
        taps = row_taps[y0:y1]
        lo, hi = int(taps.min()), int(taps.max()) + 1
        source = image[lo:hi].astype(np.float32)
        tall = sum(row_weights[y0:y1, t, None, None] * source[taps[:, t] - lo] for t in range(taps.shape[1]))
        yield y0, y1, sum(col_weights[None, :, t, None] * tall[:, col_taps[:, t]] for t in range(col_taps.shape[1]))


def s_down(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The paper's S_down: MATLAB bicubic downscale by ``factor`` (antialiased)."""
    return imresize(image, scale=1.0 / factor)
