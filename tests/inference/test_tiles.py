"""Tile planning: the grid covers the image once, respects the memory bound, and computes the least context."""

from __future__ import annotations

import numpy as np
import pytest

from mgsr.inference.tiles import plan_tiles


def computed(tiles, height, width, margin, pad):
    return sum(
        (min(height + 2 * pad, y1 + pad + margin) - max(0, y0 + pad - margin))
        * (min(width + 2 * pad, x1 + pad + margin) - max(0, x0 + pad - margin))
        for y0, y1, x0, x1 in tiles
    )


@pytest.mark.parametrize("height,width,tile", [(256, 256, 134), (1000, 750, 134), (57, 311, 40), (5, 7, 2), (1, 1, 8)])
def test_tiles_cover_once_within_the_bound(height, width, tile):
    margin, pad = 32, 4
    tiles = plan_tiles(height, width, tile, margin, pad)
    hits = np.zeros((height, width), int)
    for y0, y1, x0, x1 in tiles:
        hits[y0:y1, x0:x1] += 1
        if len(tiles) > 1:
            extent = computed([(y0, y1, x0, x1)], height, width, margin, pad)
            assert extent <= (tile + 2 * margin) ** 2 or (y1 - y0 == 1 and x1 - x0 == 1)
    assert (hits == 1).all()


def test_strips_when_they_compute_less_than_squares():
    # full-height strips (264 x ~210 computed px) fit a 200-pixel tile's bound (264^2); squares compute more
    tiles = plan_tiles(256, 512, 200, 32, 4)
    assert all(y0 == 0 and y1 == 256 for y0, y1, _, _ in tiles) and len(tiles) == 3
    squares = [(y, y + 128, x, x + 128) for y in (0, 128) for x in range(0, 512, 128)]
    assert computed(tiles, 256, 512, 32, 4) < computed(squares, 256, 512, 32, 4)
