"""Abstract bases that plugins implement.

Every component class carries its identity as class attributes:

* ``name``: the stable, lower-case name recipes use (never ``__name__``);
* ``Config``: a frozen attrs class holding everything a recipe may set.

The host decides what depends on the architecture (channel counts, scale) and
passes it as keyword arguments; the ``Config`` holds the rest.  Plugins import
from this module only, never from the rest of the host.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

__all__ = [
    "Component",
    "ChannelModule",
    "FilterBlock",
    "ClassicUpscaler",
    "NoiseSource",
    "Discriminator",
    "Loss",
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


class NoiseSource(Component, abc.ABC):
    """Draws the unit-amplitude noise maps the generator scales by W.

    Built as ``Cls(config)``.  Draws come from the ``torch.Generator`` passed in,
    so a seed fixes the result whatever else consumed random numbers.
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


class Discriminator(ChannelModule):
    """Scores a set of images, one per upscaling level, as real (high) or fake (low).

    Built as ``Cls(config, channels=c)``; ``forward`` takes the images
    ``Y_1..Y_L`` (2x, 4x, 8x, ...) and returns one logit per batch item.
    """

    @abc.abstractmethod
    def forward(self, images: Sequence[torch.Tensor]) -> torch.Tensor: ...


class Loss(nn.Module, Component, abc.ABC):
    """One term of the training objective, built as ``Cls(config)``.

    ``forward`` receives the generator outputs per level and the references per
    level and returns a scalar; the weight lives in the ``Config``.
    """

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @abc.abstractmethod
    def forward(
        self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], **context: Any
    ) -> torch.Tensor: ...


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
