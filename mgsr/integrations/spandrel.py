"""G-MGBP for spandrel, the loader ComfyUI, chaiNNer and AUTOMATIC1111 use for every upscaler.

``install()`` adds G-MGBP to a spandrel architecture registry the way third-party architecture packages
(spandrel_extra_arches) do, so ``spandrel.ModelLoader().load_from_file("pirm-r3.safetensors")`` returns an
``ImageModelDescriptor`` whose call is :func:`mgsr.upscale_tensor` at the model's W.

Why the architecture is read from tensor names and shapes: spandrel opens a ``.safetensors`` file with
``safetensors.torch.load_file``, which returns the tensors only; mgsr's header (the ``[model]`` table and the
card) never reaches an architecture's ``detect``/``load``, and ComfyUI passes a state dict it loaded itself.
So G-MGBP is detected by the keys of its four modules and classic upscaler, the dense filter blocks' sizes are
read from their weight shapes, and what no weight records (``mu``, the noise source) takes the recipe
defaults.  The bundled PIRM-SR models are recognised by their tensors' SHA-256 and get their own ``[model]``
table and card (name, W); any other file runs at ``noise`` if given, else the recipe default W.

This module sits at the top layer (beside ``serve`` and ``cli``): it imports the model and inference layers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from mgsr.assembly.build import build_generator
from mgsr.assembly.loading import load_generator
from mgsr.errors import MgsrError, WeightsError
from mgsr.inference.core import levels_for, upscale_tensor
from mgsr.model.detail import implied_noise
from mgsr.model.generator import GMGBP
from mgsr.model.state import load_module_state, require_layout
from mgsr.model.weights import BUNDLED, bundled_path, read_weights, weights_fingerprint
from mgsr.recipe import structure_model_spec

try:
    import spandrel
except ImportError:  # pragma: no cover - the extra is documented; the message says how to get it
    raise MgsrError("mgsr.integrations.spandrel needs the spandrel package: pip install 'mgsr[spandrel]'") from None

__all__ = ["ARCH_ID", "GMGBPArchitecture", "bundled_path", "infer_model_table", "install", "is_gmgbp"]

ARCH_ID = "G-MGBP"
#: keys every G-MGBP state dict has: the four modules' frames and the classic upscaler
_FRAME_KEYS = (
    "analysis.conv_in.weight",
    "upscaling.conv.weight",
    "downscaling.conv.weight",
    "synthesis.conv_out.weight",
    "classic_upscaler.weight",
)
#: the modules whose filter block sizes are read from the weights
_MODULES = ("analysis", "upscaling", "downscaling", "synthesis")
#: a convolution weight's dimensions, and how errors name the state dict
_CONV = ("out", "in", "kh", "kw")
_SOURCE = "the G-MGBP state dict given to spandrel"


def is_gmgbp(state: Mapping[str, object]) -> bool:
    """spandrel's ``detect``: whether a (canonicalised) state dict has G-MGBP's module keys."""
    return all(key in state for key in _FRAME_KEYS)


def _dense_table(state: Mapping[str, torch.Tensor], module: str) -> dict[str, object]:
    """A ``dense`` filter block's table from its weights: layer count, growth, bottleneck, kernel size."""
    prefix = f"{module}.block.layers."
    layers = {key[len(prefix) :].split(".", 1)[0] for key in state if key.startswith(prefix)}
    first = f"{prefix}0."
    if not layers or f"{first}conv.weight" not in state or f"{first}squeeze.weight" not in state:
        raise WeightsError(
            f"{module}'s filter block is not mgsr's 'dense' block, the only one whose sizes can "
            "be read from the weights; run this file with mgsr itself (mgsr upscale --model FILE) "
            "or export it to ONNX (mgsr export)"
        )
    conv = require_layout(state, f"{first}conv.weight", _CONV, _SOURCE)
    squeeze = require_layout(state, f"{first}squeeze.weight", ("bottleneck x growth", "in", "1", "1"), _SOURCE)
    growth = int(conv.shape[0])
    return {
        "type": "dense",
        "layers": len(layers),
        "growth": growth,
        "bottleneck": int(squeeze.shape[0]) // growth,
        "kernel_size": int(conv.shape[-1]),
    }


def infer_model_table(state: Mapping[str, torch.Tensor]) -> dict[str, object]:
    """The ``[model]`` table of a G-MGBP state dict, as far as its weights tell (see the module docstring).

    ``mu`` and ``default_noise`` are left to the recipe defaults; the noise source is Gaussian.
    """
    conv_in = require_layout(state, "analysis.conv_in.weight", ("features", "channels", "kh", "kw"), _SOURCE)
    upscaling = require_layout(state, "upscaling.conv.weight", ("2 x features + noise channels", *_CONV[1:]), _SOURCE)
    features, channels = (int(n) for n in conv_in.shape[:2])
    table: dict[str, object] = {
        "channels": channels,
        "features": features,
        "noise_channels": int(upscaling.shape[0]) - 2 * features,
        "classic_upscaler": {"type": "learned_bicubic"},
        "noise": {"type": "gaussian"},
    }
    table.update({module: _dense_table(state, module) for module in _MODULES})
    return table


