"""The preview crop: where it is on the input, how big at an output factor, and the crop chooser that shows it.

Its own module because two sides need the same geometry: the preview job (:mod:`.jobs`) upscales the crop,
and the page (:mod:`.wiring`) draws it on the chooser and moves it by clicks and keys.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: side of the preview's output in pixels: its input crop is this divided by the scale
DEFAULT_PREVIEW_SIDE = 256


def crop_side(out_side: int, factor: float) -> int:
    """Input pixels along the preview crop's side, so its output is about ``out_side`` at this factor."""
    return max(8, round(out_side / factor))


def crop_box(size: tuple[int, int], centre: tuple[float, float] | None, side: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a ``side`` square around ``centre`` = (x, y), kept inside an image of (height, width)."""
    height, width = size
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    sy, sx = min(side, height), min(side, width)
    y0 = int(min(max(round(cy - sy / 2), 0), height - sy))
    x0 = int(min(max(round(cx - sx / 2), 0), width - sx))
    return y0, y0 + sy, x0, x0 + sx


def moved_centre(
    size: tuple[int, int], centre: tuple[float, float] | None, side: int, dx: int, dy: int
) -> tuple[float, float]:
    """The crop's centre = (x, y) moved by half its ``side`` per step (``dx``, ``dy`` in -1, 0, 1), for the
    keyboard; kept where the crop fits inside an image of (height, width), so a step back always moves it."""
    height, width = size
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    half_x, half_y = min(side, width) / 2, min(side, height) / 2
    x = min(max(cx + dx * side / 2, half_x), width - half_x)
    y = min(max(cy + dy * side / 2, half_y), height - half_y)
    return float(x), float(y)


#: side of the crop chooser's picture: small inputs are enlarged (pixels kept sharp), big ones reduced
CHOOSER_SIDE = 384


def chooser_factor(size: tuple[int, int]) -> float:
    """How much the crop chooser enlarges (> 1) or reduces (< 1) an input of (height, width)."""
    longest = max(size)
    return float(max(1, CHOOSER_SIDE // longest)) if longest <= CHOOSER_SIDE else CHOOSER_SIDE / longest


def crop_outline(display: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The input with the preview crop drawn as a box, sized for the page's crop chooser.

    A click on it at (x, y) means the input pixel (x, y) / :func:`chooser_factor`.
    """
    factor = chooser_factor(display.shape[:2])
    h, w = display.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    resample = Image.Resampling.NEAREST if factor >= 1 else Image.Resampling.BILINEAR
    out = np.array(Image.fromarray(display).resize(size, resample))
    y0, y1, x0, x1 = (round(v * factor) for v in box)
    thick = 2
    colour = np.array([255, 64, 0], dtype=np.uint8)
    out[y0 : min(y0 + thick, y1), x0:x1] = colour
    out[max(y1 - thick, y0) : y1, x0:x1] = colour
    out[y0:y1, x0 : min(x0 + thick, x1)] = colour
    out[y0:y1, max(x1 - thick, x0) : x1] = colour
    return out
