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
percentile, and its gradient by 1.2 % (0.03 % in IEEE float32).  So
:func:`full_precision` runs its function under :data:`ieee_float32` in both
directions: the forward, and the backward through an autograd Function that
recomputes the function inside the region and differentiates it there (the
backward kernels read the settings when they start, long after the forward's
region has closed).  Inference uses the same switch for its whole duration
(:func:`mgsr.inference.core.upscale_tensor`): at W = 1 the released weights amplify
rounding ~100-fold (a 2**-12 relative error in the input moves 4x outputs by up to 7 grey levels), so
``--precision fp32`` in TF32 would not be the release's float32 result.

The caller's settings come back as they were, read without tripping torch's own checks: since torch 2.9
the legacy flags (``cudnn.allow_tf32``, ``set_float32_matmul_precision``) and the ``fp32_precision``
table coexist, their getters raise where the two disagree, and the table's getter answers resolved values
(an entry set to "none" inherits from ``<backend>.all``, which inherits from the generic entry), so the
stored entries are found by moving their parents (:func:`_stored_precisions`).  One state cannot come back:
torch's initial "untouched" entry of cuDNN conv and rnn, which behaves as "tf32" but would follow a later
``fp32_precision`` of ``torch.backends.cudnn`` or ``torch.backends``.  Turning the legacy cuDNN flag off,
which keeps it readable inside the region, rewrites both entries, and no setter accepts that state; they
come back as "tf32", which is what they read before and what ``torch.backends.cudnn.allow_tf32 = True``
or torch's own ``torch.backends.cudnn.flags()`` leave too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from mgsr.ops.shared_setting import SharedSetting

F = TypeVar("F", bound=Callable[..., Any])
_HALF = (torch.float16, torch.bfloat16)
#: torch 2.9 brought the fp32_precision table ("ieee", "tf32", "bf16", "none" per backend and op)
_TABLE = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 9)
#: the table's entries the region writes: cuDNN convolutions (rnn with them, so the legacy flag stays
#: readable), CUDA matrix products, and oneDNN's (so get_float32_matmul_precision stays readable)
_WRITTEN = (("cuda", "conv"), ("cuda", "rnn"), ("cuda", "matmul"), ("mkldnn", "matmul"))
#: our name for torch's initial state of cuDNN conv and rnn: inherit, and "tf32" where nothing is set
_UNTOUCHED = "untouched"


class _Saved(NamedTuple):
    """The caller's settings: the legacy cuDNN flag, the matmul precision, and the table's stored entries."""

    cudnn_tf32: bool
    matmul: str
    stored: dict[tuple[str, str], str]


def _stored_value(under_ieee: str, under_none: str) -> str:
    """An entry's stored value from what it read with its parent set to "ieee", then to "none"."""
    if under_ieee == under_none:
        return under_ieee  # its own value: the parent's does not reach it
    return "none" if under_none == "none" else _UNTOUCHED  # inherits; the untouched state ends in "tf32"


def _stored_precisions() -> dict[tuple[str, str], str]:
    """The stored (not resolved) value of each entry in :data:`_WRITTEN`; every parent is back after.

    Why: torch's getter resolves inheritance, and restoring a resolved value would make an inheriting
    entry deaf to a later change of its parent.  Probing sets parents to "ieee" and "none" alone.
    """
    get, put = torch._C._get_fp32_precision_getter, torch._C._set_fp32_precision_setter
    generic = get("generic", "all")  # the root: resolved and stored are the same
    stored: dict[tuple[str, str], str] = {}
    for backend in ("cuda", "mkldnn"):
        ops = [op for b, op in _WRITTEN if b == backend]
        parent = []
        for probe in ("ieee", "none"):
            put("generic", "all", probe)
            parent.append(get(backend, "all"))
        seen: dict[str, list[str]] = {op: [] for op in ops}
        for probe in ("ieee", "none"):  # the generic entry is "none" now: nothing above the parent answers
            put(backend, "all", probe)
            for op in ops:
                seen[op].append(get(backend, op))
        put(backend, "all", _stored_value(*parent))
        stored.update({(backend, op): _stored_value(*seen[op]) for op in ops})
    put("generic", "all", generic)
    return stored


def _cudnn_flag() -> bool:
    """torch's legacy ``cudnn.allow_tf32``, overwriting cuDNN's conv and rnn entries (saved before).

    Its getter raises unless conv, rnn and the flag agree; with both entries "tf32" it answers True or
    raises, so a raise means False.  No setting lets every flag be read without one of the two.
    """
    torch._C._set_fp32_precision_setter("cuda", "conv", "tf32")
    torch._C._set_fp32_precision_setter("cuda", "rnn", "tf32")
    try:
        return bool(torch.backends.cudnn.allow_tf32)
    except RuntimeError:
        return False


