"""Tiles: how a large input is cut so that each forward pass fits in memory and the cuts cannot be seen.

Why a module of its own: the tile planner (the grid that computes the fewest pixels within a memory bound)
and the memory model behind the automatic tile size are questions apart from running the network; the
inference core asks them and runs each tile.
"""

from __future__ import annotations

import math

import torch

#: Context around each tile, in input pixels: at 24 a tiled result equals the untiled one to ~1e-5
#: (tests/inference/test_upscale.py; the decay with the context is measured in benchmarks/memory_bench.py's docstring).
DEFAULT_MARGIN = 24
#: Context for 8-bit outputs up to 4x: ~0.1 % of values one grey level off the untiled result, none more,
#: for 12 % less work than 24 on large images; 8x keeps 24 (its context matters over more input pixels).
MARGIN_8BIT = 16
#: Peak working memory per padded output pixel of one forward pass (float32 CPU, pirm-r3; 8x's, the largest).
BYTES_PER_OUTPUT_PIXEL = 3400
#: The same with the OpenVINO backend (fused ops, fewer live maps).
OPENVINO_BYTES_PER_OUTPUT_PIXEL = 1250
#: Working-set budget of the automatic tile: with what the process holds before, the peak stays under 2 GB up
#: to ~16 Mpx of output (benchmarks/upscale_bench.py --sizes 16).
AUTO_MEMORY_BUDGET = 1550 * 1024**2
MIN_TILE = 32


def margin_for(bits: int, scale: int) -> int:
    """The context to give tiles of a picture written with ``bits`` per sample (8, 16, or 32 for float)."""
    return MARGIN_8BIT if bits == 8 and scale <= 4 else DEFAULT_MARGIN


def auto_tile(scale: int, device: torch.device | str, margin: int = DEFAULT_MARGIN, backend: str = "torch") -> int:
    """The largest input tile side whose forward pass fits the memory budget of ``device`` with ``backend``."""
    device = torch.device(device)
    budget = AUTO_MEMORY_BUDGET
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(free * 0.6)
    per_pixel = OPENVINO_BYTES_PER_OUTPUT_PIXEL if backend == "openvino" else BYTES_PER_OUTPUT_PIXEL
    side_out = (budget / per_pixel) ** 0.5
    return max(MIN_TILE, int(side_out / scale) - 2 * margin)


def _extent(length: int, parts: int, pad: int, margin: int, first: int, last: int) -> int:
    """Computed extent of pieces ``first..last`` of ``length`` cut in ``parts`` (context clipped at the edges)."""
    step = math.ceil(length / parts)
    full = length + 2 * pad
    return sum(
        min(full, min(y + step, length) + pad + margin) - max(0, y + pad - margin)
        for y in range(first * step, min(length, (last + 1) * step), step)
    )


def plan_tiles(height: int, width: int, tile: int, margin: int = 0, pad: int = 0) -> list[tuple[int, int, int, int]]:
    """Cover (height, width) with a grid of equal tiles: (y0, y1, x0, x1) each.

    A tile, with ``margin`` pixels of context (clipped to the image padded by
    ``pad``), holds at most ``(tile + 2 * margin) ** 2`` pixels: the memory
    bound.  Among the grids that respect it, the one computing the fewest
    pixels in all wins: the context is pure overhead, so strips can beat
    squares, and equal sizes avoid a thin remainder tile that pays its full
    context for little output.
    """
    limit = (tile + 2 * margin) ** 2

    def widest(length: int, parts: int) -> int:  # the first two pieces include the largest
        return max(_extent(length, parts, pad, margin, i, i) for i in range(min(parts, 2)))

    best: tuple[int, int, int] | None = None
    for rows in range(1, height + 1):
        if math.ceil(height / rows) == math.ceil(height / (rows - 1 or 1)) and rows > 1:
            continue  # same step as fewer rows
        sum_y = _extent(height, rows, pad, margin, 0, rows)
        if best is not None and sum_y * (width + 2 * pad) >= best[0]:
            break  # even a single column costs more than the best grid so far
        tall = widest(height, rows)
        lo, hi = 1, width  # fewest columns whose widest tile fits: the widest extent shrinks with more columns
        if tall * widest(width, hi) > limit and rows != height:
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if tall * widest(width, mid) <= limit else (mid + 1, hi)
        cost = sum_y * _extent(width, lo, pad, margin, 0, lo)
        if best is None or cost < best[0]:
            best = (cost, math.ceil(height / rows), math.ceil(width / lo))
    assert best is not None
    _, step_y, step_x = best
    ys = list(range(0, height, step_y))
    xs = list(range(0, width, step_x))
    return [(y, min(y + step_y, height), x, min(x + step_x, width)) for y in ys for x in xs]


#: (y0, y1, x0, x1) boxes
_Box = tuple[int, int, int, int]


def tile_regions(height: int, width: int, tile: int | None, margin: int, pad: int) -> list[tuple[_Box, _Box]]:
    """(tile, region) pairs covering a (height, width) input padded by ``pad``: each tile's output part in
    input pixels and the padded-input region computed for it (with ``margin`` context, clipped; the whole
    padded image when there is one tile).  Tiles of one region shape come together: a backend compiled per
    shape (OpenVINO's large tiles) then compiles each shape once."""
    hp, wp = height + 2 * pad, width + 2 * pad
    tiles = [(0, height, 0, width)] if tile is None else plan_tiles(height, width, tile, margin, pad)
    if len(tiles) == 1:
        return [(tiles[0], (0, hp, 0, wp))]
    pairs = [
        (
            t,
            (
                max(0, t[0] + pad - margin),
                min(hp, t[1] + pad + margin),
                max(0, t[2] + pad - margin),
                min(wp, t[3] + pad + margin),
            ),
        )
        for t in tiles
    ]
    pairs.sort(key=lambda pair: (pair[1][1] - pair[1][0], pair[1][3] - pair[1][2]))
    return pairs
