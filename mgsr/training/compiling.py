"""``training.compile``: what the step calls for G and D when the recipe asks for ``torch.compile``.

Why inductor's layout optimisation is off: a step calls the networks at every size of the patch pyramid
(``training.scales``), so the second size of a function recompiles it with symbolic sizes (one graph for
all the sizes that follow, instead of one compile per size).  AOTAutograd gives the backward the strides
the forward chose for its saved tensors evaluated at the example size, which holds only while inductor
keeps the tensors' layout in graphs with symbolic sizes (it gives up its layout optimisation there, except
on a CPU: for mkldnn it converts every convolution input to channels-last).  On a CPU the backward then
stopped on inductor's stride assertion at the third size ("expected size 8==8, stride 48==192").  Without
the optimisation tensors keep the layout eager gives them; ``training.channels_last`` is the layout switch,
compiled or not.  One graph per size (``dynamic=False``) avoids it too, at a compile per size, and with
three scales it ran into dynamo's recompile limit (8 graphs per function).

The modules keep their own ``state_dict`` keys and parameters: only the call path is compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: inductor's options for the step (see the module's docstring)
INDUCTOR_OPTIONS = {"layout_optimization": False}


def compiled(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` (a module, or its DistributedDataParallel wrapper) through ``torch.compile``."""
    return torch.compile(call, options=dict(INDUCTOR_OPTIONS))


def compiled_pair(
    g_call: Callable[..., Any], d_call: Callable[..., Any] | None
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """G's and D's call paths compiled (D absent stays absent)."""
    return compiled(g_call), (compiled(d_call) if d_call is not None else None)
