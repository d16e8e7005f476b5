"""Reading a training checkpoint file: what both training (resume) and model loading (``--model step-N.pt``)
need, so it lives below both.  Writing, naming and pruning checkpoints is training's (:mod:`mgsr.training.checkpoint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgsr.errors import WeightsError

#: the ``format`` entry every mgsr training checkpoint carries
FORMAT = "mgsr-checkpoint-1"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; any problem is a WeightsError naming the file."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise WeightsError(
            f"{path}: not a loadable checkpoint ({type(exc).__name__}): it is damaged, not a "
            f"PyTorch file, or holds objects other than tensors, which mgsr never unpickles"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an mgsr training checkpoint (format {FORMAT} expected)")
    return data
