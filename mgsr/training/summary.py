"""Where the time goes and how the run ended: per-step timing for the log, one screen of summary at the end.

Why: a user who leaves a run for days comes back to a long ``metrics.jsonl``; the end of the run should say in
a few lines whether it is good (best and last validation at both ends of the perception-distortion range) and
whether the machine was used well (seconds per step, and how much of it the step waited for data: a large
share means more ``data.workers`` or a prepared store, not a faster card).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from mgsr.runtime.devices import describe_device

#: the summary's columns: (metrics.jsonl key, heading, format); W = 0 is the distortion end, W = 1 perception
COLUMNS = (
    ("val/psnr_w0", "PSNR w0", "{:.2f}"),
    ("val/rmse_w0", "RMSE w0", "{:.2f}"),
    ("val/niqe_w1", "NIQE w1", "{:.2f}"),
    ("val/period2_ratio_w1", "period-2 w1", "{:.2f}x"),
    ("val/phase_spread", "phase spread", "{:.2%}"),
)
#: "best" rows: the key, its heading and whether higher is better
BEST = (("val/psnr_w0", "best PSNR w0", True), ("val/niqe_w1", "best NIQE w1", False))


class StepTimes:
    """Seconds per training step and seconds of it spent waiting for the next batch, per log interval.

    Time the loop spends validating, drawing samples or checkpointing is set aside, so ``time/step_s`` is the
    training step's own cost (on CUDA the interval ends at the loss read-back, which waits for the card).
    """

    def __init__(self) -> None:
        self.steps = 0  # totals of this process (a resumed run counts from its restart)
        self.seconds = 0.0
        self.waiting = 0.0
        self.restart()

    def restart(self) -> None:
        """Start a new interval now (the loop's start: setting up is not a step)."""
        self._start = time.perf_counter()
        self._wait = 0.0
        self._aside = 0.0

    def waited(self, seconds: float) -> None:
        """Add time spent in ``next(batches)``."""
        self._wait += seconds

    def set_aside(self, seconds: float) -> None:
        """Add time that is not training (validation, samples, checkpoints)."""
        self._aside += seconds

    def interval(self, steps: int) -> dict[str, float]:
        """``time/step_s`` and ``time/data_wait_s`` averaged over the ``steps`` since the previous call."""
        busy = time.perf_counter() - self._start - self._aside
        record = {"time/step_s": busy / max(steps, 1), "time/data_wait_s": self._wait / max(steps, 1)}
        self.steps += steps
        self.seconds += busy
        self.waiting += self._wait
        self.restart()
        return record


def validation_history(metrics: Path, stage: str | None = None) -> dict[int, dict[str, Any]]:
    """The validation records of ``metrics.jsonl`` by step (of ``stage`` only, when given); a step validated
    twice (a run resumed from an earlier checkpoint) keeps its latest record."""
    history: dict[int, dict[str, Any]] = {}
    if not metrics.is_file():
        return history
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut by a crash: the rest still tells the story
            continue
        if stage is not None and isinstance(record, dict) and record.get("stage", stage) != stage:
            continue
        if isinstance(record, dict) and any(str(k).startswith("val/") for k in record) and "step" in record:
            history[int(record["step"])] = record
    return history


def _row(label: str, record: dict[str, Any]) -> str:
    cells = [fmt.format(record[key]) if isinstance(record.get(key), (int, float)) else "-" for key, _, fmt in COLUMNS]
    return f"  {label:<14}{record['step']:>9}" + "".join(f"{cell:>14}" for cell in cells)


def run_summary(
    run_dir: Path, step: int, times: StepTimes, device: torch.device, validated_on: str, metrics: Path, stage: str
) -> str:
    """The end-of-run screen: where, how fast, and the last and best validations of ``stage`` (from
    ``metrics``, the run's ``metrics.jsonl``)."""
    lines = [f"mgsr: stage '{stage}' of {run_dir} ended at step {step} on {describe_device(None, str(device))}"]
    if times.steps:
        per_step = times.seconds / times.steps
        wait = times.waiting / times.steps
        lines.append(
            f"  {per_step:.3g} s/step over the {times.steps} steps of this session; waiting for data "
            f"{wait:.3g} s/step ({wait / per_step if per_step > 0 else 0:.0%})"
        )
    history = validation_history(metrics, stage)
    if not history:
        lines.append("  no validation (set data.val, or data.holdout with at least 10 training images)")
        return "\n".join(lines)
    lines.append(f"  validation on {validated_on}")
    lines.append(f"  {'':<14}{'step':>9}" + "".join(f"{heading:>14}" for _, heading, _ in COLUMNS))
    lines.append(_row("last", history[max(history)]))
    for key, label, higher in BEST:
        scored = [r for r in history.values() if isinstance(r.get(key), (int, float))]
        if scored:
            best = max(scored, key=lambda r: r[key] if higher else -r[key])
            lines.append(_row(label, best))
    return "\n".join(lines)
