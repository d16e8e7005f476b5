"""Small bundled sample images (data only); licences in NOTICE.md."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_folder(name: str) -> Path:
    """A bundled folder of sample images: ``train`` (quickstart training) or ``val`` (its validation)."""
    from .. import errors

    path = Path(str(files(__name__).joinpath(name)))
    if not path.is_dir():
        raise errors.MgsrError(f"no bundled sample folder 'samples:{name}'; use samples:train or samples:val")
    return path
