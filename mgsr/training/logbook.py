"""Where training numbers go: ``metrics.jsonl`` in the run folder, and TensorBoard when it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # tensorboard is optional: imported when a run starts, if installed
    from torch.utils.tensorboard import SummaryWriter


class Logbook:
    """Appends one JSON record per call to ``RUN_DIR/metrics.jsonl``; mirrors scalars to ``RUN_DIR/tensorboard``.

    Every record carries the training ``stage`` it belongs to (``"pretrain"`` or ``"train"``): the stages of
    one run share its ``metrics.jsonl``, and their step counts start over.  TensorBoard gets one run per
    stage (``tensorboard/<stage>``), so the curves do not fold back onto each other.
    """

    def __init__(self, run_dir: Path, stage: str = "train") -> None:
        self.run_dir = Path(run_dir)
        self.stage = stage
        self._writer: SummaryWriter | None = None
        self._writer_checked = False

    def write(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({**record, "stage": self.stage}, sort_keys=True) + "\n")
        writer = self._tensorboard()
        if writer is not None:
            for key, value in record.items():
                if key != "step":
                    writer.add_scalar(key, value, record["step"])
            writer.flush()

    def _tensorboard(self) -> SummaryWriter | None:
        """A SummaryWriter when the optional tensorboard package is installed, else None."""
        if not self._writer_checked:
            self._writer_checked = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = None
            else:
                self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / self.stage))
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
