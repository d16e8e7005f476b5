"""Abstract bases that plugins implement.

Every component class carries its identity as class attributes:

* ``name``: the stable, lower-case name recipes use (never ``__name__``);
* ``Config``: a frozen attrs class holding everything a recipe may set.

The host decides what depends on the architecture (channel counts, scale) and
passes it as keyword arguments; the ``Config`` holds the rest.  Plugins import
from this module and the documented toolkit only: :mod:`mgsr.nn` (``BiasReLU``, the
generator's module frames), :mod:`mgsr.ops` (imresize, colour, local statistics,
contextual similarity, precision guards), :mod:`mgsr.io.hub` (weights fetched on first
use) and :mod:`mgsr.errors` — never from the rest of the host.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import attrs
import numpy as np
import torch
from torch import nn

from mgsr.specs import ComponentSpec, DiscriminatorInputSpec, FeatureExtractorSpec, FilterBlockSpec

#: One image per level, ``[Y_1..Y_L]`` or ``[X^1..X^L]``: each twice the size of the one before.
Images = Sequence[torch.Tensor]

__all__ = [
    "Component",
    "ChannelModule",
    "Composite",
    "PartBuilder",
    "FilterBlock",
    "ClassicUpscaler",
    "NoiseSource",
    "DiscriminatorInput",
    "Discriminator",
    "FeatureExtractor",
    "LossConfig",
    "noise_field",
    "Loss",
    "AdversarialLoss",
    "check_levels",
    "level_counts",
    "odd",
    "Images",
    "ComponentSpec",
    "FilterBlockSpec",
    "DiscriminatorInputSpec",
    "FeatureExtractorSpec",
    "Metric",
]


class Component:
    """Identity shared by all component kinds: a registry name and a frozen attrs ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]


class ChannelModule(nn.Module, Component, abc.ABC):
    """A component that is a module built for a channel count the host decides: ``Cls(config, channels=c)``."""

    def __init__(self, config: Any, *, channels: int) -> None:
        super().__init__()
        self.config = config
        self.channels = channels


class FilterBlock(ChannelModule):
    """A shape-preserving feature filter, ``(N, c, H, W) -> (N, c, H, W)``.

    Built as ``Cls(config, channels=c)``.  G-MGBP wraps one filter block in each
    of its four modules; a third party ships a new block to try another one.
    """

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class ClassicUpscaler(ChannelModule):
    """Doubles the resolution of an image: ``(N, c, H, W) -> (N, c, 2H, 2W)``.

    Built as ``Cls(config, channels=c)``.  It gives the base image that the
    network refines at every level (a Laplacian-pyramid step).
    """

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def phase_gains(self) -> torch.Tensor | None:
        """The DC gain of each of the four output phases, ``(channels, 4)``; None for an upscaler without phases.

        Why: a stride-2 upscaler makes the output pixels of each phase (row and column parity) from their own
        subset of taps.  When those subsets sum to different gains, a flat input comes out as a period-2 grid,
        so training watches their spread (:mod:`mgsr.training.watch`).  Overridden by upscalers that have
        such phases (a transposed convolution); the default says there are none.
        """
        return None


class NoiseSource(Component, abc.ABC):
    """Draws the unit-amplitude noise maps the generator scales by W.

    Built as ``Cls(config)``.  Draws come from the ``torch.Generator`` passed in,
    so a seed fixes the result whatever else consumed random numbers.  Training
    asks for whole maps; inference asks for fixed blocks, ``(N, noise_channels,
    64, 64)`` on the CPU, each with its own generator (:mod:`mgsr.inference.noise`),
    so a source must draw from the generator it is given only and return the
    shape asked for; noise correlated across blocks cannot be expressed.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    @abc.abstractmethod
    def sample(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Return one draw of the given shape."""


