"""The number and memory formats of the training step: autocast with a gradient scaler, channels-last batches.

Why: on a GPU the step of a 281k-parameter generator is short, and float32 convolutions leave the
bfloat16/float16 tensor cores idle.  :class:`MixedPrecision` wraps ``torch.autocast`` (``training.precision``:
fp32, bf16 or fp16) and, for fp16 only, a gradient scaler: float16's range underflows small gradients,
bfloat16's does not.  Autocast lowers the convolutions and matrix products of G, D and the feature extractor;
the numerics that must stay float32 opt out themselves (see :func:`mgsr.ops.precision.full_precision`): the
VN+SC local statistics (μ(I²) − μ² cancels), MATLAB's bicubic S_down (the cycle loss compares resized images
to 1e-3), the contextual similarity (relative cosine distances d / min d), and the losses' reductions (the
step casts G's outputs to float32 first).  The other half of a fast step, reading the losses back without a
host synchronisation per term, is :mod:`mgsr.training.loss_log`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from mgsr.number_formats import PRECISIONS


class MixedPrecision:
    """Autocast at ``precision`` on ``device``, with a gradient scaler for fp16."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.dtype = None if PRECISIONS[precision] is torch.float32 else PRECISIONS[precision]  # None: no autocast
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward passes of a step; a no-op at fp32."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, *optimizers: torch.optim.Optimizer | None) -> None:
        """Step every optimizer (fp16: unscaled, skipped on overflow), then adapt the scale once."""
        for optimizer in optimizers:
            if optimizer is not None:
                self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.scaler.load_state_dict(state)


def channels_last(enabled: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch conversion for ``training.channels_last`` (identity when off)."""
    if not enabled:
        return lambda x: x
    return lambda x: x.contiguous(memory_format=torch.channels_last)
