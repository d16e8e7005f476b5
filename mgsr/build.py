"""Recipe -> built components.  The only place that turns specs into modules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .generator import GMGBP
from .recipe import ComponentSpec, ModelSpec, Recipe, load_recipe
from .registry import Registry, default_registry


def _instantiate(spec: ComponentSpec, registry: Registry, **arch: Any) -> Any:
    cls = registry.get(spec.kind, spec.type)
    return cls(spec.config, **arch)


def build_generator(spec: ModelSpec, registry: Registry | None = None) -> GMGBP:
    """A G-MGBP generator with the architecture of ``spec``, randomly initialised or loaded from ``spec.weights``."""
    registry = registry or default_registry()
    features, channels = spec.features, spec.channels
    generator = GMGBP(
        channels=channels,
        features=features,
        noise_channels=spec.noise_channels,
        mu=spec.mu,
        analysis=_instantiate(spec.analysis, registry, channels=features),
        upscaling=_instantiate(spec.upscaling, registry, channels=2 * features + spec.noise_channels),
        downscaling=_instantiate(spec.downscaling, registry, channels=features),
        synthesis=_instantiate(spec.synthesis, registry, channels=features),
        classic_upscaler=_instantiate(spec.classic_upscaler, registry, channels=channels),
        noise_source=_instantiate(spec.noise, registry),
    )
    if spec.weights is not None:
        from .pretrained import load_weights_into

        load_weights_into(generator, spec.weights)
    return generator


@attrs.frozen
class Built:
    """Everything a recipe assembles.  Training adds discriminator, losses and data here."""

    recipe: Recipe
    registry: Registry
    generator: GMGBP


def build(recipe: Recipe | str | Path | Mapping[str, Any], registry: Registry | None = None) -> Built:
    """Assemble the components a recipe describes (``recipe`` may be a path, a mapping or a Recipe)."""
    registry = registry or default_registry()
    recipe = load_recipe(recipe, registry)
    return Built(recipe=recipe, registry=registry, generator=build_generator(recipe.model, registry))
