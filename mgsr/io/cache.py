"""The one home of mgsr's cache folder: what is slow to make and cheap to keep (OpenVINO models, prepared
training stores).

Why one function: every cache user must agree on the root, so ``MGSR_CACHE`` moves all of them at once and a
user who deletes ``~/.cache/mgsr`` knows that is everything.  Downloaded weights are not here: they follow
torch.hub's own folder (see :mod:`mgsr.io.hub`), so files torch saved are found and vice versa.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that moves the cache root
CACHE_ENV = "MGSR_CACHE"


def cache_root() -> Path:
    """``$MGSR_CACHE`` when set, else ``~/.cache/mgsr``; read on every call so a test or a run can move it."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mgsr")