class PartBuilder(Protocol):
    """Turns a spec into a built component: ``build(spec, **arch)``.

    ``arch`` is what the part's kind is built with besides its config
    (``channels=c`` for a filter block or a discriminator input; nothing for a
    feature extractor).  The host resolves ``spec.type`` in its registry.
    """

    def __call__(self, spec: ComponentSpec, /, **arch: Any) -> Any: ...


class Composite:
    """A component whose ``Config`` names other components as ``ComponentSpec`` fields.

    The host builds it with one more keyword, ``build`` (a :class:`PartBuilder`).
    The composite decides the architecture (which part, how many channels); the
    host looks the names up.  So a plugin never touches the registry, and a
    recipe can swap any part, e.g. the discriminator's filter blocks.
    Discriminators and losses are composites.
    """


class DiscriminatorInput(ChannelModule):
    """The discriminator's input layer: ``(N, c, H, W)`` images in [0, 1] -> ``(N, out_channels, H, W)``.

    Built as ``Cls(config, channels=c)``; ``out_channels`` tells the
    discriminator how wide its first convolution is.  Examples: the paper's
    VN+SC layer (49 channels of normalised neighbour products) or plain colour.
    """

    @property
    @abc.abstractmethod
    def out_channels(self) -> int: ...

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class Discriminator(ChannelModule, Composite):
    """Scores a set of images, one per upscaling level, as real (high) or fake (low).

    Built as ``Cls(config, channels=c, build=build)``; ``forward`` takes the
    images ``Y_1..Y_L`` (2x, 4x, 8x, ...; each twice the size of the one
    before) and returns one logit per batch item, shape ``(N,)``.
    """

    def __init__(self, config: Any, *, channels: int, build: PartBuilder) -> None:
        super().__init__(config, channels=channels)

    @abc.abstractmethod
    def forward(self, images: Images) -> torch.Tensor: ...


class FeatureExtractor(nn.Module, Component, abc.ABC):
    """A fixed feature map for perceptual losses: ``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, C, h, w)``.

    Built as ``Cls(config)``.  Its weights are not trained: losses use it as a
    fixed measuring stick, so it keeps ``requires_grad`` off (gradients still
    flow to its input).
    """

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


