"""Generator weights on disk: our safetensors format, the bundled PIRM-SR models, model cards.

A weights file is self-describing: besides the tensors, its safetensors header
holds the ``[model]`` table that built it (so loading needs no recipe) and a
model card (name, default W, source, licence).  Nothing here unpickles: the
release's ``.model`` files load with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

import attrs
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mgsr.errors import WeightsError
from mgsr.io.atomic import atomic_path
from mgsr.model.card import ModelCard
from mgsr.model.generator import GMGBP
from mgsr.model.state import load_module_state
from mgsr.recipe import ModelSpec, make_converter

#: bundled name -> (file inside mgsr/weights, the authors' noise amplitude W for it)
BUNDLED: Mapping[str, tuple[str, float]] = {
    "pirm-r1": ("pirm-r1.safetensors", 0.0632),
    "pirm-r2": ("pirm-r2.safetensors", 0.275),
    "pirm-r3": ("pirm-r3.safetensors", 1.0),
}

#: the file a training run leaves in its folder, so a run folder works as ``--model``
RUN_GENERATOR_FILE = "generator.safetensors"

MODEL_KEY = "mgsr.model"
CARD_KEY = "mgsr.card"


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
    metadata = {MODEL_KEY: json.dumps(model_table, sort_keys=True)}
    if card is not None:
        metadata[CARD_KEY] = card.to_json()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def write_card(path: str | os.PathLike[str], card: ModelCard) -> Path:
    """Replace the card in the header of the weights file ``path``; tensors and ``[model]`` table unchanged.

    How a measured curve gets into a model's card after training (``mgsr calibrate --curve --write-card``).
    """
    path = Path(path)
    tensors, metadata = read_weights(path)
    if MODEL_KEY not in metadata:
        raise WeightsError(f"{path}: no '{MODEL_KEY}' table in the header; it was not written by mgsr")
    metadata[CARD_KEY] = card.to_json()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file, with errors that name the file."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (a safetensors handle, not a dict: it has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors weights file ({exc})") from None
    return tensors, metadata


def weights_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: the same weights give the same print, however loaded.

    What identifies a model where its name cannot (``runs/X`` and ``runs/X/generator.safetensors`` are one
    model; a run folder retrained in place is another): spandrel recognises the bundled models by it, and a
    calibration file records it (:mod:`mgsr.evaluation.calibration_model`).
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu")
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # reshape(-1): the values in logical order, whatever the memory format (channels-last weights)
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_weights_into(generator: GMGBP, name_or_path: str | os.PathLike[str]) -> None:
    """Load a bundled name / weights file / run folder into an existing generator."""
    path = resolve_weights_path(name_or_path)
    tensors, _ = read_weights(path)
    load_module_state(generator, tensors, str(path))
