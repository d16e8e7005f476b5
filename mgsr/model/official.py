"""Importing the authors' released ``.model`` files (plain state dicts, loaded with ``weights_only=True``).

The key mapping and the architecture inference are facts read off the release's keys and shapes (see
``../shared/reference/README.md``); nothing here unpickles objects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mgsr.errors import WeightsError
from mgsr.recipe import ModelSpec, structure_model_spec

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
_LAYER_PARTS = {
    "act_1.norm.bias": "act_in.bias",
    "conv_1.weight": "squeeze.weight",
    "act_2.norm.bias": "act_mid.bias",
    "conv_2.weight": "conv.weight",
}
_BLOCK_KEY = re.compile(
    r"^(Analysis|Upscaling|Downscaling|Synthesis)\.(\w+)\."
    r"(dense\.denselayer(\d+)\.(.+)|transition\.(act\.norm\.bias|conv\.weight))$"
)


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
        raise WeightsError(
            f"{path}: cannot be read as a PyTorch state dict ({type(exc).__name__}): it is damaged, "
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
        return {
            "type": "dense",
            "layers": layers,
            "growth": growth,
            "bottleneck": squeeze.shape[0] // growth,
            "kernel_size": conv.shape[-1],
        }

    up_in = state["upscaling.block.layers.0.act_in.bias"].shape[0]
    table = {
        "channels": channels,
        "features": features,
        "noise_channels": up_in - 2 * features,
        "mu": mu,
        "default_noise": default_noise,
        "analysis": block("analysis"),
        "upscaling": block("upscaling"),
        "downscaling": block("downscaling"),
        "synthesis": block("synthesis"),
        "classic_upscaler": {"type": "learned_bicubic", "trainable": True},
        "noise": {"type": "gaussian"},
    }
    return structure_model_spec(table)
