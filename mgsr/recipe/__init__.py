"""Recipes: TOML files structured into frozen attrs classes with a strict cattrs converter.

Every component table names its ``type`` and the rest of the table is that
component's ``Config``, looked up in the Registry while structuring.  Extra keys
are refused, scalars are not coerced (plain cattrs turns ``"false"`` into
``True``), and every error carries its key path and the file name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.v import format_exception, transform_error

from mgsr.errors import MgsrError, RecipeError
from mgsr.interfaces import level_counts
from mgsr.kinds import kind_of
from mgsr.number_formats import PRECISIONS
from mgsr.recipe.tables import apply_overrides, read_recipe_table
from mgsr.registry import Registry, default_registry
from mgsr.specs import (
    ClassicUpscalerSpec,
    ComponentSpec,
    DiscriminatorSpec,
    FilterBlockSpec,
    LossSpec,
    NoiseSourceSpec,
)


@attrs.frozen
class ModelSpec:
    """The G-MGBP generator: sizes, the four modules' filter blocks, upscaler and noise."""

    analysis: FilterBlockSpec
    upscaling: FilterBlockSpec
    downscaling: FilterBlockSpec
    synthesis: FilterBlockSpec
    classic_upscaler: ClassicUpscalerSpec
    noise: NoiseSourceSpec
    channels: int = attrs.field(default=3, validator=attrs.validators.gt(0))
    features: int = attrs.field(default=48, validator=attrs.validators.gt(0))
    noise_channels: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    mu: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: W used when a caller gives none (recorded with trained weights).
    default_noise: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: initial weights: a bundled name (``pirm-r3``) or a ``.safetensors`` path; none = random init.
    weights: str | None = None


