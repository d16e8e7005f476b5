"""``multiscale_recursive``: the paper's multi-scale recursive discriminator (section 4.2, figure 5).

One network scores ``Y_1..Y_L`` (2x, 4x, 8x, ...) together, with the same
modules at every level, so ``L = 1`` and ``L = 3`` have the same parameters.

Where the paper leaves freedom, this implementation chooses (mirroring the
generator, whose modules it transposes):

* **Input layer.** One discriminator-input component (VN+SC by default) is
  applied to every level's image.  VN+SC has no parameters; sharing one
  instance keeps the parameter count independent of L for any input layer.
* **Analysis** (shared): the generator's Analysis module - a 3x3 convolution
  from the input layer's channels to ``features``, then a filter block.
* **Pooling** (shared), the transpose of the generator's Upscaling module:
  a filter block on ``2·features`` channels, bias+ReLU, then a 3x3 stride-2
  convolution to ``features``.  Its input is the concatenation of the
  level's analysed image and what the finer levels passed down.
* **Recursion**, finest level first:
  ``R_{L+1} = 0``;  ``R_k = Pooling([Analysis(In(Y_k)), R_{k+1}])`` for
  ``k = L..1``.  So ``D^L`` runs ``D^{L-1}``'s computation on the coarser
  levels after absorbing level L, and ``R_1`` lies at the input resolution.
  Zeros for the missing finer level mirror the generator's zero noise.
* **Synthesis** (shared): the generator's Synthesis module with one output
  channel - filter block, bias+ReLU, 3x3 convolution (with bias) - averaged
  over positions: one logit per image.  The average makes the score a mean
  of local judgements (as a PatchGAN's), so any patch size works.

Filter blocks come from the registry through the host's part builder, so a
recipe can choose them like the generator's: ``[discriminator.pooling] type = "dense"``.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn

from mgsr import hookimpl
from mgsr.interfaces import Discriminator, DiscriminatorInputSpec, FilterBlock, FilterBlockSpec, Images, PartBuilder
from mgsr.nn import Analysis, BiasReLU, Synthesis


class Pooling(nn.Module):
    """``[analysed level k, carried from level k+1]`` -> ``features`` channels at half the size."""

    def __init__(self, features: int, block: FilterBlock) -> None:
        super().__init__()
        self.block = block
        self.act = BiasReLU(2 * features)
        self.conv = nn.Conv2d(2 * features, features, 3, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.block(x)))


class MultiscaleRecursive(Discriminator):
    """D^L of figure 5: pooling, analysis and synthesis shared across levels (see the module docstring)."""

    name = "multiscale_recursive"

    @attrs.frozen
    class Config:
        features: int = attrs.field(default=48, validator=attrs.validators.gt(0))
        input: DiscriminatorInputSpec = DiscriminatorInputSpec("vn_sc")
        analysis: FilterBlockSpec = FilterBlockSpec("dense")
        pooling: FilterBlockSpec = FilterBlockSpec("dense")
        synthesis: FilterBlockSpec = FilterBlockSpec("dense")

    def __init__(self, config: Config, *, channels: int, build: PartBuilder) -> None:
        super().__init__(config, channels=channels, build=build)
        f = config.features
        self.input = build(config.input, channels=channels)
        self.analysis = Analysis(self.input.out_channels, f, build(config.analysis, channels=f))
        self.pooling = Pooling(f, build(config.pooling, channels=2 * f))
        self.synthesis = Synthesis(1, f, build(config.synthesis, channels=f))

    def forward(self, images: Images) -> torch.Tensor:
        check_pyramid(images, self.channels)
        carried = None
        for image in reversed(images):
            analysed = self.analysis(self.input(image))
            if carried is None:
                carried = torch.zeros_like(analysed)
            carried = self.pooling(torch.cat([analysed, carried], dim=1))
        return self.synthesis(carried).mean(dim=(1, 2, 3))


def check_pyramid(images: Images, channels: int) -> None:
    """Raise a ValueError unless ``images`` are ``(N, channels, H, W)`` with each twice the size of the one before."""
    if not images:
        raise ValueError("the discriminator needs at least one image (Y_1, the 2x output)")
    for k, image in enumerate(images, start=1):
        if image.dim() != 4 or image.shape[1] != channels:
            raise ValueError(f"Y_{k}: expected (N, {channels}, H, W), got {tuple(image.shape)}")
        if k > 1:
            before = images[k - 2]
            expected = (before.shape[0], channels, 2 * before.shape[2], 2 * before.shape[3])
            if tuple(image.shape) != expected:
                raise ValueError(
                    f"Y_{k} must be twice the size of Y_{k - 1}: expected {expected}, got {tuple(image.shape)}"
                )


@hookimpl
def mgsr_discriminators() -> list[type]:
    return [MultiscaleRecursive]
