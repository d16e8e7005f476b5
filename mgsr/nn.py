"""Building blocks shared by the generator and by plugins (public toolkit).

``BiasReLU`` is G-MGBP's pre-activation; ``Analysis``, ``Upscaling``, ``Downscaling`` and ``Synthesis`` are the
fixed frames the generator puts around its filter blocks (a discriminator plugin may reuse them);
``join_channels`` concatenates feature maps without losing the channels-last layout; ``conv_bias_relu``
fuses a convolution with its bias and ReLU at inference.
"""

from __future__ import annotations

import torch
from torch import nn

from mgsr.interfaces import FilterBlock
from mgsr.ops.precision import full_precision


class BiasReLU(nn.Module):
    """A learned per-channel bias followed by ReLU: the "act" of G-MGBP.

    The release applies it *before* each convolution (pre-activation), so the
    convolutions themselves carry no bias.  Starting at zero makes it a plain
    ReLU at initialisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # relu_ on the fresh sum saves one allocation per activation (a quarter of inference time is these)
        return torch.relu_(x + self.bias.view(1, -1, 1, 1))


def join_channels(features: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
    """Concatenate along channels in the memory layout of ``features``.

    ``torch.cat`` falls back to NCHW when a part's layout is ambiguous (the
    one-channel noise map), and every following convolution of the Upscaling
    block would then copy its input back to channels-last: a third of the
    inference time.  One conversion here avoids all of those.
    """
    joined = torch.cat([features, *others], 1)
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return joined.contiguous(memory_format=torch.channels_last)
    return joined


class Analysis(nn.Module):
    """Image -> features: 3x3 conv to ``features`` channels, then a filter block."""

    def __init__(self, channels: int, features: int, block: FilterBlock) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(channels, features, 3, padding=1, bias=False)
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(_image_to_features(self.conv_in, x))


@full_precision
def _image_to_features(conv: nn.Conv2d, image: torch.Tensor) -> torch.Tensor:
    """The image's first convolution, in float32 even under autocast.

    At W = 1 pirm-r3 amplifies a relative error in its input image ~100-fold, so the image's own rounding to
    half precision would outweigh that of every filter block; this small convolution (3 -> 48 channels) is
    cheap to keep in float32 (what it saves: README, "GPU precision").
    """
    return conv(image)


class Upscaling(nn.Module):
    """[features of level k-1, back-projected features, noise] -> features at level k (2x)."""

    def __init__(self, in_channels: int, features: int, block: FilterBlock) -> None:
        super().__init__()
        self.block = block
        self.act = BiasReLU(in_channels)
        self.conv = nn.ConvTranspose2d(in_channels, features, 3, stride=2, padding=1, output_padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.block(x)))


class Downscaling(nn.Module):
    """Features at level k -> features at level k-1: strided 3x3 conv, then a filter block."""

    def __init__(self, features: int, block: FilterBlock) -> None:
        super().__init__()
        self.conv = nn.Conv2d(features, features, 3, stride=2, padding=1, bias=False)
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x))


class Synthesis(nn.Module):
    """Features -> image residual: filter block, act, 3x3 conv to ``channels`` (with bias)."""

    def __init__(self, channels: int, features: int, block: FilterBlock) -> None:
        super().__init__()
        self.block = block
        self.act = BiasReLU(features)
        self.conv_out = nn.Conv2d(features, channels, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.act(self.block(x)))


def _fusable(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()


def conv_bias_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """``relu(conv2d(x, weight) + bias)`` in one pass over the output where oneDNN can fuse it (CPU, float32).

    Inference only (no autograd through the fused op).  Elsewhere, and on other
    devices, the bias rides in the convolution and the ReLU runs in place.  Why:
    at inference the activations are memory-bound, and each separate pass over a
    64-channel map costs about as much as a small convolution.
    """
    if _fusable(x) and not (torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_tracing()):
        pad = [padding, padding]
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, pad, [1, 1], [1, 1], 1, "relu", [None], None)
    return torch.relu_(torch.nn.functional.conv2d(x, weight, bias, padding=padding))