@attrs.frozen
class DataSpec:
    """Training data: HR image folders, patch size, optional resize, workers, validation images.

    Folder paths are relative to the current directory; ``samples:train`` and
    ``samples:val`` name the small image sets bundled with mgsr.
    """

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    patch_size: int = attrs.field(default=128, validator=attrs.validators.gt(0))
    #: resize every image to this mean size first (the paper: 0.29); none keeps sizes
    target_megapixels: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    #: random flips and 90-degree rotations of the patches
    augment: bool = True
    #: data-loading worker processes (0 loads in the training process)
    workers: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: validation images are cut to at most this many pixels per side, at their centre; none (the default,
    #: as in the paper's recipes): whole images, scored as ``mgsr eval`` scores them
    val_crop: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    #: with ``val`` empty, this many training images (at most 10 %, never all) are held out and validated on,
    #: so a run without its own validation set still shows numbers and samples; 0 disables
    holdout: int = attrs.field(default=10, validator=attrs.validators.ge(0))


def _steps_or_epochs(table: str):
    """``epochs`` replaces ``steps``: a recipe sets one of them (resolved in mgsr.training.schedule)."""

    def check(spec: Any, _field: attrs.Attribute, epochs: int | None) -> None:
        if epochs is not None and epochs <= 0:
            raise ValueError(f"{table}.epochs must be > 0, got {epochs}")
        if epochs is not None and spec.steps:
            raise ValueError(
                f"{table}.steps = {spec.steps} and {table}.epochs = {epochs} are both set; keep one "
                f"(--set {table}.steps=0 counts epochs, --set {table}.epochs=none counts steps)"
            )

    return check


def _trained_scale(spec: Any, _field: attrs.Attribute, scale: int | None) -> None:
    """Validation upscales by a factor the generator was trained for (the default is in mgsr.training.schedule)."""
    if scale is None:
        return
    trained = [1 << levels for levels in spec.scales if levels > 0]
    if scale not in trained:
        raise ValueError(
            f"training.validate_scale = {scale} is not a trained scale: one of {trained} "
            f"(training.scales = {list(spec.scales)})"
        )


#: ``training.export``: which weights a run exports (see mgsr.training.selection)
EXPORT_CHOICES = {
    "last": "the weights of the last step",
    "best_knob": "the validated weights with the lowest NIQE(W=1) - NIQE(W=0), without a grid",
}


def _one_of(name: str, value: str, choices: Mapping[str, Any]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


@attrs.frozen
class TrainingSpec:
    """Optimisation: Adam, lr 1e-3 with square-root decay, batch 16 (section 6.1), scales 2x/4x/8x (section 5).

    The learning rate at step t is ``lr / sqrt(1 + t / lr_decay_steps)``: the paper says only "square root
    decay", so this form and the shipped recipes' ``lr_decay_steps`` and ``steps`` are ours (it gives no step
    counts).
    """

    steps: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: train for this many epochs instead of ``steps`` (which must then be 0).  An epoch is
    #: ceil(training images / batch_size) steps: one random patch of every image, in whole batches.
    epochs: int | None = attrs.field(default=None, validator=_steps_or_epochs("training"))
    #: validate at the end of every N-th epoch; when set it replaces ``validate_every`` (steps)
    validate_every_epochs: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    #: upscaling factor of validation (2, 4 or 8, a trained scale); none: 4 when the recipe trains 4x
    #: (the PIRM-SR scale the paper reports), else the largest trained scale
    validate_scale: int | None = attrs.field(default=None, validator=_trained_scale)
    #: metrics scored at each validation beyond the protocol's and ``l1``, e.g. ["lpips"] (its weights are
    #: downloaded on first use); the names of ``mgsr eval --metric``
    validate_metrics: tuple[str, ...] = ()
    batch_size: int = attrs.field(default=16, validator=attrs.validators.gt(0))
    lr: float = attrs.field(default=1e-3, validator=attrs.validators.gt(0))
    discriminator_lr: float = attrs.field(default=1e-3, validator=attrs.validators.gt(0))
    lr_decay_steps: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    adam_betas: tuple[float, ...] = (0.9, 0.999)
    seed: int = 0
    #: level counts L trained at every step (1 = 2x, 2 = 4x, 3 = 8x)
    scales: tuple[int, ...] = attrs.field(default=(1, 2, 3), validator=level_counts)
    log_every: int = attrs.field(default=10, validator=attrs.validators.gt(0))
    validate_every: int = attrs.field(default=500, validator=attrs.validators.gt(0))
    sample_every: int = attrs.field(default=500, validator=attrs.validators.gt(0))
    checkpoint_every: int = attrs.field(default=500, validator=attrs.validators.gt(0))
    keep_checkpoints: int = attrs.field(default=3, validator=attrs.validators.gt(0))
    #: torch.use_deterministic_algorithms: bit-exact resume at some speed cost
    deterministic: bool = False
    #: autocast of the step: "fp32" (off), "bf16" or "fp16" (with a gradient scaler); see mgsr.training.mixed_precision
    precision: str = attrs.field(default="fp32", validator=lambda _, a, v: _one_of(a.name, v, PRECISIONS))
    #: G, D, the losses' networks and the batches in channels-last (NHWC) memory format
    channels_last: bool = False
    #: torch.compile G and D (the first steps of each scale compile; needs a C++ compiler on CPU)
    compile: bool = False
    #: the run's first N steps train only the discriminator (G frozen, producing fakes): a fresh D added to
    #: trained weights learns what they produce before its gradient reaches G.  They count in ``steps``.
    discriminator_warmup_steps: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: start an adversarial objective from random weights, with neither a [pretrain] stage nor
    #: model.weights (the quickstart does; the paper pre-trains with L1 first, and without it the classic
    #: upscaler's phases can split into a period-2 grid)
    from_scratch: bool = False
    #: which weights the run exports: "last", or "best_knob", the validated ones with the lowest
    #: NIQE(W=1) - NIQE(W=0) and no grid (see mgsr.training.selection: a GAN's knob oscillates between validations)
    export: str = attrs.field(
        default="last", validator=lambda _, a, v: _one_of(f"training.{a.name}", v, EXPORT_CHOICES)
    )


def _warmup_needs_discriminator(recipe: Any, _field: attrs.Attribute, training: TrainingSpec) -> None:
    if training.discriminator_warmup_steps and recipe.discriminator is None:
        raise ValueError(
            f"training.discriminator_warmup_steps = {training.discriminator_warmup_steps} warms up a "
            f"discriminator, but the recipe has no [discriminator] table: add one or set it to 0"
        )


def _optional_gt0(_spec: Any, field: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"pretrain.{field.name} must be > 0, got {value}")


@attrs.frozen
class PretrainSpec:
    """The pre-training stage (section 6.1): "We pre-trained the network with W = 0 and only L1 loss, and used
    [it] as initial setting for our overall loss (7)."

    ``mgsr train`` runs it before the recipe's own objective, in ``RUN_DIR/pretrain``, and starts the
    objective from its result; it is skipped when ``model.weights`` gives the starting point.  Model,
    data, batch, scales, precision and the validation schedule are the recipe's; what differs is here.
    """

    #: the stage's objective: its own ``[[pretrain.losses]]`` tables (the paper: ``l1`` at W = 0)
    losses: tuple[LossSpec, ...] = ()
    steps: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    epochs: int | None = attrs.field(default=None, validator=_steps_or_epochs("pretrain"))
    #: none: training.lr and training.lr_decay_steps
    lr: float | None = attrs.field(default=None, validator=_optional_gt0)
    lr_decay_steps: int | None = attrs.field(default=None, validator=_optional_gt0)

    def __attrs_post_init__(self) -> None:
        if not self.steps and self.epochs is None:
            raise ValueError(
                "pretrain needs steps or epochs (> 0); to train without pre-training remove the "
                "[pretrain] table or give model.weights"
            )
        if not self.losses:
            raise ValueError(
                'pretrain has no losses: add [[pretrain.losses]] tables (the paper: type = "l1", noise = [0.0])'
            )


@attrs.frozen
class Recipe:
    """A whole recipe: the generator and, for training, discriminator, losses, data and schedule."""

    model: ModelSpec
    discriminator: DiscriminatorSpec | None = None
    losses: tuple[LossSpec, ...] = ()
    data: DataSpec = DataSpec()
    training: TrainingSpec = attrs.field(default=TrainingSpec(), validator=_warmup_needs_discriminator)
    #: the pre-training stage run before this objective (see :class:`PretrainSpec`); none: no such stage
    pretrain: PretrainSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe as plain TOML-able data (defaults filled in, no ``None``)."""
        return _drop_none(make_converter(None).unstructure(self))

    def digest(self) -> str:
        """A SHA-256 of the resolved recipe, stored with checkpoints and results."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def _strict(expected: type, name: str):
    def hook(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) and expected is not bool:
            raise TypeError(f"expected {name}, got a boolean ({value!r})")
        if expected is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, expected):
            raise TypeError(f"expected {name}, got {type(value).__name__} ({value!r})")
        return value

    return hook


def _strict_tuple_factory(type_: Any, converter: cattrs.Converter):
    inner = homogenous_tuple_structure_factory(type_, converter)

    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__} ({value!r})")
        return inner(value, _type)

    return hook


