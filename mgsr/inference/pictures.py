"""Images in, images out: decoded pictures, PIL images and numpy arrays adapted to the one inference core.

Colour goes through :func:`mgsr.inference.core.upscale_tensor`; alpha is upscaled with bicubic; the mode,
bit depth and container type of the input are kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import torch
from PIL import Image

from mgsr.assembly.loading import resolve_model
from mgsr.errors import MgsrError
from mgsr.inference.adaptive import AdaptiveRule, resolve_noise
from mgsr.inference.core import Box, NoiseSetting, Sink, choose_backend, upscale_tensor
from mgsr.inference.memory import reuse_freed_memory
from mgsr.inference.outsize import SizeRequest, resize_picture
from mgsr.inference.tiles import DEFAULT_MARGIN, auto_tile, margin_for
from mgsr.io.images import Picture, decode, encode, quantise, to_grey
from mgsr.model.detail import implied_noise, refuse_noise_and_detail
from mgsr.model.generator import GMGBP
from mgsr.runtime.devices import resolve_device

#: Input rows per strip of the bicubic alpha upscale: the float32 plane held at once is this many rows, scaled.
ALPHA_STRIP = 64


def _storing(out: np.ndarray) -> Sink:
    """A sink converting each float piece as a whole float result would be converted (luma for one channel,
    then clamped, scaled and rounded half to even for an integer ``out``) and writing it into its place in
    ``out``: a picture made in pieces has the values of one made whole, without a float32 copy of it.
    """
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(out.dtype)

    def store(box: Box, piece: torch.Tensor) -> None:
        rgb = piece[0].permute(1, 2, 0).cpu().numpy()
        color = to_grey(rgb) if out.shape[2] == 1 else rgb
        if top is not None:
            color = np.round(np.clip(color, 0.0, 1.0) * np.float32(top))
        out[box[0] : box[1], box[2] : box[3]] = color

    return store


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
    precision: str = "fp32",
    out: np.ndarray | None = None,
    noise_origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Upscale an (H, W, 3) float image in [0, 1] through :func:`~mgsr.inference.core.upscale_tensor`.

    Returns (sH, sW, 3) float32, not clamped; the options are those of ``upscale_tensor``.  With ``out``, an
    (sH, sW, 1|3) array of uint8, uint16 or float32, each piece is written into it as it is made (grey by
    ITU-R 601 luma for one channel; clamped and rounded for integers) and ``out`` is returned: no float
    copy of the whole result is made.
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    amp_map = None if noise_map is None else torch.from_numpy(np.ascontiguousarray(noise_map, dtype=np.float32))
    expected = (x.shape[-2] * scale, x.shape[-1] * scale)
    if out is not None and (out.shape[:2] != expected or out.ndim != 3 or out.shape[2] not in (1, 3)):
        raise ValueError(
            f"out has shape {out.shape}; this image at scale {scale} needs {(*expected, 3)} or {(*expected, 1)}"
        )
    # freed memory kept for reuse: ~100k -> 28k page faults per pass, ~1.2x faster (benchmarks/upscale_bench.py)
    with torch.inference_mode(), reuse_freed_memory():
        result = upscale_tensor(
            model,
            x,
            scale=scale,
            noise_amp=noise,
            noise_map=amp_map,
            seed=seed,
            tile=tile,
            margin=margin,
            device=device,
            on_tile=on_tile,
            backend=backend,
            precision=precision,
            sink=None if out is None else _storing(out),
            noise_origin=noise_origin,
        )
    if out is not None:  # the pieces went to ``out``
        return out
    assert result is not None, "upscale_tensor without a sink returns the assembled output"
    return result[0].permute(1, 2, 0).numpy()


def _upscale_alpha(alpha: np.ndarray, scale: int, dtype: np.dtype[Any]) -> np.ndarray:
    """Bicubic ``scale`` x upscale of an (H, W) plane in [0, 1], quantised to ``dtype`` strip by strip.

    Pillow's resize of a box reads the pixels around it, so the strips equal the whole resize (to 1e-7).
    """
    h, w = alpha.shape
    out = np.empty((h * scale, w * scale), dtype)
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(np.dtype(dtype))
    im = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.float32), mode="F")
    for y0 in range(0, h, ALPHA_STRIP):
        y1 = min(h, y0 + ALPHA_STRIP)
        piece = im.resize((w * scale, (y1 - y0) * scale), Image.Resampling.BICUBIC, box=(0, y0, w, y1))
        strip = np.clip(np.asarray(piece, dtype=np.float32), 0.0, 1.0)
        out[y0 * scale : y1 * scale] = strip if bits is None else quantise(strip, bits)
    return out


def upscale_picture(
    model: GMGBP, picture: Picture, *, tile: int | str | None = "auto", margin: int | None = None, **options: Any
) -> Picture:
    """Upscale a decoded Picture: colour through the network, alpha with bicubic, modes and depth kept.

    The result holds its final values (uint8 / uint16 at 8 / 16 bits, float32 for float pictures),
    written tile by tile: its size in memory is the output file's, uncompressed.  ``margin`` defaults to
    the context the picture's depth needs (:func:`~mgsr.inference.core.margin_for`) and ``tile="auto"`` to
    the largest tile that fits the memory budget with it; the other options are :func:`super_resolve`'s.
    """
    scale = int(options.get("scale", 4))
    margin = margin_for(picture.bits, scale) if margin is None else margin
    if tile == "auto":
        device = torch.device(options.get("device", "cpu"))
        backend = choose_backend(str(options.get("backend", "torch")), device, str(options.get("precision", "fp32")))
        tile = auto_tile(scale, device, margin, backend=backend)
    elif isinstance(tile, str):
        raise MgsrError(f"tile {tile!r}: give a tile side in pixels, 'auto' or None (the image whole)")
    h, w = picture.size
    dtype = np.dtype(np.uint8 if picture.bits == 8 else np.uint16 if picture.bits == 16 else np.float32)
    color = np.empty((h * scale, w * scale, picture.color.shape[2]), dtype)
    rgb = picture.rgb()
    options["noise"], options["noise_map"] = resolve_noise(options.get("noise"), rgb, options.get("noise_map"))
    super_resolve(model, rgb, out=color, tile=tile, margin=margin, **options)
    alpha = None if picture.alpha is None else _upscale_alpha(picture.alpha, scale, dtype)
    # evolve, not a new Picture: the ICC profile and the metadata (EXIF, DPI, text) travel to the output file,
    # which scales the DPI by the output's size over the size the metadata was read at
    return attrs.evolve(picture, color=color, alpha=alpha)


def upscale_picture_to(
    model: GMGBP, picture: Picture, request: SizeRequest, *, where: str = "image", **options: Any
) -> Picture:
    """Upscale a decoded Picture to the size ``request`` asks for (any factor, a width, a height).

    The network runs at the smallest of 2x, 4x, 8x at or above the request (tiles, bit depth and alpha as
    :func:`upscale_picture`, whose other options these are), then the assembled result is shrunk to the
    exact size by :func:`~mgsr.inference.outsize.resize_picture`; a request that is a level is not resized.
    ``where`` names the image in errors (a width smaller than the image's, say).
    """
    level, size = request.plan(picture.size, where)
    result = upscale_picture(model, picture, scale=level, **options)
    return result if result.size == size else resize_picture(result, size)


def upscale(
    image: Image.Image | np.ndarray,
    *,
    model: str | os.PathLike[str] | GMGBP = "pirm-r3",
    scale: int | None = None,
    outscale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    noise: NoiseSetting | AdaptiveRule | None = None,
    noise_map: np.ndarray | Image.Image | None = None,
    seed: int = 0,
    tile: int | str | None = "auto",
    device: str | torch.device = "cpu",
    backend: str = "auto",
    precision: str = "fp32",
    detail: float | None = None,
) -> Image.Image | np.ndarray:
    """Upscale a PIL image or a numpy array; the result has the input's type, mode and bit depth.

    Arrays: (H, W) or (H, W, 1) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB, (H, W, 4) RGBA; uint8,
    uint16 or float in [0, 1].  ``noise`` defaults to the W recorded with the model; an
    :class:`~mgsr.inference.adaptive.AdaptiveRule` (``AdaptiveRule.load("calib.json")``) sets W per pixel;
    ``detail`` (t in [0, 1], instead of ``noise``) is the W at which the model has gone a fraction t of its
    measured perception-distortion curve (:func:`mgsr.model.detail.noise_for_detail` gives that W); ``tile="auto"``
    bounds memory, ``None`` processes the image whole; ``precision``: ``fp32``, ``bf16`` or (CUDA) ``fp16``.
    ``scale`` (2, 4 or 8; default 4) is the network's factor; instead, ``outscale`` (any factor in (1, 8]) or
    ``width`` and/or ``height`` (the other side follows the aspect) give any size (:func:`upscale_picture_to`).
    """
    sized = (outscale, width, height) != (None, None, None)
    if scale is not None and sized:
        raise MgsrError("give scale (2, 4 or 8) or outscale / width / height, not both")
    request = SizeRequest(outscale, width, height) if sized else None  # a bad request fails before any work
    device = resolve_device(device) if isinstance(device, str) else device  # "auto" accepted, as on the CLI
    generator = resolve_model(model, device)
    refuse_noise_and_detail(noise, detail)
    if noise is None:
        noise = implied_noise(generator, detail)
    if isinstance(noise_map, Image.Image):
        noise_map = np.asarray(noise_map.convert("L"), dtype=np.float32) / 255.0
    picture = _picture_of(image)
    options: dict[str, Any] = dict(
        noise=noise,
        noise_map=noise_map,
        seed=seed,
        tile=tile,
        device=device,
        backend=choose_backend(backend, device, precision),
        precision=precision,
    )
    result = (
        upscale_picture_to(generator, picture, request, **options)
        if request is not None
        else upscale_picture(generator, picture, scale=scale or 4, **options)
    )
    return _like_input(result, image)


def _picture_of(image: Image.Image | np.ndarray) -> Picture:
    """The decoded Picture of what :func:`upscale` was given."""
    if isinstance(image, Image.Image):
        return decode(image)
    if isinstance(image, np.ndarray):
        return picture_from_array(image)
    raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


def _like_input(result: Picture, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
    """``result`` as the type :func:`upscale` was given: a PIL image (an array where PIL has no mode for it)
    or an array of the input's dtype."""
    if isinstance(image, Image.Image):
        pil = encode(result, "TIFF" if result.bits == 32 else "PNG")
        if isinstance(pil, np.ndarray):  # 16-bit RGB(A) cannot be a PIL image: return the array instead
            return pil
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
    return Picture(
        color=color, alpha=data[..., -1] if has_alpha else None, bits=bits, mode="L" if color.shape[2] == 1 else "RGB"
    )


def array_from_picture(picture: Picture, dtype: np.dtype) -> np.ndarray:
    planes = picture.color if picture.alpha is None else np.concatenate([picture.color, picture.alpha[..., None]], 2)
    if planes.shape[2] == 1:
        planes = planes[..., 0]
    if dtype in (np.uint8, np.uint16):
        return quantise(planes, 8 if dtype == np.uint8 else 16)
    return planes.astype(dtype, copy=False)
