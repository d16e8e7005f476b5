"""G-MGBP: the generative multigrid back-projection network (Algorithm 1 of the paper).

The four modules (Analysis, Upscaling, Downscaling, Synthesis) are shared by
every level, so one set of weights produces 2x, 4x, 8x, ... outputs.  Each is a
fixed frame around a filter block taken from the registry.  The forward pass
follows the authors' release, which adds one step to Algorithm 1: the input's
own features also refine the input (``out = x + Synthesis(f0)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgsr.interfaces import ClassicUpscaler, FilterBlock, NoiseSource
from mgsr.nn import BiasReLU

NoiseAmplitude = float | torch.Tensor | Sequence[float | torch.Tensor]


def _join(features: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
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
        return self.block(self.conv_in(x))


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


class GMGBP(nn.Module):
    """The G-MGBP generator.

    ``forward(x, levels)`` returns ``[Y_1, ..., Y_levels]`` (2x, 4x, ... of ``x``),
    all of which training needs.  No border handling happens here; see
    :func:`mgsr.inference.super_resolve` for the release's padding and cropping.
    """

    def __init__(
        self,
        *,
        channels: int,
        features: int,
        noise_channels: int,
        mu: int,
        analysis: FilterBlock,
        upscaling: FilterBlock,
        downscaling: FilterBlock,
        synthesis: FilterBlock,
        classic_upscaler: ClassicUpscaler,
        noise_source: NoiseSource,
    ) -> None:
        super().__init__()
        up_channels = 2 * features + noise_channels
        for block, expected, where in (
            (analysis, features, "analysis"),
            (upscaling, up_channels, "upscaling"),
            (downscaling, features, "downscaling"),
            (synthesis, features, "synthesis"),
        ):
            if block.channels != expected:
                raise ValueError(f"{where} filter block has {block.channels} channels, G-MGBP needs {expected}")
        self.channels = channels
        self.features = features
        self.noise_channels = noise_channels
        self.mu = mu
        self.classic_upscaler = classic_upscaler
        self.analysis = Analysis(channels, features, analysis)
        self.upscaling = Upscaling(up_channels, features, upscaling)
        self.downscaling = Downscaling(features, downscaling)
        self.synthesis = Synthesis(channels, features, synthesis)
        # Start as the identity residual: an untrained G-MGBP is exactly its classic upscaler (bicubic), so
        # training starts from the classic baseline instead of from random corrections to it.
        nn.init.zeros_(self.synthesis.conv_out.weight)
        nn.init.zeros_(self.synthesis.conv_out.bias)
        self.noise_source = noise_source

    def draw_noise(
        self, x: torch.Tensor, levels: int, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Unit-amplitude draws ``z_0..z_{levels-1}``, ``z_j`` at ``2**j`` times the input resolution."""
        n, _, h, w = x.shape
        return [
            self.noise_source.sample(
                (n, self.noise_channels, h << j, w << j), generator=generator, device=x.device, dtype=x.dtype
            )
            for j in range(levels)
        ]

    def _scaled_noise(
        self,
        x: torch.Tensor,
        levels: int,
        noise_amp: NoiseAmplitude,
        noise: Sequence[torch.Tensor] | None,
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        amps = list(noise_amp) if isinstance(noise_amp, Sequence) else [noise_amp] * levels
        if len(amps) != levels:
            raise ValueError(f"noise_amp has {len(amps)} entries for {levels} levels; give one per level")
        n, _, h, w = x.shape
        shapes = [(n, self.noise_channels, h << j, w << j) for j in range(levels)]
        if all(isinstance(a, (int, float)) and a == 0 for a in amps):
            return [x.new_zeros(1, 1, 1, 1).expand(s) for s in shapes]
        if noise is None:
            noise = self.draw_noise(x, levels, generator)
        if len(noise) < levels:
            raise ValueError(f"got {len(noise)} noise maps for {levels} levels")
        scaled = []
        for j, (z, amp, shape) in enumerate(zip(noise, amps, shapes)):
            if tuple(z.shape[-2:]) != shape[-2:]:
                raise ValueError(f"noise map {j} has size {tuple(z.shape[-2:])}, level needs {shape[-2:]}")
            scaled.append(z.to(x) * (amp.to(x) if isinstance(amp, torch.Tensor) else amp))
        return scaled

    def forward(
        self,
        x: torch.Tensor,
        levels: int,
        noise_amp: NoiseAmplitude = 0.0,
        noise: Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Upscale ``x`` by ``2**levels``, returning every level's output.

        :param noise_amp: W; one value for all levels, or one per level (a float
            or a tensor broadcastable to that level's noise map, for spatial control).
        :param noise: explicit unit draws ``z_0..z_{levels-1}`` (extra ones ignored);
            drawn from the noise source with ``generator`` when omitted.
        """
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected (N, {self.channels}, H, W) input, got {tuple(x.shape)}")
        noises = self._scaled_noise(x, levels, noise_amp, noise, generator)
        feats = [self.analysis(x)]
        out = x + self.synthesis(feats[0])
        outputs = []
        for k in range(1, levels + 1):
            out = self.classic_upscaler(out)
            f = self.upscaling(_join(feats[k - 1], self.downscaling(self.analysis(out)), noises[k - 1]))
            f = self._back_project(f, k, feats, noises)
            feats.append(f)
            out = out + self.synthesis(f)
            outputs.append(out)
        return outputs

    def _back_project(
        self, u: torch.Tensor, level: int, feats: list[torch.Tensor], noises: list[torch.Tensor]
    ) -> torch.Tensor:
        """BP_level^mu: mu corrections of ``u`` from its own downscale, recursing one level down."""
        if level == 0:
            return u
        for _ in range(self.mu):
            d = self._back_project(self.downscaling(u), level - 1, feats, noises)
            u = u + self.upscaling(_join(feats[level - 1], d, noises[level - 1]))
        return u
