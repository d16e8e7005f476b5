"""``learned_bicubic``: a 2x bicubic upscaler whose filter can be trained (as in MSLapSR and G-MGBP)."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from mgsr import hookimpl
from mgsr.interfaces import ClassicUpscaler
from mgsr.ops.precision import full_precision

TAPS = 9  # the release's kernel size; the alignment below is derived for it


def cubic(x: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel; ``a = -0.5`` is MATLAB's bicubic."""
    x = x.abs()
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def bicubic_kernel(a: float = -0.5) -> torch.Tensor:
    """The 9x9 stride-2 transposed-convolution kernel of a 2x bicubic upscale, summing to 1.

    Tap ``t`` sits at distance ``(t - 4.5) / 2`` low-resolution pixels from the
    output pixel (pixel centres at half-pixel offsets, as MATLAB's imresize), so
    taps 1..8 hold the eight bicubic weights and tap 0 is zero.  The kernel is
    divided by 4 so it sums to one; ``forward`` multiplies by the stride squared.
    """
    t = torch.arange(TAPS, dtype=torch.float64)
    k1 = cubic((t - 4.5) / 2, a)
    return (torch.outer(k1, k1) / 4).to(torch.float32)


def replicate_border(x: torch.Tensor) -> torch.Tensor:
    """``x`` with its outermost rows and columns repeated once: ``F.pad(x, (1, 1, 1, 1), mode="replicate")``.

    Why two forms: under ``torch.compile`` (``training.compile``) inductor runs ``replication_pad2d_backward``
    as an eager fallback whose predicted output layout (contiguous) is not the one the CPU kernel returns for
    a channels-last input (``training.channels_last``, or inductor's own layout optimisation), and the
    backward fails its stride assertion.  Slices and concatenations are copies of the same pixels (forward
    identical bit for bit) that inductor lowers itself, backward included.  Eager keeps ``F.pad``: its border
    gradients sum in the kernel's order, which the concatenation's backward would change in the last bit; so
    does an export (``torch.export``, ONNX), which keeps its one padding op.
    """
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
        return border_copies(x)
    return F.pad(x, (1, 1, 1, 1), mode="replicate")


def border_copies(x: torch.Tensor) -> torch.Tensor:
    """:func:`replicate_border` as slices and concatenations (what compiled graphs run)."""
    x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)
    return torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)


class LearnedBicubic(ClassicUpscaler):
    """Depthwise 9x9 transposed convolution, stride 2, initialised as bicubic.

    Borders follow the release: one pixel of replicate padding, zeros beyond.
    ``trainable = false`` freezes the filter at its initial bicubic value.
    """

    name = "learned_bicubic"

    @attrs.frozen
    class Config:
        trainable: bool = True
        a: float = -0.5

    def __init__(self, config: Config, *, channels: int) -> None:
        super().__init__(config, channels=channels)
        weight = bicubic_kernel(config.a).expand(channels, 1, TAPS, TAPS).clone()
        self.weight = nn.Parameter(weight, requires_grad=config.trainable)

    @full_precision  # the image path: a bf16 base image costs up to 10 grey levels at 4x (3 kept in float32)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = F.conv_transpose2d(replicate_border(x), self.weight * 4, stride=2, groups=self.channels)
        offset = (TAPS - 1) // 2 + 2  # kernel centre plus the two outputs made by the padding pixel
        return y[..., offset : offset + 2 * h, offset : offset + 2 * w]

    def phase_gains(self) -> torch.Tensor:
        """``(channels, 4)``: the taps of one parity pair feed one output phase; x4 as ``forward`` scales them."""
        taps = self.weight.detach()[:, 0].float() * 4
        return torch.stack([taps[:, r::2, s::2].sum(dim=(-2, -1)) for r in (0, 1) for s in (0, 1)], dim=1)


@hookimpl
def mgsr_classic_upscalers() -> list[type]:
    return [LearnedBicubic]
