"""A process-wide setting that overlapping calls share (serve runs several inference threads at once).

It lives in the toolkit because training numerics need it too (see :data:`mgsr.ops.precision.ieee_float32`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


class SharedSetting:
    """``with setting():`` applies it; the first call in applies, the last one out restores what was there.

    Restoring at each call's end would switch the setting off under another call
    still running; counting the calls inside keeps it on until all have left.
    """

    def __init__(self, apply: Callable[[], Any], restore: Callable[[Any], None]) -> None:
        self._apply, self._restore = apply, restore
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: Any = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._inside == 0:
                self._saved = self._apply()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    self._restore(self._saved)