def _to_ieee() -> _Saved:
    """Switch TF32 (and oneDNN's bf16 matrix products) off; return what restores the caller's settings."""
    cudnn = torch.backends.cudnn
    if not _TABLE:  # torch < 2.9: only the legacy flags exist, and reading them never raises
        saved = _Saved(cudnn.allow_tf32, torch.get_float32_matmul_precision(), {})
    else:
        stored = _stored_precisions()
        flag = _cudnn_flag()
        for backend, op in _WRITTEN:  # both matmul entries "ieee": the matmul precision below reads safely
            torch._C._set_fp32_precision_setter(backend, op, "ieee")
        saved = _Saved(flag, torch.get_float32_matmul_precision(), stored)
    # the legacy views agree with the entries below, so reading them inside the region does not raise
    cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if _TABLE:
        for backend, op in _WRITTEN:  # explicit: "none" would inherit a "tf32" from the backend or generic
            torch._C._set_fp32_precision_setter(backend, op, "ieee")
    return saved


def _restore(saved: _Saved) -> None:
    """Put back the caller's settings: the legacy views first, as their setters rewrite the entries."""
    torch.set_float32_matmul_precision(saved.matmul)  # "medium" stays "medium": a boolean could not say it
    torch.backends.cudnn.allow_tf32 = saved.cudnn_tf32
    for (backend, op), value in saved.stored.items():
        torch._C._set_fp32_precision_setter(backend, op, "tf32" if value == _UNTOUCHED else value)


#: ``with ieee_float32():`` cuDNN convolutions and CUDA matrix products in IEEE float32 (no TF32); the caller's
#: setting is back when the last overlapping call has left (a process-wide flag: see SharedSetting).  Under
#: torch.compile (``training.compile``) the flags are set outside the graph, where they take effect.
ieee_float32 = SharedSetting(torch.compiler.disable(_to_ieee), torch.compiler.disable(_restore))


def _upcast(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in _HALF:
        return value.float()
    return value


class _Call:
    """A call of the wrapped function with its tensor arguments left open: autograd passes tensors alone.

    It keeps no tensor itself, so the autograd graph that holds it holds no tensor it does not save.
    """

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.positional, self.keys = fn, len(args), list(kwargs)
        flat = [*args, *kwargs.values()]
        self.slots = [i for i, a in enumerate(flat) if isinstance(a, torch.Tensor)]
        self.template = [None if isinstance(a, torch.Tensor) else a for a in flat]

    def __call__(self, tensors: Sequence[torch.Tensor]) -> Any:
        """Run the function under :data:`ieee_float32`, autocast off, half-precision tensors upcast."""
        flat = list(self.template)
        for slot, tensor in zip(self.slots, tensors, strict=True):
            flat[slot] = _upcast(tensor)
        args, kwargs = flat[: self.positional], dict(zip(self.keys, flat[self.positional :], strict=True))
        devices = {t.device.type for t in tensors}
        with contextlib.ExitStack() as stack:
            stack.enter_context(ieee_float32())
            for device in devices:
                if torch.is_autocast_enabled(device):
                    stack.enter_context(torch.autocast(device, enabled=False))
            return self.fn(*args, **kwargs)


class _BothWays(torch.autograd.Function):
    """The wrapped function with its backward inside :data:`ieee_float32` too.

    The backward recomputes the function under the region and differentiates that graph there; a forward
    graph kept from the region would hold its tensors until the whole graph is freed and would not run
    twice under ``retain_graph``.  Inputs: the call, the count of its tensor arguments, those tensors,
    then the parameters of its module arguments (which the function reads from the modules).
    """

    @staticmethod
    def forward(ctx: Any, call: _Call, count: int, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.call, ctx.count = call, count
        ctx.save_for_backward(*inputs)
        out = call(inputs[:count])
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"full_precision differentiates functions returning one tensor, got {type(out)}")
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        inputs, count, needs = ctx.saved_tensors, ctx.count, ctx.needs_input_grad[2:]
        with ieee_float32(), torch.enable_grad():
            leaves = [t.detach().requires_grad_(need) for t, need in zip(inputs[:count], needs[:count], strict=True)]
            out = ctx.call(leaves)
            wanted = [t for t, need in zip([*leaves, *inputs[count:]], needs, strict=True) if need]
            found: Sequence[torch.Tensor | None] = [None] * len(wanted)
            if wanted and out.requires_grad:
                found = torch.autograd.grad(out, wanted, grad, allow_unused=True)
        grads = iter(found)
        return (None, None, *(next(grads) if need else None for need in needs))


@torch.compiler.disable  # an eager island under torch.compile, as the region's switches are
def _differentiable(call: _Call, tensors: list[torch.Tensor], parameters: list[nn.Parameter]) -> Any:
    return _BothWays.apply(call, len(tensors), *tensors, *parameters)


def full_precision(fn: F) -> F:
    """Decorator: run ``fn`` without autocast and in IEEE float32 both ways, half tensor arguments upcast.

    While gradients are recorded, the backward recomputes ``fn`` inside the region and differentiates it
    with respect to its tensor arguments and the parameters of its module arguments (``self`` included)
    alone: a tensor that ``fn`` reaches another way (a closure, a tensor inside a list) gets no gradient.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = _Call(fn, args, kwargs)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if not torch.is_grad_enabled():
            return call(tensors)
        modules = [a for a in (*args, *kwargs.values()) if isinstance(a, nn.Module)]
        parameters = [p for m in modules for p in m.parameters() if p.requires_grad]
        if not parameters and not any(t.requires_grad for t in tensors):
            return call(tensors)
        return _differentiable(call, tensors, parameters)

    return wrapper  # type: ignore[return-value]
