"""Small bundled sample images (data only); licences in NOTICE.md."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_path(name: str) -> Path:
    """Path of a bundled sample image by stem, e.g. ``sample_path("grace_hopper")``."""
    return Path(str(files(__name__).joinpath(f"{name}.png")))
