"""The component kinds, each declared once: its name, its collecting hook, its interface, its recipe spec class.

The registry asks each kind's hook and checks the answers against the interface; recipes structure a
component table into the kind's spec class; the builder looks a spec up by its kind.  Adding a kind means one
hookspec (with its documentation) in :mod:`mgsr.hookspecs`, one interface, one spec class and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from . import hookspecs
from .interfaces import (
    ClassicUpscaler,
    Discriminator,
    DiscriminatorInput,
    FeatureExtractor,
    FilterBlock,
    Loss,
    Metric,
    NoiseSource,
)
from .specs import (
    ClassicUpscalerSpec,
    ComponentSpec,
    DiscriminatorInputSpec,
    DiscriminatorSpec,
    FeatureExtractorSpec,
    FilterBlockSpec,
    LossSpec,
    MetricSpec,
    NoiseSourceSpec,
)


@attrs.frozen
class Kind:
    """One kind of component: what recipes call it, the hook that collects it, what it must subclass."""

    name: str
    hook: Callable[[], object]
    interface: type
    spec: type[ComponentSpec]

    @property
    def hook_name(self) -> str:
        return self.hook.__name__


KINDS: tuple[Kind, ...] = (
    Kind("filter_block", hookspecs.mgsr_filter_blocks, FilterBlock, FilterBlockSpec),
    Kind("classic_upscaler", hookspecs.mgsr_classic_upscalers, ClassicUpscaler, ClassicUpscalerSpec),
    Kind("discriminator", hookspecs.mgsr_discriminators, Discriminator, DiscriminatorSpec),
    Kind("loss", hookspecs.mgsr_losses, Loss, LossSpec),
    Kind("noise_source", hookspecs.mgsr_noise_sources, NoiseSource, NoiseSourceSpec),
    Kind("discriminator_input", hookspecs.mgsr_discriminator_inputs, DiscriminatorInput, DiscriminatorInputSpec),
    Kind("feature_extractor", hookspecs.mgsr_feature_extractors, FeatureExtractor, FeatureExtractorSpec),
    Kind("metric", hookspecs.mgsr_metrics, Metric, MetricSpec),
)

#: kind name -> Kind
BY_NAME: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in KINDS})
_BY_SPEC: Mapping[type, Kind] = MappingProxyType({kind.spec: kind for kind in KINDS})


def kind_of(spec: ComponentSpec | type[ComponentSpec]) -> str:
    """The kind name a spec (or spec class) chooses a component of."""
    cls = spec if isinstance(spec, type) else type(spec)
    for base in cls.__mro__:
        if base in _BY_SPEC:
            return _BY_SPEC[base].name
    raise TypeError(f"{cls.__qualname__} is not a component spec class of any kind in mgsr.kinds")
