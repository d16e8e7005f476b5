"""G-MGBP: the generative multigrid back-projection network (Algorithm 1 of the paper).

The four modules (Analysis, Upscaling, Downscaling, Synthesis) are shared by
every level, so one set of weights produces 2x, 4x, 8x, ... outputs.  Each is a
fixed frame around a filter block taken from the registry.  The forward pass
follows the authors' release, which adds one step to Algorithm 1: the input's
own features also refine the input (``out = x + Synthesis(f0)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from mgsr.interfaces import ClassicUpscaler, FilterBlock, NoiseSource
from mgsr.nn import Analysis, Downscaling, Synthesis, Upscaling, join_channels

if TYPE_CHECKING:
    from mgsr.model.card import ModelCard
    from mgsr.recipe import ModelSpec

NoiseAmplitude = float | torch.Tensor | Sequence[float | torch.Tensor]


class GMGBP(nn.Module):
    """The G-MGBP generator.

    ``forward(x, levels)`` returns ``[Y_1, ..., Y_levels]`` (2x, 4x, ... of ``x``),
    all of which training needs.  No border handling happens here; see
    :func:`mgsr.inference.core.upscale_tensor` for the release's padding and cropping.

    ``spec`` (the recipe's ``[model]`` table that built it) and ``card`` (name, default W, source, licence)
    are set by the builder and the loader; a generator built by hand has neither.
    """

    spec: ModelSpec | None
    card: ModelCard | None

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
        for param in self.synthesis.conv_out.parameters():  # its weight and bias
            nn.init.zeros_(param)
        self.noise_source = noise_source
        self.spec = None
        self.card = None

    @property
    def default_noise(self) -> float:
        """The W to use when a caller gives none: the card's, else the spec's, else 0 (best distortion)."""
        if self.card is not None:
            return self.card.default_noise
        return self.spec.default_noise if self.spec is not None else 0.0

    def draw_noise(self, x: torch.Tensor, levels: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Unit-amplitude draws ``z_0..z_{levels-1}``, ``z_j`` at ``2**j`` times the input resolution."""
        n, _, h, w = x.shape
        return [
            self.noise_source.sample(
                (n, self.noise_channels, h * (1 << j), w * (1 << j)),
                generator=generator,
                device=x.device,
                dtype=x.dtype,
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
        # h * 2**j, not h << j: under torch.export h is a symbolic size, and the ONNX exporter of torch 2.14+
        # fails on the operator.lshift node a shift of it leaves in the graph (`mgsr export --noise 0`)
        shapes = [(n, self.noise_channels, h * (1 << j), w * (1 << j)) for j in range(levels)]
        if all(isinstance(a, (int, float)) and a == 0 for a in amps):
            return [x.new_zeros(1, 1, 1, 1).expand(s) for s in shapes]
        if noise is None:
            noise = self.draw_noise(x, levels, generator)
        if len(noise) < levels:
            raise ValueError(f"got {len(noise)} noise maps for {levels} levels")
        scaled = []
        # the caller may pass maps for more levels than it runs (one draw reused at every level count)
        for j, (z, amp, shape) in enumerate(zip(noise[:levels], amps, shapes, strict=True)):
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
            f = self.upscaling(join_channels(feats[k - 1], self.downscaling(self.analysis(out)), noises[k - 1]))
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
            u = u + self.upscaling(join_channels(feats[level - 1], d, noises[level - 1]))
        return u


class ExplicitNoiseGenerator(nn.Module):
    """``(x, z_0 .. z_{L-1}, w) -> Y_L``: ``generator`` at ``levels`` levels with its unit draws and its W per
    level (a (levels,) tensor) as inputs, and its last level as the output.

    Why a module of its own: a traced graph (ONNX export, the OpenVINO backend) takes tensors only, so the
    noise the generator would draw and the W list it would be given become inputs, which any runtime can feed
    with mgsr's own draws and get mgsr's output.
    """

    def __init__(self, generator: GMGBP, levels: int) -> None:
        super().__init__()
        self.generator = generator
        self.levels = levels

    def forward(self, x: torch.Tensor, *noise_and_w: torch.Tensor) -> torch.Tensor:
        noise, w = list(noise_and_w[:-1]), noise_and_w[-1]
        return self.generator(x, self.levels, noise_amp=[w[j] for j in range(self.levels)], noise=noise)[-1]
