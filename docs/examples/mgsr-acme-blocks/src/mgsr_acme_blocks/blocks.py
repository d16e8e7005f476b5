"""A residual filter block: a minimal example of the FilterBlock contract."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from mgsr.interfaces import FilterBlock


class ResidualBlock(FilterBlock):
    """``x + conv(relu(conv(x)))`` repeated ``depth`` times; keeps ``channels`` as the contract requires."""

    name = "acme_residual"

    @attrs.frozen
    class Config:
        depth: int = 2
        kernel_size: int = 3

    def __init__(self, config: Config, *, channels: int) -> None:
        super().__init__(config, channels=channels)
        pad = config.kernel_size // 2
        self.units = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, config.kernel_size, padding=pad),
                nn.ReLU(),
                nn.Conv2d(channels, channels, config.kernel_size, padding=pad),
            )
            for _ in range(config.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = x + unit(x)
        return x