def _is_homogeneous_tuple(type_: Any) -> bool:
    return get_origin(type_) is tuple and is_sequence(type_) and len(get_args(type_)) == 2


def resolve_spec(spec: ComponentSpec, registry: Registry) -> ComponentSpec:
    """``spec`` with its config filled in: ``None`` becomes the named component's defaults, recursively."""
    config = spec.config if spec.config is not None else registry.get(kind_of(spec), spec.type).Config()
    config = resolve_parts(config, registry)
    return spec if config is spec.config else attrs.evolve(spec, config=config)


def resolve_parts(config: Any, registry: Registry) -> Any:
    """``config`` with every part it names (a ``ComponentSpec`` field) resolved by :func:`resolve_spec`.

    A plugin's ``Config`` may default a part to ``FilterBlockSpec("dense")``
    without its settings; resolving makes the loaded recipe show them all.
    """
    if not attrs.has(type(config)):
        return config
    changes = {}
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        if isinstance(value, ComponentSpec):
            resolved = resolve_spec(value, registry)
            if resolved is not value:
                changes[field.alias] = resolved
    return attrs.evolve(config, **changes) if changes else config


def make_converter(registry: Registry | None) -> cattrs.Converter:
    """A converter that refuses extra keys and coercions and resolves component tables in ``registry``."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp, name in ((int, "an integer"), (float, "a number"), (str, "a string"), (bool, "true or false")):
        conv.register_structure_hook(tp, _strict(tp, name))
    conv.register_structure_hook_factory(_is_homogeneous_tuple, lambda t: _strict_tuple_factory(t, conv))

    def structure_component(value: Any, spec_type: type[ComponentSpec]) -> ComponentSpec:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a table with a 'type' key, got {type(value).__name__} ({value!r})")
        if registry is None:
            raise RecipeError("internal: component tables need a registry to be structured")
        kind = kind_of(spec_type)
        if "type" not in value:
            raise RecipeError(f"missing 'type' of the {kind}; one of: {', '.join(registry.names(kind))}")
        name = value["type"]
        if not isinstance(name, str):
            raise TypeError(f"'type' must be a string, got {type(name).__name__} ({name!r})")
        cls = registry.get(kind, name)
        options = {k: v for k, v in value.items() if k != "type"}
        return spec_type(type=name, config=resolve_parts(conv.structure(options, cls.Config), registry))

    def unstructure_component(spec: ComponentSpec) -> dict[str, Any]:
        config = {} if spec.config is None else conv.unstructure(spec.config)
        return {"type": spec.type, **config}

    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, ComponentSpec), structure_component
    )
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, ComponentSpec), unstructure_component
    )
    return conv


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, (MgsrError, TypeError, ValueError)) and not isinstance(exc, KeyError):
        return str(exc)
    return format_exception(exc, type_)


def load_recipe(
    source: str | Path | Mapping[str, Any] | Recipe,
    registry: Registry | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Recipe:
    """Structure a recipe from a TOML file path or an already-parsed mapping.

    ``overrides`` are ``key.path=value`` strings applied before structuring.
    Raises :class:`RecipeError` listing every problem as ``message @ $.key.path``,
    with the file name when there is one.
    """
    if isinstance(source, Recipe):
        return source
    where = "recipe"
    if isinstance(source, Mapping):
        data: Any = source
    else:
        where = f"recipe {source}"
        data = read_recipe_table(source)
    if overrides:
        data = apply_overrides(data, overrides, where)
    registry = registry or default_registry()
    try:
        return make_converter(registry).structure(data, Recipe)
    except (ClassValidationError, IterableValidationError) as exc:
        lines = transform_error(exc, path="$", format_exception=_format)
        raise RecipeError(f"invalid {where}:\n  " + "\n  ".join(lines)) from None
    except (MgsrError, TypeError, ValueError) as exc:
        raise RecipeError(f"invalid {where}: {exc}") from None


def structure_model_spec(data: Mapping[str, Any], registry: Registry | None = None) -> ModelSpec:
    """Structure a ``[model]`` table on its own (weights files carry one in their metadata)."""
    recipe = load_recipe({"model": dict(data)}, registry)
    return recipe.model
