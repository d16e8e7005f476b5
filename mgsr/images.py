"""Image files <-> float tensors in [0, 1], with errors that name the file and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})


def read_rgb(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image as a ``(1, 3, H, W)`` float32 tensor in [0, 1] (EXIF orientation applied)."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an image file")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot read image ({exc})") from None
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` in [0, 1] -> ``(H, W, C)`` uint8, rounded."""
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return array


def write_image(path: str | os.PathLike[str], image: torch.Tensor, **save_options: object) -> None:
    """Write an RGB tensor to ``path`` through a temporary file, so no partial output is ever left."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unknown image format '{suffix}'; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    array = to_uint8(image)
    pil = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        pil.save(tmp, format=Image.registered_extensions()[suffix], **save_options)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: cannot write ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
