"""The one rule of every command that writes: an output is never one of the command's inputs.

Why a rule of its own: ``mgsr export M.safetensors -o M.safetensors`` replaced the model with ONNX bytes and
exited 0, while ``mgsr upscale`` had long refused the same thing for its images.  Every command that writes
(``upscale``, ``export``, ``import-weights``, ``calibrate``, ``sweep``, ``eval``) now asks this module, before
any work, whether an output is an input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mgsr.errors import MgsrError
from mgsr.io.files import real_path


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path (symlinks followed) and, when the file exists, its (device, inode): hard links too."""
    resolved = real_path(path)
    try:
        st = resolved.stat()
    except OSError:
        return resolved, None
    return resolved, (st.st_dev, st.st_ino)


def refuse_overwriting(
    outputs: Iterable[str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]],
    error: type[MgsrError] = MgsrError,
) -> None:
    """Raise ``error`` naming the first of ``outputs`` that is one of ``inputs``: the one rule of every
    command that writes (``upscale``, ``export``, ``calibrate``, ``sweep``, ``eval``, ``import-weights``).

    Paths are compared resolved (so ``./a.png``, ``a.png`` and a symlink to it are the same file) and, for
    files that exist, by device and inode (hard links, case-insensitive file systems).  Called before
    anything is written or computed, so a refused command leaves every file as it was.
    """
    paths: dict[Path, Path] = {}
    inodes: dict[tuple[int, int], Path] = {}
    for path in map(Path, inputs):
        resolved, inode = _identity(path)
        paths.setdefault(resolved, path)
        if inode is not None:
            inodes.setdefault(inode, path)
    for target in map(Path, outputs):
        resolved, inode = _identity(target)
        original = paths.get(resolved) or (inodes.get(inode) if inode is not None else None)
        if original is not None:
            raise error(
                f"{target}: this output would overwrite the input {original}; choose another "
                f"output file or folder (nothing was written)"
            )
