"""Stopping a run cleanly: the first Ctrl-C or SIGTERM asks the loop to save at the next step boundary, a second
one stops at once (the way a user gets out when saving hangs)."""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any


class StopRequest:
    """``with StopRequest() as stop:`` installs the handlers (restored on exit); ``stop.requested`` says
    whether a stop was asked for."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            signal.signal(signum, self._previous[signum])
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in self._previous:
            signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
