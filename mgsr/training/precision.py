"""Mixed precision and a sync-free loss log for the training step.

Why: on a GPU the step of a 281k-parameter generator is short, so two things
dominate if left alone: float32 convolutions where bfloat16/float16 tensor
cores would do, and host synchronisations — reading every loss term back
(``float(t)``) and checking it (``isfinite``) per term, per level, per step.

- :class:`MixedPrecision` wraps ``torch.autocast`` (``training.precision``:
  fp32, bf16 or fp16) and, for fp16 only, a gradient scaler: float16's range
  underflows small gradients, bfloat16's does not.  Autocast lowers the
  convolutions and matrix products of G, D and the feature extractor; the
  numerics that must stay float32 opt out themselves (see
  :func:`mgsr.ops.full_precision`): the VN+SC local statistics (μ(I²) − μ²
  cancels), MATLAB's bicubic S_down (the cycle loss compares resized images
  to 1e-3), the contextual similarity (relative cosine distances d / min d),
  and the losses' reductions (the step casts G's outputs to float32 first).
- :class:`LossLog` adds every term to a device tensor and remembers, also on
  the device, the first step at which any term was not finite.  ``flush()``
  reads it all back in one transfer — every ``log_every`` steps and before
  anything is saved — and raises naming that step and term, so a checkpoint
  is never written after a non-finite loss and the last good one is kept.
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


class NonFiniteLoss(Exception):
    """Raised by :meth:`LossLog.flush`; the trainer turns it into its own error with the checkpoint to keep."""

    def __init__(self, step: int, term: str, value: float) -> None:
        super().__init__(f"step {step}: loss term '{term}' is {value}")
        self.step, self.term, self.value = step, term, value


class LossLog:
    """Loss terms summed on the device between reads; the first non-finite one remembered there too.

    Each term's mean is over the steps that recorded it: across the end of a discriminator warm-up, the
    generator's terms are averaged over the steps in which G trained, not diluted by the warm-up's.
    """

    _NONE = 2**62

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.first_bad: dict[str, torch.Tensor] = {}
        self.bad_value: dict[str, torch.Tensor] = {}
        self.steps: dict[str, int] = {}  # per term: the steps that recorded it since the last flush
        self._this_step: set[str] = set()

    def add(self, name: str, value: torch.Tensor, step: int) -> None:
        """Record ``value`` (a 0-d tensor) for ``name`` at ``step``; no host synchronisation."""
        value = value.detach().float()
        self._this_step.add(name)
        if name in self.sums:
            self.sums[name] = self.sums[name] + value
        else:
            self.sums[name] = value.clone()
            self.first_bad[name] = torch.full((), self._NONE, dtype=torch.int64, device=value.device)
            self.bad_value[name] = torch.zeros((), device=value.device)
        fresh = (~torch.isfinite(value)) & (self.first_bad[name] == self._NONE)
        self.first_bad[name] = torch.where(fresh, torch.full_like(self.first_bad[name], step), self.first_bad[name])
        self.bad_value[name] = torch.where(fresh, value, self.bad_value[name])

    def end_step(self) -> None:
        for name in self._this_step:
            self.steps[name] = self.steps.get(name, 0) + 1
        self._this_step = set()

    def check(self) -> None:
        """Raise NonFiniteLoss for the first bad step so far, reading back only the step markers; sums are kept."""
        if not self.first_bad:
            return
        names = list(self.first_bad)
        first_bad = torch.stack([self.first_bad[n] for n in names]).cpu()
        bad = [
            (int(first), order, name)
            for order, (name, first) in enumerate(zip(names, first_bad, strict=True))
            if first < self._NONE
        ]
        if bad:
            step, _, name = min(bad)  # the first step, and in it the term recorded first
            raise NonFiniteLoss(step, name, float(self.bad_value[name]))

    def flush(self) -> dict[str, float]:
        """Means since the last flush, read back in one transfer; raises NonFiniteLoss for the first bad step."""
        if not self.sums:
            return {}
        names = list(self.sums)
        values = torch.stack([torch.stack([self.sums[n], self.bad_value[n]]) for n in names]).cpu()
        first_bad = torch.stack([self.first_bad[n] for n in names]).cpu()  # int64: exact at any step count
        steps = {n: max(self.steps.get(n, 0), 1) for n in names}
        self.sums, self.first_bad, self.bad_value, self.steps = {}, {}, {}, {}
        bad = [
            (int(first), order, name, float(row[1]))
            for order, (name, row, first) in enumerate(zip(names, values, first_bad, strict=True))
            if first < self._NONE
        ]
        if bad:
            step, _, name, value = min(bad)  # the first step, and in it the term recorded first
            raise NonFiniteLoss(step, name, value)
        return {name: float(row[0]) / steps[name] for name, row in zip(names, values, strict=True)}


def channels_last(enabled: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch conversion for ``training.channels_last`` (identity when off)."""
    if not enabled:
        return lambda x: x
    return lambda x: x.contiguous(memory_format=torch.channels_last)
