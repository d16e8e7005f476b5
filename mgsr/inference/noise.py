"""The unit noise of inference, drawn per fixed block of each level's map, each block from its own seed.

Why blocks: a tile must be able to produce its own crop of the noise without
drawing the whole map (at 8x a 4000x3000 photo's level-3 map alone is 3 GB of
float32 draws).  The map of level ``j`` (``2**j`` times the padded input) is cut
into :data:`NOISE_BLOCK`-pixel squares at that level's resolution, from its top
left corner; block ``(row, col)`` is drawn by the model's noise source from a CPU
``torch.Generator`` seeded with :func:`block_seed` ``(seed, j, row, col)``.  A
tile draws the blocks its region touches and keeps its crop, so the noise at a
pixel depends on the seed, the level and the pixel's position only: tiled and
untiled runs, and any tile size, see the same draws.  Drawing on the CPU makes
CPU and CUDA runs agree (their generators differ).

The contract for a :class:`~mgsr.interfaces.NoiseSource` follows: ``sample`` is
called once per block with shape ``(N, noise_channels, NOISE_BLOCK,
NOISE_BLOCK)`` and that block's generator, and must draw from that generator
only; noise correlated across blocks cannot be expressed.
"""

from __future__ import annotations

import hashlib
import math
import struct

import torch
import torch.nn.functional as F

from mgsr.interfaces import NoiseSource

#: Side of a noise block, in pixels of the level it belongs to: small enough that a tile's crop wastes
#: little (each edge draws at most one block more than it keeps), large enough that the per-block
#: generator setup (~10 us) is noise next to the draw and the network.
NOISE_BLOCK = 64


def block_seed(seed: int, level: int, row: int, col: int) -> int:
    """The seed of block (``row``, ``col``) of level ``level``: a hash, so nearby blocks are unrelated."""
    key = struct.pack("<QQQQ", seed % 2**64, level, row, col)
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1  # 63 bits


def base_seed(seed: int | None) -> int:
    """``seed`` itself, or for ``None`` one draw from torch's global generator (so ``None`` is not fixed)."""
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**62, (1,)).item())


def noise_region(
    source: NoiseSource,
    batch: int,
    channels: int,
    seed: int,
    level: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
    block: int = NOISE_BLOCK,
) -> torch.Tensor:
    """Rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` of level ``level``'s unit noise map, on the CPU.

    Returns ``(batch, channels, rows, cols)`` float32; the same region gives the same values in any call.
    """
    (y0, y1), (x0, x1) = rows, cols
    out = torch.empty((batch, channels, y1 - y0, x1 - x0))
    shape = (batch, channels, block, block)
    for by in range(y0 // block, -(-y1 // block)):
        top, bottom = max(y0, by * block), min(y1, (by + 1) * block)
        for bx in range(x0 // block, -(-x1 // block)):
            left, right = max(x0, bx * block), min(x1, (bx + 1) * block)
            rng = torch.Generator().manual_seed(block_seed(seed, level, by, bx))
            z = source.sample(shape, generator=rng, device="cpu", dtype=torch.float32)
            if tuple(z.shape) != shape:
                raise ValueError(
                    f"noise source {type(source).__name__} returned shape {tuple(z.shape)} "
                    f"for a request of {shape}; sample() must return the shape it is asked for"
                )
            out[..., top - y0 : bottom - y0, left - x0 : right - x0] = z[
                ..., top - by * block : bottom - by * block, left - bx * block : right - bx * block
            ]
    return out


def noise_maps(source: NoiseSource, shape: tuple[int, int, int, int], levels: int, seed: int) -> list[torch.Tensor]:
    """Whole unit noise maps ``z_0..z_{levels-1}`` for a padded input of ``(N, noise_channels, H, W)``.

    The draws :func:`mgsr.inference.core.upscale_tensor` makes with this ``seed``, made explicit (to feed an
    exported graph or another runtime the noise mgsr would use).
    """
    n, c, h, w = shape
    return [noise_region(source, n, c, seed, j, (0, h << j), (0, w << j)) for j in range(levels)]


def amplitude_region(
    padded_map: torch.Tensor, level: int, rows: tuple[int, int], cols: tuple[int, int]
) -> torch.Tensor:
    """Rows and columns of ``padded_map`` (N|1, 1, H, W) bilinearly upsampled ``2**level`` times (half-pixel
    centres), computed from the window of it they need: the same values as upsampling the whole map.
    """
    f = 1 << level
    (y0, y1), (x0, x1) = rows, cols
    if f == 1:
        return padded_map[..., y0:y1, x0:x1]

    def window(start: int, stop: int, size: int) -> tuple[int, int]:  # input pixels under outputs start..stop-1
        return max(0, math.floor((start + 0.5) / f - 0.5)), min(size, math.floor((stop - 0.5) / f - 0.5) + 2)

    (iy0, iy1), (ix0, ix1) = window(y0, y1, padded_map.shape[-2]), window(x0, x1, padded_map.shape[-1])
    part = F.interpolate(padded_map[..., iy0:iy1, ix0:ix1], scale_factor=f, mode="bilinear", align_corners=False)
    return part[..., y0 - iy0 * f : y1 - iy0 * f, x0 - ix0 * f : x1 - ix0 * f]
