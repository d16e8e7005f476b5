"""Which files are images: the one lister that upscaling, evaluation and training all use."""

from __future__ import annotations

import os
from pathlib import Path

from mgsr.io.images import IMAGE_SUFFIXES


def image_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (by suffix), sorted; with ``recursive`` also those in its sub-folders."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute with symlinks followed as far as they go: unlike ``Path.resolve`` (RuntimeError on
    Python < 3.13) a symlink loop or a dangling link is returned as it stands, for the reader to report."""
    return Path(os.path.realpath(path))
