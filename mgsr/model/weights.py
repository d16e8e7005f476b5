"""Generator weights on disk: our safetensors format, the bundled PIRM-SR models, and the release's importer.

A weights file is self-describing: besides the tensors, its safetensors header
holds the ``[model]`` table that built it (so loading needs no recipe) and a
model card (name, default W, source, licence).  Nothing here unpickles: the
release's ``.model`` files load with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mgsr.io.atomic import atomic_path
from mgsr.training.checkpoint import load_module_state
from mgsr.errors import RecipeError, WeightsError
from mgsr.model.generator import GMGBP
from mgsr.recipe import ModelSpec, make_converter, structure_model_spec
from mgsr.registry import Registry

#: bundled name -> (file inside mgsr/weights, the authors' noise amplitude W for it)
BUNDLED: Mapping[str, tuple[str, float]] = {
    "pirm-r1": ("pirm-r1.safetensors", 0.0632),
    "pirm-r2": ("pirm-r2.safetensors", 0.275),
    "pirm-r3": ("pirm-r3.safetensors", 1.0),
}

#: the file a training run leaves in its folder, so a run folder works as ``--model``
RUN_GENERATOR_FILE = "generator.safetensors"

_MODEL_KEY = "mgsr.model"
_CARD_KEY = "mgsr.card"


@attrs.frozen
class ModelCard:
    """What a user should know about a set of weights."""

    name: str
    default_noise: float
    source: str = ""
    license: str = ""


def bundled_path(name: str) -> Path:
    return Path(str(files("mgsr.weights").joinpath(BUNDLED[name][0])))


def resolve_weights_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A bundled name, a ``.safetensors`` file, a training checkpoint ``.pt`` or a run folder -> the file path."""
    key = str(name_or_path)
    if key in BUNDLED:
        return bundled_path(key)
    path = Path(key)
    if path.is_dir():
        candidate = path / RUN_GENERATOR_FILE
        if not candidate.is_file():
            raise WeightsError(f"{path} is a folder without {RUN_GENERATOR_FILE}; give a weights file or a run folder")
        return candidate
    if path.is_file():
        return path
    raise WeightsError(
        f"unknown model '{key}': use one of {', '.join(BUNDLED)}, a .safetensors file or a training run folder"
    )


def save_generator(
    path: str | os.PathLike[str], generator: GMGBP, spec: ModelSpec, card: ModelCard | None = None
) -> Path:
    """Write ``generator``'s weights with its ``[model]`` table and card, atomically (temp file, then rename)."""
    return save_state_dict(path, generator.state_dict(), spec, card)


def save_state_dict(
    path: str | os.PathLike[str], state: Mapping[str, torch.Tensor], spec: ModelSpec, card: ModelCard | None = None
) -> Path:
    path = Path(path)
    model_table = make_converter(None).unstructure(attrs.evolve(spec, weights=None))
    model_table.pop("weights", None)
    metadata = {_MODEL_KEY: json.dumps(model_table, sort_keys=True)}
    if card is not None:
        metadata[_CARD_KEY] = json.dumps(attrs.asdict(card), sort_keys=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file, with errors that name the file."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors weights file ({exc})") from None
    return tensors, metadata


def load_weights_into(generator: GMGBP, name_or_path: str | os.PathLike[str]) -> None:
    """Load a bundled name / weights file / run folder into an existing generator."""
    path = resolve_weights_path(name_or_path)
    tensors, _ = read_weights(path)
    load_module_state(generator, tensors, str(path))


def load_generator(
    name_or_path: str | os.PathLike[str], registry: Registry | None = None, device: str | torch.device = "cpu"
) -> GMGBP:
    """Build the generator a weights file describes and load it, in eval mode; ``.card`` holds its card."""
    from mgsr.build import build_generator

    path = resolve_weights_path(name_or_path)
    if path.suffix == ".pt":  # a training checkpoint: its resolved recipe describes the model
        tensors, metadata = _from_checkpoint(path)
    else:
        tensors, metadata = read_weights(path)
    if _MODEL_KEY not in metadata:
        raise WeightsError(f"{path}: no '{_MODEL_KEY}' table in the header; it was not written by mgsr")
    try:
        spec = structure_model_spec(json.loads(metadata[_MODEL_KEY]), registry)
    except (json.JSONDecodeError, RecipeError) as exc:
        raise WeightsError(f"{path}: its model description is invalid: {exc}") from None
    generator = build_generator(spec, registry)
    load_module_state(generator, tensors, str(path))
    try:
        card_data = json.loads(metadata.get(_CARD_KEY, "{}"))
        generator.card = ModelCard(
            name=str(card_data.get("name", path.stem)),
            default_noise=float(card_data.get("default_noise", spec.default_noise)),
            source=str(card_data.get("source", "")),
            license=str(card_data.get("license", "")),
        )
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: its model card is invalid ({exc})") from None
    generator.spec = spec
    return generator.to(device).eval()


