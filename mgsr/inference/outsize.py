"""Any output size: a factor (``--outscale 3``, ``2.5``) or a width and/or height in pixels.

The network makes 2x, 4x and 8x.  Why upscale to the smallest of those at or above the request and then
shrink: the antialiased MATLAB bicubic downscale (the paper's S_down, :mod:`mgsr.ops.imresize`) keeps the
generated detail that is finer than the target's pixels from aliasing, and it is the resize PIRM-SR's
inputs are made with.  Upscaling less and enlarging by bicubic would blur instead.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from mgsr.errors import MgsrError
from mgsr.io.images import Picture, quantise
from mgsr.ops.imresize import output_size, resize_strips

#: the factors the network makes: its 2x levels (``levels_for``: 1, 2, 3 levels)
LEVEL_SCALES = (2, 4, 8)


def _positive_int(name: str):
    def check(_request: object, _field: attrs.Attribute, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise MgsrError(f"{name} must be a whole number of pixels >= 1, got {value!r}")

    return check


def _factor(_request: object, _field: attrs.Attribute, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MgsrError(f"outscale must be a number, got {value!r}")
    if value <= 1:
        raise MgsrError(f"outscale must be > 1 (mgsr enlarges), got {value:g}")
    if value > LEVEL_SCALES[-1]:
        raise MgsrError(
            f"outscale {value:g} is beyond {LEVEL_SCALES[-1]}x, the largest factor the network "
            f"makes; upscale the result again, or ask for at most {LEVEL_SCALES[-1]}"
        )


@attrs.frozen
class SizeRequest:
    """The output size asked for: ``outscale`` (any factor in (1, 8]), or ``width`` and/or ``height``.

    With one side the other follows the aspect ratio (rounded to the nearest pixel).  Both sides are
    accepted only when they keep the aspect (within that rounding): stretching is refused, since a
    super-resolution that silently distorts shapes is a surprise, and a crop or stretch is better done
    knowingly before or after.
    """

    outscale: float | None = attrs.field(default=None, validator=_factor)
    width: int | None = attrs.field(default=None, validator=_positive_int("width"))
    height: int | None = attrs.field(default=None, validator=_positive_int("height"))

    def __attrs_post_init__(self) -> None:
        sides = self.width is not None or self.height is not None
        if (self.outscale is None) == (not sides):
            raise MgsrError("give either an outscale factor or a width and/or height, not both and not neither")

    @property
    def tag(self) -> str:
        """The output file name's suffix: ``x3``, ``x2.5``, ``1920w``, ``1080h`` or ``1920x1080``."""
        if self.outscale is not None:
            return f"x{self.outscale:g}"
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"{self.width}w" if self.width is not None else f"{self.height}h"

    @property
    def fixed_level(self) -> int | None:
        """The network's factor when it does not depend on the image (an outscale), else None."""
        return None if self.outscale is None else _level(self.outscale, self.outscale)

    def plan(self, size: tuple[int, int], where: str = "image") -> tuple[int, tuple[int, int]]:
        """(the network's factor, the exact (height, width) out) for an image of ``size`` = (height, width)."""
        h, w = size
        if self.outscale is not None:
            out = output_size((h, w), self.outscale)
        else:
            out = (
                self.height if self.height is not None else _follow(h, self.width, w),
                self.width if self.width is not None else _follow(w, self.height, h),
            )
            if self.width is not None and self.height is not None:
                _check_aspect(size, out, where)
        if out[0] <= h or out[1] <= w:
            raise MgsrError(
                f"{where}: {out[1]}x{out[0]} is not larger than the image ({w}x{h}); mgsr enlarges, "
                "ask for a larger size"
            )
        factor_h, factor_w = out[0] / h, out[1] / w
        if max(factor_h, factor_w) > LEVEL_SCALES[-1]:
            raise MgsrError(
                f"{where}: {out[1]}x{out[0]} is {max(factor_h, factor_w):.3g}x the image ({w}x{h}), "
                f"beyond {LEVEL_SCALES[-1]}x; ask for at most {w * LEVEL_SCALES[-1]} wide and "
                f"{h * LEVEL_SCALES[-1]} high"
            )
        return _level(factor_h, factor_w), out


def _level(factor_h: float, factor_w: float) -> int:
    return next(s for s in LEVEL_SCALES if s >= factor_h - 1e-9 and s >= factor_w - 1e-9)


def _follow(side: int, asked: int | None, asked_of: int) -> int:
    """``side`` scaled as ``asked_of`` -> ``asked``, rounded half up, at least 1."""
    assert asked is not None
    return max(1, math.floor(side * asked / asked_of + 0.5))


def _check_aspect(size: tuple[int, int], out: tuple[int, int], where: str) -> None:
    h, w = size
    if abs(out[0] - _follow(h, out[1], w)) > 1 and abs(out[1] - _follow(w, out[0], h)) > 1:
        raise MgsrError(
            f"{where}: {out[1]}x{out[0]} would stretch the image ({w}x{h}: at width {out[1]} the "
            f"aspect gives height {_follow(h, out[1], w)}); give only --width or only --height, "
            "or crop the image to the shape first"
        )


def resize_picture(picture: Picture, size: tuple[int, int]) -> Picture:
    """The picture resized to ``size`` = (height, width) by antialiased MATLAB bicubic, values in its type.

    The resize reads the picture in strips (:func:`~mgsr.ops.imresize.resize_strips`): besides the input and
    the result, memory is a few float32 strips of rows, however large the image.
    """
    color = _resized(picture.color, size, picture.bits)
    alpha = None if picture.alpha is None else _resized(picture.alpha[..., None], size, picture.bits)[..., 0]
    return attrs.evolve(picture, color=color, alpha=alpha)


def _resized(planes: np.ndarray, size: tuple[int, int], bits: int) -> np.ndarray:
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(planes.dtype)
    out = np.empty((*size, planes.shape[2]), planes.dtype)
    for y0, y1, strip in resize_strips(planes, size):
        out[y0:y1] = strip if top is None else quantise(strip / np.float32(top), bits)
    return out
