"""Recipe -> built components.  The only place that turns specs into modules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from mgsr.interfaces import Composite, Discriminator, Loss, PartBuilder
from mgsr.kinds import kind_of
from mgsr.model.generator import GMGBP
from mgsr.model.weights import load_weights_into
from mgsr.recipe import ComponentSpec, ModelSpec, Recipe, load_recipe, resolve_spec
from mgsr.registry import Registry, default_registry


def part_builder(registry: Registry) -> PartBuilder:
    """A :class:`~mgsr.interfaces.PartBuilder` over ``registry``: ``build(spec, **arch)`` -> component.

    A spec without a config gets its component's defaults.  Composites (a
    discriminator, a loss) receive this same builder as ``build=`` to build
    the parts their own ``Config`` names.
    """

    def build_part(spec: ComponentSpec, /, **arch: Any) -> Any:
        spec = resolve_spec(spec, registry)
        cls = registry.get(kind_of(spec), spec.type)
        if issubclass(cls, Composite):
            arch["build"] = build_part
        return cls(spec.config, **arch)

    return build_part


def build_generator(spec: ModelSpec, registry: Registry | None = None) -> GMGBP:
    """A G-MGBP generator with the architecture of ``spec``, randomly initialised or loaded from ``spec.weights``."""
    build_part = part_builder(registry or default_registry())
    features, channels = spec.features, spec.channels
    generator = GMGBP(
        channels=channels,
        features=features,
        noise_channels=spec.noise_channels,
        mu=spec.mu,
        analysis=build_part(spec.analysis, channels=features),
        upscaling=build_part(spec.upscaling, channels=2 * features + spec.noise_channels),
        downscaling=build_part(spec.downscaling, channels=features),
        synthesis=build_part(spec.synthesis, channels=features),
        classic_upscaler=build_part(spec.classic_upscaler, channels=channels),
        noise_source=build_part(spec.noise),
    )
    if spec.weights is not None:
        load_weights_into(generator, spec.weights)
    generator.spec = spec
    return generator


@attrs.frozen
class Built:
    """Everything a recipe assembles; the discriminator and losses only when built for training."""

    recipe: Recipe
    registry: Registry
    generator: GMGBP
    discriminator: Discriminator | None = None
    losses: tuple[Loss, ...] = ()


def build(
    recipe: Recipe | str | Path | Mapping[str, Any], registry: Registry | None = None, *, training: bool = False
) -> Built:
    """Assemble the components a recipe describes (``recipe`` may be a path, a mapping or a Recipe).

    ``training=True`` also builds the recipe's discriminator (for images with
    the generator's channels) and its losses.  It is off by default because
    those may need files an upscaling user does not have: the contextual
    loss's VGG-19 weights.
    """
    registry = registry or default_registry()
    recipe = load_recipe(recipe, registry)
    generator = build_generator(recipe.model, registry)
    if not training:
        return Built(recipe=recipe, registry=registry, generator=generator)
    build_part = part_builder(registry)
    discriminator = None
    if recipe.discriminator is not None:
        discriminator = build_part(recipe.discriminator, channels=recipe.model.channels)
    losses = tuple(build_part(spec) for spec in recipe.losses)
    return Built(recipe=recipe, registry=registry, generator=generator, discriminator=discriminator, losses=losses)
