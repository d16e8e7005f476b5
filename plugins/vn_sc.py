"""Discriminator inputs: ``vn_sc``, the paper's VN+SC layer (section 4.1), and ``rgb``, plain colour.

VN+SC (eq. 3-4) feeds the discriminator the statistics that research on
natural images found telling: the variance-normalised luminance Î and its
products with the neighbours, ``V^(p,q)(i, j) = Î(i, j) · Î(i+p, j+q)``.  On a
natural image the off-centre products average near zero (Î is nearly
decorrelated); blur, ringing or noise make them move.  ``rgb`` is the
ablation of figure 8: the discriminator sees the colour image itself.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from mgsr import hookimpl
from mgsr.interfaces import DiscriminatorInput, odd
from mgsr.ops.color import rgb_to_y
from mgsr.ops.local_stats import gaussian_window, variance_normalize


def shift_correlate(ihat: torch.Tensor, radius: int) -> torch.Tensor:
    """``(N, 1, H, W)`` -> ``(N, (2r+1)², H, W)``: channel ``(2r+1)(p+r) + (q+r)`` holds Î(i,j)·Î(i+p,j+q).

    Neighbours beyond the border count as zero.  ``unfold`` lists each pixel's
    (2r+1)x(2r+1) neighbourhood row by row, which is exactly that channel order.
    """
    n, _, h, w = ihat.shape
    k = 2 * radius + 1
    neighbours = F.unfold(ihat, kernel_size=k, padding=radius).view(n, k * k, h, w)
    return neighbours * ihat


class VarianceNormShiftCorrelator(DiscriminatorInput):
    """VN+SC: RGB in [0, 1] -> (2·radius+1)² channels of variance-normalised neighbour products.

    Luminance is MATLAB's studio-range Y on a 0..255 scale (differentiable, not
    rounded); μ and σ use a ``window``-sized Gaussian with ``sigma`` and
    replicate borders; ``radius`` 3 gives the paper's 7x7 = 49 products.
    It has no parameters, so one instance serves every level of the discriminator.
    """

    # buffers, declared so a type checker reads them as tensors (Module.__getattr__ says Tensor | Module)
    window: torch.Tensor

    name = "vn_sc"

    @attrs.frozen
    class Config:
        window: int = attrs.field(default=7, validator=odd)
        sigma: float = attrs.field(default=7 / 6, validator=attrs.validators.gt(0))
        radius: int = attrs.field(default=3, validator=attrs.validators.ge(0))

    def __init__(self, config: Config, *, channels: int) -> None:
        super().__init__(config, channels=channels)
        if channels != 3:
            raise ValueError(f"vn_sc reads RGB images (3 channels) to take their luminance; got {channels} channels")
        self.register_buffer("window", gaussian_window(config.window, config.sigma), persistent=False)

    @property
    def out_channels(self) -> int:
        return (2 * self.config.radius + 1) ** 2

    def normalized_luminance(self, x: torch.Tensor) -> torch.Tensor:
        """Î of eq. 3 for ``(N, 3, H, W)`` RGB in [0, 1]: ``(N, 1, H, W)``."""
        return variance_normalize(rgb_to_y(x), self.window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shift_correlate(self.normalized_luminance(x), self.config.radius)


class ColourInput(DiscriminatorInput):
    """The colour image itself, unchanged: the "no VN+SC" ablation."""

    name = "rgb"

    @attrs.frozen
    class Config:
        pass

    @property
    def out_channels(self) -> int:
        return self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@hookimpl
def mgsr_discriminator_inputs() -> list[type]:
    return [VarianceNormShiftCorrelator, ColourInput]
