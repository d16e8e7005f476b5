"""The training step's losses summed on the device and read back in one transfer, non-finite terms included.

Why: on a GPU the step of a 281k-parameter generator is short, so reading every loss term back
(``float(t)``) and checking it (``isfinite``) per term, per level, per step would make host synchronisations
dominate.  :class:`LossLog` adds every term to a device tensor and remembers, also on the device, the first
step at which any term was not finite.  ``flush()`` reads it all back in one transfer -- every ``log_every``
steps and before anything is saved -- and raises naming that step and term, so a checkpoint is never written
after a non-finite loss and the last good one is kept.
"""

from __future__ import annotations

import torch


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
