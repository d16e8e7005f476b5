"""``period2``: the share of an image's spectral energy in period-2 (checkerboard / grid) patterns.

Why: the classic artefact of a stride-2 transposed convolution, and of a GAN
that found a pattern its discriminator misses, is a fine grid that repeats
every two pixels.  In the 2-D DFT of the luminance that energy sits on the
Nyquist row and column (frequency 1/2 along one axis, anything along the
other).  Natural photographs have a 1/f² spectrum, so there a 192x192 crop
holds about 1e-4 of its (non-DC) energy on those lines; a visible grid holds
ten to a hundred times more.  Comparing an output's share with its HR
reference's is a cheap, reference-free detector that NIQE and PSNR do not
replace (NIQE's 96-pixel blocks average the grid away, PSNR hides it in the
total error).
"""

from __future__ import annotations

import numpy as np

from mgsr import hookimpl
from mgsr.interfaces import Metric
from mgsr.ops.color import ShaveConfig, shaved_y


def period2_share(y: np.ndarray) -> float:
    """Energy on the Nyquist row and column of ``y``'s 2-D DFT over all energy except DC (even sides only)."""
    h, w = y.shape
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise ValueError(f"period-2 share needs an image with even sides >= 2 (it has a Nyquist bin then); got {h}x{w}")
    power = np.abs(np.fft.fft2(y.astype(np.float64))) ** 2
    power[0, 0] = 0.0
    total = power.sum()
    if total <= 0:
        raise ValueError("period-2 share is undefined for a flat image (it has no energy besides DC)")
    nyquist = power[h // 2, :].sum() + power[:, w // 2].sum() - power[h // 2, w // 2]
    return float(nyquist / total)


class Period2Share(Metric):
    """No-reference: :func:`period2_share` of the protocol's Y (rounded, ``shave`` pixels cut); lower is cleaner."""

    name = "period2"
    needs_reference = False
    higher_is_better = False

    Config = ShaveConfig

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        y = shaved_y(output, self.config.shave)
        return period2_share(y[: y.shape[0] // 2 * 2, : y.shape[1] // 2 * 2])


@hookimpl
def mgsr_metrics() -> list[type]:
    return [Period2Share]
