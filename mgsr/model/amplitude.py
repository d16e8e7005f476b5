"""The one rule for a noise amplitude W, wherever it comes from (an option, a calibration file, the page, the API).

Why a bound and not just "finite": W is checked in float64 but the network runs in float32, where 1e39 is
infinite and 1e38 overflows inside the filter blocks: both gave an all-black image and exit 0.  The models
are trained at W = 0 and W = 1; at W = 100 a fifth of a photo's pixels already clip, and by W = 1e4 the
output is salt and pepper.  So :data:`MAX_NOISE` keeps experiments well past 1 possible and every value far
from float32's range.
"""

from __future__ import annotations

import math

from mgsr.errors import MgsrError

#: The largest W accepted anywhere (float32 overflows near 1e38; W = 1 is the trained maximum).
MAX_NOISE = 1000.0


def check_amplitude(value: float, where: str = "noise amplitude W", error: type[MgsrError] = MgsrError) -> float:
    """``value`` as a float when it is a usable W (finite, >= 0, <= :data:`MAX_NOISE`), else ``error``.

    ``where`` names the option, file or field the value came from, so the message says what to change.
    """
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise error(f"{where}: a noise amplitude W is a number, got {value!r}") from None
    if not (math.isfinite(w) and 0.0 <= w <= MAX_NOISE):
        raise error(
            f"{where}: noise amplitude W must be finite and >= 0 and at most {MAX_NOISE:g}, got {w!r} "
            f"(W = 1 is the most detail the models are trained for; beyond ~1e38 float32 overflows and "
            f"the image comes out black)"
        )
    return w
