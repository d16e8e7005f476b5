"""Numerics that must stay float32 when a caller trains under ``torch.autocast`` (toolkit for plugins).

Why: bfloat16 keeps 8 bits of mantissa (float16 11).  That is plenty for a
convolution's products, but not for a local variance μ(I²) − μ² (it cancels),
for a bicubic resize compared to 1e-3 by the cycle loss, or for the relative
cosine distances of the contextual similarity.  Functions wrapped in
:func:`full_precision` see their half-precision tensor arguments as float32
and run with autocast switched off; float32 and float64 arguments are left
alone, so their results without autocast are unchanged bit for bit.

Autocast is not the only way float32 loses digits: on Ampere and later cards
PyTorch runs float32 convolutions in TensorFloat-32 by default
(``torch.backends.cudnn.conv.fp32_precision`` is ``"tf32"``), which keeps 10
bits of mantissa, as float16 does, and matrix products too where a process
asks for it (``torch.set_float32_matmul_precision("high")``).  An emulation of
TF32 rounding moved the normalised Î of flat regions by up to ~0.4 at the 99th
percentile.  So :func:`full_precision` also runs its function under
:data:`ieee_float32`: cuDNN convolutions and CUDA matrix products in IEEE
float32, the caller's setting back after.  Inference uses the same switch for
its whole duration (:func:`mgsr.inference.core.upscale_tensor`): at W = 1 the released weights amplify
rounding ~100-fold (a 2**-12 relative error in the input moves 4x outputs by up to 7 grey levels), so
``--precision fp32`` in TF32 would not be the release's float32 result.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from mgsr.ops.shared_setting import SharedSetting

F = TypeVar("F", bound=Callable[..., Any])
_HALF = (torch.float16, torch.bfloat16)


def _upcast(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in _HALF:
        return value.float()
    return value


def _to_ieee() -> tuple[str, ...] | tuple[bool, bool]:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if not hasattr(cudnn, "conv"):  # torch < 2.9: only the legacy flags exist
        saved_flags = (cudnn.allow_tf32, matmul.allow_tf32)
        cudnn.allow_tf32 = matmul.allow_tf32 = False
        return saved_flags
    saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision)  # type: ignore[attr-defined]  # torch 2.9 API, not in its stubs
    # both: the legacy allow_tf32 stays readable
    cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"  # type: ignore[attr-defined]  # torch 2.9 API, not in its stubs
    # the contextual similarity and imresize are matrix products
    matmul.fp32_precision = "ieee"
    return saved


def _restore(saved: tuple[str, ...] | tuple[bool, bool]) -> None:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if isinstance(saved[0], bool):
        cudnn.allow_tf32, matmul.allow_tf32 = saved
    else:
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision = saved  # type: ignore[attr-defined]  # torch 2.9 API, not in its stubs


#: ``with ieee_float32():`` cuDNN convolutions and CUDA matrix products in IEEE float32 (no TF32); the caller's
#: setting is back when the last overlapping call has left (a process-wide flag: see SharedSetting).  Under
#: torch.compile (``training.compile``) the flags are set outside the graph, where they take effect.
ieee_float32 = SharedSetting(torch.compiler.disable(_to_ieee), torch.compiler.disable(_restore))


def full_precision(fn: F) -> F:
    """Decorator: run ``fn`` without autocast and in IEEE float32, float16/bfloat16 tensor arguments upcast."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        devices = {a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)}
        with contextlib.ExitStack() as stack:
            stack.enter_context(ieee_float32())
            for device in devices:
                if torch.is_autocast_enabled(device):
                    stack.enter_context(torch.autocast(device, enabled=False))
            return fn(*map(_upcast, args), **{k: _upcast(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]
