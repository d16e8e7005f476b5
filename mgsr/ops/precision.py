"""Numerics that must stay float32 when a caller trains under ``torch.autocast`` (toolkit for plugins).

Why: bfloat16 keeps 8 bits of mantissa (float16 11).  That is plenty for a
convolution's products, but not for a local variance μ(I²) − μ² (it cancels),
for a bicubic resize compared to 1e-3 by the cycle loss, or for the relative
cosine distances of the contextual similarity.  Functions wrapped in
:func:`full_precision` see their half-precision tensor arguments as float32
and run with autocast switched off; float32 and float64 arguments are left
alone, so their results without autocast are unchanged bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])
_HALF = (torch.float16, torch.bfloat16)


def _upcast(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in _HALF:
        return value.float()
    return value


def full_precision(fn: F) -> F:
    """Decorator: run ``fn`` without autocast, with float16/bfloat16 tensor arguments upcast to float32."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        devices = {a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)}
        with contextlib.ExitStack() as stack:
            for device in devices:
                if torch.is_autocast_enabled(device):
                    stack.enter_context(torch.autocast(device, enabled=False))
            return fn(*map(_upcast, args), **{k: _upcast(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]
