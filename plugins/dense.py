"""``dense``: the pre-activation dense block G-MGBP uses in all four of its modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import attrs
import torch
from torch import nn
from torch.nn import functional as F

from mgsr import hookimpl
from mgsr.interfaces import FilterBlock, odd
from mgsr.nn import BiasReLU, conv_bias_relu


class DenseLayer(nn.Module):
    """act -> 1x1 conv to ``bottleneck * growth`` -> act -> kxk conv to ``growth``; output appended to the input."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int, kernel_size: int) -> None:
        super().__init__()
        width = bottleneck * growth
        self.act_in = BiasReLU(in_channels)
        self.squeeze = nn.Conv2d(in_channels, width, 1, bias=False)
        self.act_mid = BiasReLU(width)
        self.conv = nn.Conv2d(width, growth, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv(self.act_mid(self.squeeze(self.act_in(x))))
        return torch.cat([x, new], dim=1)


class DenseBlock(FilterBlock):
    """A dense block (Huang et al.) with bias+ReLU pre-activations and a 1x1 transition back to ``channels``.

    Each of ``layers`` dense layers adds ``growth`` channels; the transition
    (act + 1x1 conv) maps ``channels + layers * growth`` back to ``channels``,
    which is what makes the block a drop-in ``(N, c, H, W) -> (N, c, H, W)`` filter.
    """

    name = "dense"

    @attrs.frozen
    class Config:
        layers: int = attrs.field(default=4, validator=attrs.validators.gt(0))
        growth: int = attrs.field(default=16, validator=attrs.validators.gt(0))
        bottleneck: int = attrs.field(default=4, validator=attrs.validators.gt(0))
        kernel_size: int = attrs.field(default=3, validator=odd)

    def __init__(self, config: Config, *, channels: int) -> None:
        super().__init__(config, channels=channels)
        self.layers = nn.ModuleList(
            DenseLayer(channels + i * config.growth, config.growth, config.bottleneck, config.kernel_size)
            for i in range(config.layers)
        )
        grown = channels + config.layers * config.growth
        self.transition_act = BiasReLU(grown)
        self.transition = nn.Conv2d(grown, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_tracing():
            for layer in self.layers:
                x = layer(x)
            return self.transition(self.transition_act(x))
        return self._forward_inference(x)

    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The same function without autograd, in one preallocated feature buffer.

        Concatenating at every layer copies all earlier features again (quadratic
        in ``layers``); here each layer writes only its ``growth`` new channels
        into the buffer, and the mid activation's bias rides in the squeeze
        convolution (one pass less).  Same values to float rounding; the
        parameters, and so the state-dict keys, are the training path's.
        """
        n, c, h, w = x.shape
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        grown = c + len(self.layers) * self.config.growth
        features = torch.empty((n, grown, h, w), device=x.device, dtype=x.dtype, memory_format=layout)
        features[:, :c].copy_(x)
        width = c
        for layer in cast(Iterable[DenseLayer], self.layers):  # a ModuleList yields Modules; these are DenseLayers
            active = torch.relu_(features[:, :width] + layer.act_in.bias.view(1, -1, 1, 1))
            mid = conv_bias_relu(active, layer.squeeze.weight, layer.act_mid.bias)
            new = F.conv2d(mid, layer.conv.weight, padding=layer.conv.padding)
            features[:, width : width + new.shape[1]].copy_(new)
            width += new.shape[1]
        del active, mid, new  # the peak is the transition: hold nothing but the buffer there
        # the transition's bias+ReLU in place: the buffer is ours, and a copy of it was the block's largest map
        features.add_(self.transition_act.bias.view(1, -1, 1, 1)).relu_()
        return self.transition(features)


@hookimpl
def mgsr_filter_blocks() -> list[type]:
    return [DenseBlock]