def _noise_amplitudes(instance: object, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not value or any(w < 0 for w in value):
        raise ValueError(f"{attribute.name} must list at least one noise amplitude W >= 0, got {list(value)}")


def level_counts(instance: object, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    """attrs validator: at least one, distinct level counts >= 1 (1 = 2x, 2 = 4x, 3 = 8x)."""
    if not value or any(n < 1 for n in value) or len(set(value)) != len(value):
        raise ValueError(
            f"{attribute.name} must list distinct level counts >= 1 (1 = 2x, 2 = 4x, 3 = 8x), got {list(value)}"
        )


def odd(instance: object, attribute: attrs.Attribute, value: int) -> None:
    """attrs validator: a positive odd number (kernel and window sizes)."""
    if value < 1 or value % 2 == 0:
        raise ValueError(f"{attribute.name} must be a positive odd number, got {value}")


def noise_field(default: tuple[float, ...]) -> Any:
    """``LossConfig.noise`` with another default, for a loss ``Config`` whose term reads other outputs."""
    return attrs.field(default=default, validator=_noise_amplitudes)


@attrs.frozen
class LossConfig:
    """What every loss's ``Config`` holds (subclass it and add your own fields).

    * ``weight``: the term's factor in the total objective (eq. 7 of the paper);
    * ``noise``: the noise amplitudes W whose generator outputs the term reads;
      the term is summed over them (the cycle loss reads W = 0 and W = 1);
    * ``scales``: the level counts L (1 = 2x, 2 = 4x, 3 = 8x) at which it counts.
    """

    weight: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    noise: tuple[float, ...] = noise_field((0.0,))
    scales: tuple[int, ...] = attrs.field(default=(1, 2, 3), validator=level_counts)


class Loss(nn.Module, Composite, Component, abc.ABC):
    """One term of the training objective, built as ``Cls(config, build=build)``; ``Config`` subclasses LossConfig.

    A training step at level count L runs the generator once per noise
    amplitude the losses need, giving ``outputs = {W: [Y_1..Y_L]}``, and has
    the references ``targets = [X^1..X^L]`` (eq. 5-6).  ``loss(outputs,
    targets, discriminator=D)`` returns the weighted scalar
    ``weight * sum(term(outputs[W], targets) for W in noise)``, or zero when L
    is not among ``scales``.  Plugins implement :meth:`term` only.
    """

    #: the registry refuses a loss whose ``Config`` does not subclass this
    config_base: ClassVar[type] = LossConfig

    def __init__(self, config: LossConfig, *, build: PartBuilder | None = None) -> None:
        super().__init__()
        self.config = config

    def active(self, levels: int) -> bool:
        """Whether this term counts when training with ``levels`` levels (so a trainer can skip its work)."""
        return levels in self.config.scales

    def forward(
        self, outputs: Mapping[float, Images], targets: Images, *, discriminator: Discriminator | None = None
    ) -> torch.Tensor:
        check_levels(outputs, targets, self.config.noise)
        if not self.active(len(targets)):
            return targets[0].new_zeros(())
        terms = [self.term(outputs[w], targets, discriminator=discriminator) for w in self.config.noise]
        total = torch.stack(terms).sum()
        return self.config.weight * total

    @abc.abstractmethod
    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        """The unweighted term for one noise amplitude: outputs ``Y^1..Y^L`` against ``X^1..X^L``."""


class AdversarialLoss(Loss):
    """A loss that also gives the discriminator its objective (the GAN term).

    ``discriminator_loss`` is what the discriminator minimises, summed over the
    same noise amplitudes; it detaches the generator outputs itself, so the
    discriminator's step never reaches the generator.
    """

    @abc.abstractmethod
    def discriminator_loss(
        self, outputs: Mapping[float, Images], targets: Images, *, discriminator: Discriminator
    ) -> torch.Tensor: ...


def check_levels(outputs: Mapping[float, Images], targets: Images, noise: Sequence[float]) -> None:
    """Raise a ValueError unless ``outputs`` has every W in ``noise``, each with one image per target."""
    if not targets:
        raise ValueError("a loss needs at least one level of targets")
    for w in noise:
        if w not in outputs:
            raise ValueError(f"the loss reads the outputs at W = {w}; got outputs for W in {sorted(outputs)}")
        if len(outputs[w]) != len(targets):
            raise ValueError(f"{len(outputs[w])} outputs at W = {w} for {len(targets)} targets; give one per level")
        for k, (y, x) in enumerate(zip(outputs[w], targets, strict=True), start=1):
            if y.shape != x.shape:
                raise ValueError(f"level {k}: output {tuple(y.shape)} and target {tuple(x.shape)} differ in shape")


class Metric(Component, abc.ABC):
    """An image quality score, built as ``Cls(config)``: per image, and for a set.

    ``score`` receives images as the evaluation protocol quantised them:
    ``(H, W, 3)`` uint8 RGB arrays of the same size; ``reference`` is None for a
    no-reference metric.  Conventions such as the colour channel and the border
    shave belong to the metric (its ``Config``), so a protocol fixes them by
    fixing configs.  The score of a set is the metric's to define, because the
    usual conventions differ: PIRM-SR's RMSE is the square root of the mean
    per-image MSE, not the mean per-image RMSE.
    """

    #: True when ``score`` needs the ground-truth image (RMSE, PSNR, SSIM).
    needs_reference: ClassVar[bool]
    #: The direction of improvement, for tables and plots.
    higher_is_better: ClassVar[bool]

    def __init__(self, config: Any) -> None:
        self.config = config

    @abc.abstractmethod
    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        """The score of one image; raise ValueError with a reason when the image cannot be scored."""

    def aggregate(self, scores: Sequence[float]) -> float:
        """The score of a set from its per-image scores: their mean, unless the metric defines it otherwise."""
        return float(np.mean(np.asarray(scores, dtype=np.float64)))
