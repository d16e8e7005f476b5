"""Component specs: a registry ``type`` name plus that component's structured ``Config``.

A recipe's component tables become specs, and so do the parts a component
names in its own ``Config`` (the discriminator's filter blocks, the contextual
loss's feature extractor).  This module depends on nothing else in mgsr, so the
recipe schema and the plugin contract (:mod:`mgsr.interfaces`) can both use it.

``config = None`` means "that component's defaults": it lets a plugin write a
default such as ``FilterBlockSpec("dense")`` without importing another plugin.
Loading a recipe and building a component both fill it in from the registry.
"""

from __future__ import annotations

from typing import Any, ClassVar

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

    kind: ClassVar[str] = ""
    type: str
    config: Any = None


@attrs.frozen
class FilterBlockSpec(ComponentSpec):
    kind: ClassVar[str] = "filter_block"


@attrs.frozen
class ClassicUpscalerSpec(ComponentSpec):
    kind: ClassVar[str] = "classic_upscaler"


@attrs.frozen
class NoiseSourceSpec(ComponentSpec):
    kind: ClassVar[str] = "noise_source"


@attrs.frozen
class DiscriminatorSpec(ComponentSpec):
    kind: ClassVar[str] = "discriminator"


@attrs.frozen
class DiscriminatorInputSpec(ComponentSpec):
    kind: ClassVar[str] = "discriminator_input"


@attrs.frozen
class LossSpec(ComponentSpec):
    kind: ClassVar[str] = "loss"


@attrs.frozen
class FeatureExtractorSpec(ComponentSpec):
    kind: ClassVar[str] = "feature_extractor"


@attrs.frozen
class MetricSpec(ComponentSpec):
    kind: ClassVar[str] = "metric"