def _from_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Generator tensors and a weights-file-like header from a training checkpoint (``step-*.pt``)."""
    from mgsr.training.checkpoint import load_checkpoint

    data = load_checkpoint(path)
    try:
        model = json.loads(data["recipe"])["model"]
        if not isinstance(data["generator"], dict) or not isinstance(model, dict):
            raise TypeError("no generator state or model table")
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: checkpoint without a readable recipe and generator ({exc})") from None
    card = {"name": f"{path.parent.parent.name} {path.stem}", "default_noise": model.get("default_noise", 1.0),
            "source": f"training checkpoint {path}"}
    return data["generator"], {_MODEL_KEY: json.dumps(model), _CARD_KEY: json.dumps(card)}


def pretrained(name: str, device: str | torch.device = "cpu") -> GMGBP:
    """The authors' PIRM-SR 2018 generator ``pirm-r1``, ``pirm-r2`` or ``pirm-r3`` (LGPL-3.0 weights).

    ``.card.default_noise`` is the W the authors used with it (0.0632, 0.275, 1.0).
    """
    if name not in BUNDLED:
        raise WeightsError(f"unknown pretrained model '{name}'; available: {', '.join(BUNDLED)}")
    return load_generator(name, device=device)


# --- importer for the authors' release -------------------------------------------------------------

_MODULES = {"Analysis": "analysis", "Upscaling": "upscaling", "Downscaling": "downscaling", "Synthesis": "synthesis"}
_BLOCKS = {"Analysis": "block", "Upscaling": "pre_up", "Downscaling": "post_down", "Synthesis": "block"}
_SINGLE = {
    "ClassicUpscale.weight": "classic_upscaler.weight",
    "Analysis.conv1.weight": "analysis.conv_in.weight",
    "Upscaling.act_up.norm.bias": "upscaling.act.bias",
    "Upscaling.conv_up.weight": "upscaling.conv.weight",
    "Downscaling.conv_down.weight": "downscaling.conv.weight",
    "Synthesis.act4.norm.bias": "synthesis.act.bias",
    "Synthesis.conv4.weight": "synthesis.conv_out.weight",
    "Synthesis.conv4.bias": "synthesis.conv_out.bias",
}
_LAYER_PARTS = {"act_1.norm.bias": "act_in.bias", "conv_1.weight": "squeeze.weight",
                "act_2.norm.bias": "act_mid.bias", "conv_2.weight": "conv.weight"}
_BLOCK_KEY = re.compile(r"^(Analysis|Upscaling|Downscaling|Synthesis)\.(\w+)\.(dense\.denselayer(\d+)\.(.+)|transition\.(act\.norm\.bias|conv\.weight))$")


def official_key(key: str) -> str | None:
    """Our state-dict key for a key of the release, or None when the key is not part of G-MGBP."""
    if key in _SINGLE:
        return _SINGLE[key]
    m = _BLOCK_KEY.match(key)
    if not m or m.group(2) != _BLOCKS[m.group(1)]:
        return None
    prefix = f"{_MODULES[m.group(1)]}.block"
    if m.group(4) is not None:
        part = _LAYER_PARTS.get(m.group(5))
        return None if part is None else f"{prefix}.layers.{int(m.group(4)) - 1}.{part}"
    return f"{prefix}.transition_act.bias" if m.group(6).startswith("act") else f"{prefix}.transition.weight"


def import_official(
    path: str | os.PathLike[str], *, mu: int = 2, default_noise: float = 1.0
) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    """Read a released ``.model`` state dict (``weights_only=True``) into our key layout and infer its ModelSpec.

    The release does not store mu (2 at inference) nor W; pass them.
    """
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: cannot be read as a PyTorch state dict ({type(exc).__name__}): it is damaged, "
                           f"not a PyTorch file, or holds objects other than tensors, which mgsr never unpickles"
                           ) from None
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors")
    state, unknown = {}, []
    for key, tensor in raw.items():
        ours = official_key(key)
        if ours is None:
            unknown.append(key)
        else:
            state[ours] = tensor.clone()
    if unknown:
        raise WeightsError(f"{path}: keys that are not part of the released G-MGBP: {', '.join(unknown[:8])}")
    try:
        spec = _infer_spec(state, mu=mu, default_noise=default_noise)
    except KeyError as exc:
        raise WeightsError(f"{path}: incomplete G-MGBP state dict, no {exc.args[0]}") from None
    return spec, state


def _infer_spec(state: Mapping[str, torch.Tensor], *, mu: int, default_noise: float) -> ModelSpec:
    channels = state["classic_upscaler.weight"].shape[0]
    features = state["analysis.conv_in.weight"].shape[0]

    def block(module: str) -> dict[str, Any]:
        layers = sum(1 for k in state if k.startswith(f"{module}.block.layers.") and k.endswith(".conv.weight"))
        conv = state[f"{module}.block.layers.0.conv.weight"]
        squeeze = state[f"{module}.block.layers.0.squeeze.weight"]
        growth = conv.shape[0]
        return {"type": "dense", "layers": layers, "growth": growth,
                "bottleneck": squeeze.shape[0] // growth, "kernel_size": conv.shape[-1]}

    up_in = state["upscaling.block.layers.0.act_in.bias"].shape[0]
    table = {
        "channels": channels, "features": features, "noise_channels": up_in - 2 * features, "mu": mu,
        "default_noise": default_noise,
        "analysis": block("analysis"), "upscaling": block("upscaling"),
        "downscaling": block("downscaling"), "synthesis": block("synthesis"),
        "classic_upscaler": {"type": "learned_bicubic", "trainable": True},
        "noise": {"type": "gaussian"},
    }
    return structure_model_spec(table)
