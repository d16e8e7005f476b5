"""Upscaling real images at any size: tiling that changes nothing, noise control per level and per region.

Tiles overlap by a margin of context.  The noise is drawn once for the whole
(padded) image at every level's full resolution, from one seeded generator in
the same order as an untiled run, and each tile takes its crop of it; the
amplitude maps are cropped the same way.  So a tiled result equals the untiled
one: the only difference is the zero padding at a tile's inner edges, whose
influence has decayed to ~1e-5 after ``DEFAULT_MARGIN`` pixels.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from .errors import MgsrError
from .generator import GMGBP
from .images import Picture, decode, to_grey
from .inference import border_pad, levels_for
from .memory import reuse_freed_memory
from .openvino_backend import openvino_generator, resolve_backend
from .pretrained import load_generator

#: Context around each tile, in input pixels.  Measured on pirm-r3 at 4x, W = 1, 96x96 input in 48-pixel
#: tiles, max |tiled - untiled|: 0.06 at 8 pixels, 8e-3 at 12, 8e-4 at 16, 1e-4 at 20, 1.1e-5 at 24 (at 32:
#: float rounding).  24 keeps 8- and 16-bit outputs within rounding of the untiled result and costs 16 %
#: less context work than 32 for the automatic tile (tests/test_upscale.py checks tiled == untiled).
DEFAULT_MARGIN = 24
#: Peak working memory per (padded) output pixel of one forward pass: float32 CPU, pirm-r3 at 4x, measured
#: as peak RSS growth (benchmarks/upscale_bench.py, 128 -> 512 untiled: 2900 with freed memory kept for reuse,
#: 2450 without).  The automatic tile size keeps a tile under the budget.
BYTES_PER_OUTPUT_PIXEL = 2900
#: The same with the OpenVINO backend (fused ops, fewer live maps): 256 -> 1024 untiled, peak RSS growth 1.9 GB.
OPENVINO_BYTES_PER_OUTPUT_PIXEL = 1700
#: Working-set budget of the automatic tile: with the ~250 MB the process holds before (torch, the model),
#: the peak stays under 2 GB.
AUTO_MEMORY_BUDGET = 1750 * 1024**2
MIN_TILE = 32

NoiseSetting = float | Sequence[float]


def check_noise(noise: NoiseSetting, levels: int) -> list[float]:
    """W per level from one W or a list; an error for a wrong count, negative or non-finite values."""
    values = [float(noise)] if isinstance(noise, (int, float)) else [float(v) for v in noise]
    if len(values) == 1:
        values = values * levels
    if len(values) != levels:
        raise MgsrError(f"--noise has {len(values)} values but scale needs {levels} levels (one per 2x level)")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise MgsrError(f"noise amplitudes must be finite and >= 0, got {values}")
    return values


def _resize_plane(plane: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize a float (H, W) plane to (h, w) with Pillow (bounded memory at any size)."""
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.array(im.resize((size[1], size[0]), resample=resample), dtype=np.float32)


def auto_tile(scale: int, device: torch.device, margin: int = DEFAULT_MARGIN, backend: str = "torch") -> int:
    """The largest input tile side whose forward pass fits the memory budget of ``device`` with ``backend``."""
    budget = AUTO_MEMORY_BUDGET
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(free * 0.6)
    per_pixel = OPENVINO_BYTES_PER_OUTPUT_PIXEL if backend == "openvino" else BYTES_PER_OUTPUT_PIXEL
    side_out = (budget / per_pixel) ** 0.5
    return max(MIN_TILE, int(side_out / scale) - 2 * margin)


def _extent(length: int, parts: int, pad: int, margin: int, first: int, last: int) -> int:
    """Computed extent of pieces ``first..last`` of ``length`` cut in ``parts`` (context clipped at the edges)."""
    step = math.ceil(length / parts)
    full = length + 2 * pad
    return sum(min(full, min(y + step, length) + pad + margin) - max(0, y + pad - margin)
               for y in range(first * step, min(length, (last + 1) * step), step))


def plan_tiles(height: int, width: int, tile: int, margin: int = 0, pad: int = 0) -> list[tuple[int, int, int, int]]:
    """Cover (height, width) with a grid of equal tiles: (y0, y1, x0, x1) each.

    A tile, with ``margin`` pixels of context (clipped to the image padded by
    ``pad``), holds at most ``(tile + 2 * margin) ** 2`` pixels: the memory
    bound.  Among the grids that respect it, the one computing the fewest
    pixels in all wins: the context is pure overhead, so strips can beat
    squares, and equal sizes avoid a thin remainder tile that pays its full
    context for little output.
    """
    limit = (tile + 2 * margin) ** 2

    def widest(length: int, parts: int) -> int:  # the first two pieces include the largest
        return max(_extent(length, parts, pad, margin, i, i) for i in range(min(parts, 2)))

    best: tuple[int, int, int] | None = None
    for rows in range(1, height + 1):
        if math.ceil(height / rows) == math.ceil(height / (rows - 1 or 1)) and rows > 1:
            continue  # same step as fewer rows
        sum_y = _extent(height, rows, pad, margin, 0, rows)
        if best is not None and sum_y * (width + 2 * pad) >= best[0]:
            break  # even a single column costs more than the best grid so far
        tall = widest(height, rows)
        lo, hi = 1, width  # fewest columns whose widest tile fits: the widest extent shrinks with more columns
        if tall * widest(width, hi) > limit and not (rows == height):
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if tall * widest(width, mid) <= limit else (mid + 1, hi)
        cost = sum_y * _extent(width, lo, pad, margin, 0, lo)
        if best is None or cost < best[0]:
            best = (cost, math.ceil(height / rows), math.ceil(width / lo))
    assert best is not None
    _, step_y, step_x = best
    ys = list(range(0, height, step_y))
    xs = list(range(0, width, step_x))
    return [(y, min(y + step_y, height), x, min(x + step_x, width)) for y in ys for x in xs]


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
    """Upscale an (H, W, 3) float image in [0, 1]; returns (sH, sW, 3) float32, not clamped.

    :param noise: W for all levels, or one W per 2x level (2x first).
    :param noise_map: (H, W) values in [0, 1] multiplying W per region, resized to each level.
    :param tile: input tile side in pixels; None processes the image whole.
    :param on_tile: called as ``on_tile(done, total)`` after each tile (progress bars).
    :param backend: ``torch``, ``openvino`` (CPU, ``pip install "mgsr[openvino]"``; same values to ~1e-5) or
        ``auto`` (OpenVINO on CPU when installed).
    """
    with torch.inference_mode(), reuse_freed_memory():
        return _super_resolve(model, rgb, scale=scale, noise=noise, noise_map=noise_map, seed=seed, tile=tile,
                              margin=margin, device=device, on_tile=on_tile, backend=backend)


