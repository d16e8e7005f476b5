"""``training.compile``: what the step calls for G and D when the recipe asks for ``torch.compile``.

Why static shapes (``dynamic=False``): a step calls the networks at a few fixed sizes (the patch pyramid of
``training.scales``), and by default the second size of a function recompiles it with symbolic sizes.  On a
CPU inductor then still converts convolution inputs to channels-last (mkldnn's layout, chosen for every
graph with a convolution), but AOTAutograd gives the backward the strides those saved inputs had at the
example size; at any other size the backward stops on inductor's stride assertion ("expected size 8==8,
stride 48==768").  One graph per size has exact strides, and on a GPU it is also what inductor plans best
(static shapes, channels-last where its heuristics choose it); the sizes are few, so the compiles are too.

The modules keep their own ``state_dict`` keys and parameters: only the call path is compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def compiled(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` (a module, or its DistributedDataParallel wrapper) through ``torch.compile``, one graph per size."""
    return torch.compile(call, dynamic=False)


def compiled_pair(
    g_call: Callable[..., Any], d_call: Callable[..., Any] | None
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """G's and D's call paths compiled (D absent stays absent)."""
    return compiled(g_call), (compiled(d_call) if d_call is not None else None)
