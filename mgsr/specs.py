"""Component specs: a registry ``type`` name plus that component's structured ``Config``.

A recipe's component tables become specs, and so do the parts a component
names in its own ``Config`` (the discriminator's filter blocks, the contextual
loss's feature extractor).  This module depends on nothing else in mgsr, so the
recipe schema and the plugin contract (:mod:`mgsr.interfaces`) can both use it.

``config = None`` means "that component's defaults": it lets a plugin write a
default such as ``FilterBlockSpec("dense")`` without importing another plugin.
Loading a recipe and building a component both fill it in from the registry.
Which kind of component a spec class chooses is declared once, in :mod:`mgsr.kinds`.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "ComponentSpec",
    "FilterBlockSpec",
    "ClassicUpscalerSpec",
    "NoiseSourceSpec",
    "DiscriminatorSpec",
    "DiscriminatorInputSpec",
    "LossSpec",
    "FeatureExtractorSpec",
    "MetricSpec",
]


@attrs.frozen
class ComponentSpec:
    """A component chosen by a recipe: its registry ``type`` and its structured ``Config`` (None: defaults)."""

    type: str
    config: Any = None


@attrs.frozen
class FilterBlockSpec(ComponentSpec):
    """A recipe's choice of a filter block."""


@attrs.frozen
class ClassicUpscalerSpec(ComponentSpec):
    """A recipe's choice of a classic upscaler."""


@attrs.frozen
class NoiseSourceSpec(ComponentSpec):
    """A recipe's choice of a noise source."""


@attrs.frozen
class DiscriminatorSpec(ComponentSpec):
    """A recipe's choice of a discriminator."""


@attrs.frozen
class DiscriminatorInputSpec(ComponentSpec):
    """A recipe's choice of a discriminator input."""


@attrs.frozen
class LossSpec(ComponentSpec):
    """A recipe's choice of a loss."""


@attrs.frozen
class FeatureExtractorSpec(ComponentSpec):
    """A recipe's choice of a feature extractor."""


@attrs.frozen
class MetricSpec(ComponentSpec):
    """A recipe's choice of a metric."""
