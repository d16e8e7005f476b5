"""A weights file, bundled name, run folder or training checkpoint -> a ready generator, and a cache of them.

It builds the architecture a file describes (:mod:`.build`), then loads the weights (:mod:`mgsr.model.weights`),
so it belongs to the assembly layer with the builder, above the model.  A loaded generator carries its ``spec`` and
``card`` as declared attributes of :class:`~mgsr.model.generator.GMGBP`.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import torch

from mgsr.assembly.build import build_generator
from mgsr.errors import RecipeError, WeightsError
from mgsr.model.checkpoint_file import load_checkpoint
from mgsr.model.generator import GMGBP
from mgsr.model.state import load_module_state
from mgsr.model.weights import BUNDLED, CARD_KEY, MODEL_KEY, ModelCard, read_weights, resolve_weights_path
from mgsr.recipe import structure_model_spec
from mgsr.registry import Registry


def load_generator(
    name_or_path: str | os.PathLike[str], registry: Registry | None = None, device: str | torch.device = "cpu"
) -> GMGBP:
    """Build the generator a weights file describes and load it, in eval mode, its weights channels-last.

    ``.spec`` and ``.card`` hold its architecture and card.  Channels-last lets oneDNN and cuDNN pick faster
    convolutions (1.8x on a 2-core CPU, same values to rounding); it is set here, on a model we own, never
    on a caller's model during inference.
    """
    path = resolve_weights_path(name_or_path)
    if path.suffix == ".pt":  # a training checkpoint: its resolved recipe describes the model
        tensors, metadata = _from_checkpoint(path)
    else:
        tensors, metadata = read_weights(path)
    if MODEL_KEY not in metadata:
        raise WeightsError(f"{path}: no '{MODEL_KEY}' table in the header; it was not written by mgsr")
    try:
        spec = structure_model_spec(json.loads(metadata[MODEL_KEY]), registry)
    except (json.JSONDecodeError, RecipeError) as exc:
        raise WeightsError(f"{path}: its model description is invalid: {exc}") from None
    generator = build_generator(spec, registry)
    load_module_state(generator, tensors, str(path))
    try:
        card_text = metadata.get(CARD_KEY, "{}")
        generator.card = ModelCard.from_json(card_text, name=path.stem, default_noise=spec.default_noise)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:  # ValueError: json's errors too
        raise WeightsError(f"{path}: its model card is invalid ({exc})") from None
    return generator.to(device, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]  # Module.to takes memory_format; its stubs omit it


def _from_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Generator tensors and a weights-file-like header from a training checkpoint (``step-*.pt``)."""
    data = load_checkpoint(path)
    try:
        model = json.loads(data["recipe"])["model"]
        if not isinstance(data["generator"], dict) or not isinstance(model, dict):
            raise TypeError("no generator state or model table")
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: checkpoint without a readable recipe and generator ({exc})") from None
    card = ModelCard(
        name=f"{path.parent.parent.name} {path.stem}",
        default_noise=model.get("default_noise", 1.0),
        source=f"training checkpoint {path}",
    )
    return data["generator"], {MODEL_KEY: json.dumps(model), CARD_KEY: card.to_json()}


def pretrained(name: str, device: str | torch.device = "cpu") -> GMGBP:
    """The authors' PIRM-SR 2018 generator ``pirm-r1``, ``pirm-r2`` or ``pirm-r3`` (LGPL-3.0 weights).

    ``.card.default_noise`` is the W the authors used with it (0.0632, 0.275, 1.0).
    """
    if name not in BUNDLED:
        raise WeightsError(f"unknown pretrained model '{name}'; available: {', '.join(BUNDLED)}")
    return load_generator(name, device=device)


class ModelCache:
    """The last few loaded generators by (name or path, device), so repeated calls do not reload the file.

    Explicit rather than a hidden ``lru_cache``: :func:`mgsr.upscale` and ``mgsr serve`` share
    :data:`MODELS`; a caller that wants its own lifetime makes its own cache or passes a GMGBP.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, str], GMGBP] = OrderedDict()

    def get(self, name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> GMGBP:
        key = (str(name_or_path), str(torch.device(device)))
        if key in self._models:
            self._models.move_to_end(key)
        else:
            self._models[key] = load_generator(name_or_path, device=device)
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return self._models[key]

    def clear(self) -> None:
        self._models.clear()


#: The process's shared cache of loaded models (see :class:`ModelCache`).
MODELS = ModelCache()


def resolve_model(model: str | os.PathLike[str] | GMGBP, device: str | torch.device = "cpu") -> GMGBP:
    """A GMGBP as given, or the cached generator of a bundled name, weights file or run folder."""
    return model if isinstance(model, GMGBP) else MODELS.get(model, device)
