"""Loading a state dict into a module, refusing any mismatch with the keys listed (weights and checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mgsr.errors import WeightsError


def state_mismatch(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str | None:
    """A description of how ``state`` fails to fit ``own`` (missing, unexpected, shapes), or None."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))

    def listing(label: str, items: list[str]) -> str:
        more = f", ... ({len(items) - 8} more)" if len(items) > 8 else ""
        return f"{len(items)} {label}: " + ", ".join(items[:8]) + more

    parts = []
    if missing:
        parts.append(listing("missing", missing))
    if unexpected:
        parts.append(listing("unexpected", unexpected))
    if wrong:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong]
        parts.append(listing("shape mismatches", shapes))
    return "; ".join(parts) or None


def load_module_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that refuses any mismatch with a WeightsError listing the keys."""
    problem = state_mismatch(module.state_dict(), state)
    if problem:
        raise WeightsError(f"{source} does not fit this architecture ({problem})")
    module.load_state_dict(dict(state), strict=True)


def require_layout(state: Mapping[str, object], key: str, layout: tuple[str, ...], source: str) -> torch.Tensor:
    """``state[key]`` as a tensor with one dimension per name in ``layout``, else a WeightsError naming both.

    For code that reads sizes out of shapes before any module exists to compare with (spandrel's loader): a
    damaged or foreign file must say which tensor is wrong and what it should be, not fail to unpack a tuple.
    """
    tensor = state[key]
    expected = f"({', '.join(layout)})"
    if not isinstance(tensor, torch.Tensor):
        raise WeightsError(f"{source}: {key} is a {type(tensor).__name__}, expected a tensor of shape {expected}")
    if tensor.dim() != len(layout) or 0 in tensor.shape:
        raise WeightsError(
            f"{source}: {key} has shape {tuple(tensor.shape)}, expected {expected}; the file is damaged or is "
            "not an mgsr G-MGBP model"
        )
    return tensor
