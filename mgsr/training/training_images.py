"""Training images as the patch stream and the prepared store both see them: listed, decoded, resized.

The raw stream and ``mgsr data prepare`` decode through the same :func:`load_rgb_uint8`, so a store holds
exactly the pixels the raw stream would crop from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mgsr.errors import DataError
from mgsr.io.files import image_files
from mgsr.io.images import read_picture
from mgsr.ops.imresize import imresize


def image_folders(folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every image file under ``folders`` (recursively, each folder sorted); a missing folder is a DataError."""
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"data folder not found: {folder}")
        files.extend(image_files(folder, recursive=True))
    return files


def target_size(height: int, width: int, megapixels: float | None) -> tuple[int, int]:
    """The size an image is resized to so its area is ``megapixels`` (aspect kept); unchanged when None."""
    if megapixels is None:
        return height, width
    factor = math.sqrt(megapixels * 1e6 / (height * width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def load_rgb_uint8(path: Path, megapixels: float | None) -> np.ndarray:
    """(H, W, 3) uint8, resized to ``megapixels`` with MATLAB bicubic when asked."""
    picture = read_picture(path)
    rgb = np.clip(picture.rgb(), 0, 1)
    if megapixels is not None:
        h, w = target_size(rgb.shape[0], rgb.shape[1], megapixels)
        t = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)
        rgb = imresize(t, size=(h, w)).permute(1, 2, 0).clamp(0, 1).numpy()
    return np.round(rgb * 255).astype(np.uint8)