def _fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """The weights' SHA-256 (:func:`mgsr.model.weights.weights_fingerprint`, also what calibration files record)."""
    return weights_fingerprint(state)


@functools.cache
def _bundled_fingerprints() -> dict[str, str]:
    """fingerprint -> bundled name (the files are read once per process: 1.1 MB each)."""
    return {_fingerprint(read_weights(bundled_path(name))[0]): name for name in BUNDLED}


def _generator_for(state: Mapping[str, torch.Tensor]) -> GMGBP:
    """The bundled generator (with its card) when ``state`` is one of them, else one built from the weights."""
    name = _bundled_fingerprints().get(_fingerprint(state))
    if name is not None:
        return load_generator(name)
    table = infer_model_table(state)
    try:
        spec = structure_model_spec(table)
    except MgsrError as exc:
        raise WeightsError(f"cannot describe this G-MGBP state dict as an mgsr model: {exc}") from None
    generator = build_generator(spec)
    generator.spec = spec
    load_module_state(generator, state, _SOURCE)
    return generator.eval()


def _call(model: GMGBP, image: torch.Tensor, *, scale: int, noise: float) -> torch.Tensor:
    """The descriptor's call: mgsr's inference core (reflection pad, position-seeded noise, crop)."""
    sr = upscale_tensor(model, image, scale=scale, noise_amp=noise)
    assert sr is not None, "upscale_tensor without a sink returns the assembled output"
    return sr


class GMGBPArchitecture(spandrel.Architecture[GMGBP]):
    """G-MGBP as a spandrel architecture; one output ``scale`` (2, 4, 8, ...) and optionally one W per install.

    One set of G-MGBP weights upscales by any power of two; spandrel's descriptor has one ``scale``, so it is
    fixed here (default 4).  ``noise`` overrides every model's W (None: the card's, else the recipe default).
    """

    def __init__(self, scale: int = 4, noise: float | None = None) -> None:
        levels_for(scale)  # a ValueError naming the allowed scales
        if noise is not None and not noise >= 0:
            raise ValueError(f"noise (W) must be >= 0, got {noise}")
        super().__init__(id=ARCH_ID, name="G-MGBP (mgsr)", detect=is_gmgbp)
        self.scale = scale
        self.noise = noise

    def load(self, state_dict: Mapping[str, torch.Tensor]) -> spandrel.ImageModelDescriptor[GMGBP]:
        generator = _generator_for(state_dict)
        noise = implied_noise(generator) if self.noise is None else self.noise
        name = generator.card.name if generator.card is not None else f"{generator.features}nf"
        return self.describe(generator, noise, name)

    def describe(self, generator: GMGBP, noise: float, name: str) -> spandrel.ImageModelDescriptor[GMGBP]:
        """spandrel's descriptor of ``generator`` run at W = ``noise`` (the one home of these fields: the
        ComfyUI pack's folder architecture describes its files with it too)."""
        return spandrel.ImageModelDescriptor(
            generator,
            dict(generator.state_dict()),
            architecture=self,
            purpose="SR",
            tags=[name, f"W={noise:g}"],
            supports_half=False,
            supports_bfloat16=False,
            scale=self.scale,
            input_channels=generator.channels,
            output_channels=generator.channels,
            # external tiles would restart the position-seeded noise at every tile edge when W > 0
            tiling=spandrel.ModelTiling.SUPPORTED if noise == 0 else spandrel.ModelTiling.DISCOURAGED,
            call_fn=functools.partial(_call, scale=self.scale, noise=noise),
        )


def install(registry: spandrel.ArchRegistry | None = None, *, scale: int = 4, noise: float | None = None) -> None:
    """Add G-MGBP to ``registry`` (default: spandrel's ``MAIN_REGISTRY``, which ``ModelLoader()`` uses).

    Installing again with the same settings does nothing; with other settings it is an error, because a
    registry holds one G-MGBP: for a second scale use a copy (``spandrel.MAIN_REGISTRY.copy()``) and
    ``ModelLoader(registry=copy)``.
    """
    registry = spandrel.MAIN_REGISTRY if registry is None else registry
    existing = registry.get(ARCH_ID)
    if existing is not None:
        arch = existing.architecture
        if isinstance(arch, GMGBPArchitecture) and (arch.scale, arch.noise) == (scale, noise):
            return
        raise MgsrError(
            f"this spandrel registry already has G-MGBP (scale {getattr(arch, 'scale', '?')}, W "
            f"{getattr(arch, 'noise', '?')}); install scale {scale} into a copy: "
            "registry = spandrel.MAIN_REGISTRY.copy(), then ModelLoader(registry=registry)"
        )
    registry.add(spandrel.ArchSupport.from_architecture(GMGBPArchitecture(scale, noise)))
