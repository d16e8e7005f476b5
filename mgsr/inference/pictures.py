"""Images in, images out: decoded pictures, PIL images and numpy arrays adapted to the one inference core.

Colour goes through :func:`mgsr.inference.core.upscale_tensor`; alpha is upscaled with bicubic; the mode,
bit depth and container type of the input are kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from mgsr.inference.core import DEFAULT_MARGIN, NoiseSetting, auto_tile, upscale_tensor
from mgsr.inference.memory import reuse_freed_memory
from mgsr.inference.openvino import resolve_backend
from mgsr.io.images import Picture, decode, encode, to_grey
from mgsr.model.generator import GMGBP
from mgsr.model.loading import resolve_model

def _resize_plane(plane: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize a float (H, W) plane to (h, w) with Pillow (bounded memory at any size)."""
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.array(im.resize((size[1], size[0]), resample=resample), dtype=np.float32)


def super_resolve(
    model: GMGBP,
    rgb: np.ndarray,
    *,
    scale: int = 4,
    noise: NoiseSetting = 0.0,
    noise_map: np.ndarray | None = None,
    seed: int = 0,
    tile: int | None = None,
    margin: int = DEFAULT_MARGIN,
    device: str | torch.device = "cpu",
    on_tile: Callable[[int, int], None] | None = None,
    backend: str = "torch",
) -> np.ndarray:
    """Upscale an (H, W, 3) float image in [0, 1] through :func:`~mgsr.inference.core.upscale_tensor`.

    Returns (sH, sW, 3) float32, not clamped; the options are those of ``upscale_tensor``.
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    amp_map = None if noise_map is None else torch.from_numpy(np.ascontiguousarray(noise_map, dtype=np.float32))
    # freed memory kept for reuse: ~100k -> 28k page faults per pass, ~1.2x faster (benchmarks/upscale_bench.py)
    with torch.inference_mode(), reuse_freed_memory():
        out = upscale_tensor(model, x, scale=scale, noise_amp=noise, noise_map=amp_map, seed=seed, tile=tile,
                             margin=margin, device=device, on_tile=on_tile, backend=backend)
    return out[0].permute(1, 2, 0).numpy()


def upscale_picture(model: GMGBP, picture: Picture, **options: object) -> Picture:
    """Upscale a decoded Picture: colour through the network, alpha with bicubic, modes and depth kept."""
    scale = int(options.get("scale", 4))  # type: ignore[arg-type]
    result = super_resolve(model, picture.rgb(), **options)  # type: ignore[arg-type]
    color = to_grey(result) if picture.color.shape[2] == 1 else result
    alpha = None
    if picture.alpha is not None:
        h, w = picture.size
        alpha = np.clip(_resize_plane(picture.alpha, (h * scale, w * scale), Image.BICUBIC), 0.0, 1.0)
    return Picture(color=color, alpha=alpha, bits=picture.bits, mode=picture.mode, icc_profile=picture.icc_profile)


def upscale(
    image: Image.Image | np.ndarray,
    *,
    model: str | os.PathLike[str] | GMGBP = "pirm-r3",
    scale: int = 4,
    noise: NoiseSetting | None = None,
    noise_map: np.ndarray | Image.Image | None = None,
    seed: int = 0,
    tile: int | str | None = "auto",
    device: str | torch.device = "cpu",
    backend: str = "auto",
) -> Image.Image | np.ndarray:
    """Upscale a PIL image or a numpy array; the result has the input's type, mode and bit depth.

    Arrays: (H, W) or (H, W, 1) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB, (H, W, 4) RGBA; uint8,
    uint16 or float in [0, 1].  ``noise`` defaults to the W recorded with the model; ``tile="auto"``
    bounds memory, ``None`` processes the image whole.
    """
    generator = resolve_model(model, device)
    if noise is None:
        noise = generator.default_noise
    if isinstance(noise_map, Image.Image):
        noise_map = np.asarray(noise_map.convert("L"), dtype=np.float32) / 255.0
    if isinstance(image, Image.Image):
        picture = decode(image)
    elif isinstance(image, np.ndarray):
        picture = picture_from_array(image)
    else:
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    backend = resolve_backend(backend, device)
    tile_px = auto_tile(scale, torch.device(device), backend=backend) if tile == "auto" else tile
    result = upscale_picture(generator, picture, scale=scale, noise=noise, noise_map=noise_map, seed=seed,
                             tile=tile_px, device=device, backend=backend)
    if isinstance(image, Image.Image):
        pil, raw16 = encode(result, "TIFF" if result.bits == 32 else "PNG")
        if raw16 is not None:  # 16-bit RGB(A) cannot be a PIL image: return the array instead
            return raw16
        return pil.convert("CMYK") if result.mode == "CMYK" and pil.mode == "RGB" else pil
    return array_from_picture(result, image.dtype)


def picture_from_array(array: np.ndarray) -> Picture:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W[, 1|2|3|4]) array, got shape {array.shape}")
    if array.dtype == np.uint8:
        data, bits = array.astype(np.float32) / 255.0, 8
    elif array.dtype == np.uint16:
        data, bits = array.astype(np.float32) / 65535.0, 16
    elif np.issubdtype(array.dtype, np.floating):
        data, bits = array.astype(np.float32), 32
    else:
        raise ValueError(f"unsupported array dtype {array.dtype}; use uint8, uint16 or float in [0, 1]")
    has_alpha = array.shape[2] in (2, 4)
    color = data[..., :-1] if has_alpha else data
    return Picture(color=color, alpha=data[..., -1] if has_alpha else None, bits=bits,
                   mode="L" if color.shape[2] == 1 else "RGB")


def array_from_picture(picture: Picture, dtype: np.dtype) -> np.ndarray:
    planes = picture.color if picture.alpha is None else np.concatenate([picture.color, picture.alpha[..., None]], 2)
    if planes.shape[2] == 1:
        planes = planes[..., 0]
    if dtype == np.uint8:
        return np.round(np.clip(planes, 0, 1) * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(np.clip(planes, 0, 1) * 65535).astype(np.uint16)
    return planes.astype(dtype)