def _super_resolve(
    model: GMGBP,
    rgb: np.ndarray,
    *,
    scale: int,
    noise: NoiseSetting,
    noise_map: np.ndarray | None,
    seed: int,
    tile: int | None,
    margin: int,
    device: str | torch.device,
    on_tile: Callable[[int, int], None] | None,
    backend: str,
) -> np.ndarray:
    device = torch.device(device)
    levels = levels_for(scale)
    amps = check_noise(noise, levels)
    height, width = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    padded = border_pad(x, scale)
    hp, wp = padded.shape[-2:]

    amplitudes: list[float | torch.Tensor] = list(amps)
    if noise_map is not None:
        if noise_map.shape != (height, width):
            noise_map = _resize_plane(noise_map, (height, width), Image.BILINEAR)
        padded_map = border_pad(torch.from_numpy(np.ascontiguousarray(noise_map, dtype=np.float32))[None, None], scale)
        amplitudes = [
            torch.from_numpy(_resize_plane(padded_map[0, 0].numpy(), (hp << j, wp << j), Image.BILINEAR))[None, None]
            * amps[j]
            for j in range(levels)
        ]
    noisy = noise_map is not None or any(a != 0 for a in amps)
    draws = model.draw_noise(padded, levels, torch.Generator().manual_seed(seed)) if noisy else None

    # NHWC lets oneDNN (and cuDNN) pick faster convolutions: 1.8x on a 2-core CPU, same values to rounding
    # (benchmarks/upscale_bench.py).  Converting the model's weights changes only their memory layout.
    model.to(memory_format=torch.channels_last)
    forward = None
    if resolve_backend(backend, device) == "openvino":
        forward = openvino_generator(model, levels)

    def run(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        crop = padded[..., y0:y1, x0:x1].to(device).contiguous(memory_format=torch.channels_last)
        z = None if draws is None else [d[..., y0 << j : y1 << j, x0 << j : x1 << j].to(device) for j, d in enumerate(draws)]
        w = [a if isinstance(a, float) else a[..., y0 << j : y1 << j, x0 << j : x1 << j].to(device)
             for j, a in enumerate(amplitudes)]
        if forward is not None:
            return forward(crop, w, z)
        return model(crop, levels, noise_amp=w, noise=z)[-1]

    out = np.empty((height * scale, width * scale, 3), dtype=np.float32)
    tiles = None if tile is None else plan_tiles(height, width, tile, margin, scale)
    if tiles is None or len(tiles) == 1:
        full = run(0, hp, 0, wp)
        c = scale * scale
        out[:] = full[0, :, c : c + height * scale, c : c + width * scale].permute(1, 2, 0).cpu().numpy()
        if on_tile:
            on_tile(1, 1)
        return out
    tiles = plan_tiles(height, width, tile, margin, scale)
    for i, (ty0, ty1, tx0, tx1) in enumerate(tiles):
        # tile bounds in padded coordinates, with context, clipped to the padded image
        ry0, ry1 = max(0, ty0 + scale - margin), min(hp, ty1 + scale + margin)
        rx0, rx1 = max(0, tx0 + scale - margin), min(wp, tx1 + scale + margin)
        part = run(ry0, ry1, rx0, rx1)
        oy, ox = (ty0 + scale - ry0) * scale, (tx0 + scale - rx0) * scale
        block = part[0, :, oy : oy + (ty1 - ty0) * scale, ox : ox + (tx1 - tx0) * scale]
        out[ty0 * scale : ty1 * scale, tx0 * scale : tx1 * scale] = block.permute(1, 2, 0).cpu().numpy()
        if on_tile:
            on_tile(i + 1, len(tiles))
    return out


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


@functools.lru_cache(maxsize=4)
def _cached_model(name: str, device: str) -> GMGBP:
    return load_generator(name, device=device)


def resolve_model(model: str | os.PathLike[str] | GMGBP, device: str | torch.device = "cpu") -> GMGBP:
    if isinstance(model, GMGBP):
        return model
    return _cached_model(str(model), str(device))


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
        noise = generator.card.default_noise if hasattr(generator, "card") else 0.0
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
        from .images import encode

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
