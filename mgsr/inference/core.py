"""The one inference path: border padding, noise per level and per region, tiles, crop.

``mgsr upscale``, :func:`mgsr.upscale`, :func:`mgsr.upscale_tensor`, ``mgsr eval``/``sweep``/``calibrate`` and
training validation all call :func:`upscale_tensor`, so the same input, model, W and seed give the same output
through every entry point, on any device: the unit noise is drawn on the CPU (device generators differ
between CPU and CUDA) per fixed block of each level's map, each block from its own seed
(:mod:`mgsr.inference.noise`), so a tile draws only its own crop and any tiling sees the same noise.  Tiles
overlap by ``margin`` input pixels of context, whose influence has decayed to ~1e-5, so a tiled result equals
the untiled one to that.  Finished pieces go to a sink: the float32 assembly of :func:`upscale_tensor`, or
the caller's conversion straight into an 8/16-bit image (:mod:`mgsr.inference.pictures`), so no float32
copy of a whole large output need exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from mgsr.errors import MgsrError
from mgsr.inference.exact import ieee_float32
from mgsr.inference.noise import amplitude_region, base_seed, noise_region
from mgsr.inference.openvino import openvino_generator, resolve_backend
from mgsr.model.generator import GMGBP
from mgsr.number_formats import PRECISIONS

#: Context around each tile, in input pixels.  Measured on pirm-r3 at 4x, W = 1, 96x96 input in 48-pixel
#: tiles, max |tiled - untiled|: 0.06 at 8 pixels, 8e-3 at 12, 8e-4 at 16, 1e-4 at 20, 1.1e-5 at 24 (at 32:
#: float rounding).  24 keeps 8- and 16-bit outputs within rounding of the untiled result and costs 16 %
#: less context work than 32 for the automatic tile (tests/test_upscale.py checks tiled == untiled).
DEFAULT_MARGIN = 24
#: Context for 8-bit outputs up to 4x, where a grey level is 3.9e-3: measured on astronaut.png (160x160 crop,
#: pirm-r3, 4x, W = 1, 48-pixel tiles) against the untiled result: 16 -> max |diff| 1.5e-3, 0.11 % of the 8-bit
#: values one level off (none more); 20 -> 0.012 %; 24 -> 0.003 %.  16 computes 12 % less than 24 for a 16 Mpx
#: output (the tiles' context is most of the cost of tiling), which keeps large images at the small ones'
#: Mpx/s.  At 8x the context matters over more input pixels (72x72 crop, 24-pixel tiles: 16 -> max 4.2e-3,
#: 0.43 % one level off; 24 -> 4.7e-5, 0.007 %): 8x keeps 24.
MARGIN_8BIT = 16
#: Peak working memory per (padded) output pixel of one forward pass: float32 CPU, pirm-r3 at 4x, measured
#: as peak RSS growth (benchmarks/upscale_bench.py, 128 -> 512 untiled: 2900 with freed memory kept for reuse,
#: 2450 without; 3380 for one interior 8x tile, benchmarks/memory_bench.py).  The largest, 8x, sizes the tile
#: so that every scale stays under the budget.  Of it, ~1870 B/px are live tensors (a full-resolution dense
#: block's feature buffer, its bias+ReLU copy and the loop's last maps), the rest freed blocks the allocator keeps.
BYTES_PER_OUTPUT_PIXEL = 3400
#: The same with the OpenVINO backend (fused ops, fewer live maps; large tiles compiled for their shape, which
#: plans buffers statically): 1130 measured at 200x200 in, 4x; 1700 with dynamic shapes; with one constant per
#: use (benchmarks/memory_bench.py, one tile run whole): 1236 at 294x294 in, 4x, and 1228 at 126x126 in, 8x.
OPENVINO_BYTES_PER_OUTPUT_PIXEL = 1250
#: Working-set budget of the automatic tile: with the ~345 MiB the process holds before (torch, OpenVINO, the
#: model; measured by benchmarks/memory_bench.py) and the final 8-bit image, the peak stays under 2 GB up to
#: ~16 Mpx of output: a 16 Mpx 4x upscale peaks at 1948 MiB (benchmarks/upscale_bench.py --sizes 16; 2249 MiB
#: with the 1750 MiB budget assumed before: its interior tiles are the largest).
AUTO_MEMORY_BUDGET = 1550 * 1024**2
MIN_TILE = 32

#: W for every level, one W per 2x level (2x first), or per level a tensor broadcastable to its noise map.
NoiseSetting = float | Sequence[float]
#: (y0, y1, x0, x1) of a piece of the output, in output pixels.
Box = tuple[int, int, int, int]
#: Receives each finished piece of the output: ``sink(box, piece)``.
Sink = Callable[[Box, torch.Tensor], None]
#: ``precision`` -> the dtype the convolutions run in (under autocast).


def levels_for(scale: int) -> int:
    """Number of 2x levels for ``scale`` (2 -> 1, 4 -> 2, 8 -> 3, ...)."""
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"scale must be a power of two >= 2 (2, 4, 8, ...), got {scale}")
    return scale.bit_length() - 1


def border_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect ``pad`` pixels on each side as the release does; replicate when the image is too small to reflect."""
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


def check_noise(noise: NoiseSetting, levels: int) -> list[float]:
    """W per level from one W or a list; an error naming ``noise`` for a wrong count or a bad value."""
    values = [float(noise)] if isinstance(noise, (int, float)) else [float(v) for v in noise]
    if len(values) == 1:
        values = values * levels
    if len(values) != levels:
        raise MgsrError(f"noise has {len(values)} values but the scale needs {levels} levels (one per 2x level)")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise MgsrError(f"noise amplitudes must be finite and >= 0, got {values}")
    return values


def margin_for(bits: int, scale: int) -> int:
    """The context to give tiles of a picture written with ``bits`` per sample (8, 16, or 32 for float)."""
    return MARGIN_8BIT if bits == 8 and scale <= 4 else DEFAULT_MARGIN


def auto_tile(scale: int, device: torch.device | str, margin: int = DEFAULT_MARGIN, backend: str = "torch") -> int:
    """The largest input tile side whose forward pass fits the memory budget of ``device`` with ``backend``."""
    device = torch.device(device)
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
        if tall * widest(width, hi) > limit and rows != height:
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


def check_precision(precision: str) -> torch.dtype:
    """The autocast dtype of ``precision``; an error naming ``precision`` for an unknown one."""
    if precision not in PRECISIONS:
        raise MgsrError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


@torch.no_grad()
def upscale_tensor(
    model: GMGBP,
    lr: torch.Tensor,
    *,
    scale: int = 4,
    noise_amp: NoiseSetting | None = None,
    noise_map: torch.Tensor | None = None,
    noise: Sequence[torch.Tensor] | None = None,
    seed: int | None = 0,
    tile: int | None = None,
    margin: int = DEFAULT_MARGIN,
    device: torch.device | str | None = None,
    on_tile: Callable[[int, int], None] | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    sink: Sink | None = None,
    noise_origin: tuple[int, int] = (0, 0),
) -> torch.Tensor | None:
    """Upscale a ``(N, C, H, W)`` batch in [0, 1] by ``scale``; the result is not clamped.

    The input is padded by ``scale`` pixels (reflection) and ``scale * scale`` pixels are cut from each side
    of the output, as in the authors' release.

    :param noise_amp: W for all levels or one per 2x level; ``None`` takes the W recorded with the model.
    :param noise_map: (H, W) or (N|1, 1, H, W) values in [0, 1] multiplying W per region (resized to each level).
    :param noise: explicit unit draws at the padded resolutions (``z_j`` at ``2**j`` times the padded input).
    :param seed: seeds the unit noise, drawn per block (:mod:`mgsr.inference.noise`) on the CPU; ``None``
        takes the seed from torch's global generator.
    :param tile: input tile side in pixels; ``None`` processes the batch whole.
    :param device: where the network runs (default: ``lr``'s device); the result stays on ``lr``'s device.
    :param on_tile: called as ``on_tile(done, total)`` after each tile (progress bars).
    :param backend: ``torch``, ``openvino`` (CPU, ``pip install "mgsr[openvino]"``; the same values to float
        rounding, measured ~1.4x faster than eager on a 2-core EPYC) or ``auto`` (OpenVINO on CPU when installed).
    :param precision: ``fp32`` (default), ``bf16`` or ``fp16``: the filter blocks run under ``torch.autocast``
        in that type, the image path (classic upscaler, residual sums, the first convolution) stays float32;
        fp32 is IEEE float32 on CUDA too (no TF32).  For GPUs: on a CPU without bf16/fp16 instructions both
        are ~6x slower than fp32 (2-core EPYC, pirm-r3 at 4x).
    :param sink: when given, each finished piece of the output goes to ``sink(box, piece)`` -- ``box`` its
        (y0, y1, x0, x1) in output pixels, ``piece`` (N, C, y1 - y0, x1 - x0) float32 on the run device --
        and nothing is assembled (``None`` is returned): the caller keeps only what it converts the pieces to.
    :param noise_origin: (row, column) of ``lr``'s top left pixel in a larger image: the seeded noise is that
        image's at this place, so a crop upscaled alone (a preview) has the grain of the whole result there.
    """
    levels = levels_for(scale)
    if noise_amp is None:
        noise_amp = model.default_noise
    amps = check_noise(noise_amp, levels)
    run_on = torch.device(device) if device is not None else lr.device
    dtype = check_precision(precision)
    forward = _forward_of(model, levels, backend, run_on, precision)
    batch, height, width = lr.shape[0], lr.shape[-2], lr.shape[-1]
    padded = border_pad(lr, scale)
    hp, wp = padded.shape[-2:]
    padded_map = None
    if noise_map is not None:
        noise_map = torch.as_tensor(noise_map, dtype=torch.float32)
        noise_map = noise_map.view(1, 1, *noise_map.shape) if noise_map.dim() == 2 else noise_map
        if tuple(noise_map.shape[-2:]) != (height, width):
            noise_map = F.interpolate(noise_map, size=(height, width), mode="bilinear", align_corners=False)
        padded_map = border_pad(noise_map, scale)
    noisy = noise_map is not None or any(a != 0 for a in amps)
    explicit = list(noise) if noisy and noise is not None else None
    base = base_seed(seed) if noisy and explicit is None else 0

    def inputs(j: int, y0: int, y1: int, x0: int, x1: int) -> tuple[torch.Tensor, float | torch.Tensor]:
        """Level ``j``'s unit noise and W over the padded-input region (y0, y1, x0, x1), on the run device."""
        rows, cols = (y0 << j, y1 << j), (x0 << j, x1 << j)
        if explicit is not None:
            z = explicit[j][..., rows[0]: rows[1], cols[0]: cols[1]]
        else:
            oy, ox = noise_origin[0] << j, noise_origin[1] << j
            z = noise_region(model.noise_source, batch, model.noise_channels, base, j,
                             (rows[0] + oy, rows[1] + oy), (cols[0] + ox, cols[1] + ox))
        w = amps[j] if padded_map is None else (amplitude_region(padded_map, j, rows, cols) * amps[j]).to(run_on)
        return z.to(run_on), w

    def run(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        crop = padded[..., y0:y1, x0:x1].to(run_on).contiguous(memory_format=torch.channels_last)
        z, w = None, [float(a) for a in amps]
        if noisy:
            z, w = map(list, zip(*(inputs(j, y0, y1, x0, x1) for j in range(levels)), strict=True))
        if forward is not None:
            return forward(crop, w, z)
        with ieee_float32(), torch.autocast(run_on.type, dtype=dtype, enabled=dtype != torch.float32):
            return model(crop, levels, noise_amp=w, noise=z)[-1].float()

    out: torch.Tensor | None = None

    def keep(box: Box, piece: torch.Tensor) -> None:  # the default sink: assemble on lr's device
        nonlocal out
        if box == (0, height * scale, 0, width * scale):
            out = piece.to(lr.device)
            return
        if out is None:
            out = lr.new_empty((batch, model.channels, height * scale, width * scale))
        out[..., box[0]: box[1], box[2]: box[3]] = piece.to(lr.device)

    give = sink if sink is not None else keep
    tiles = [(0, height, 0, width)] if tile is None else plan_tiles(height, width, tile, margin, scale)

    def region(t: Box) -> Box:
        """Tile bounds in padded coordinates, with context, clipped to the padded image (the whole: no tiles)."""
        if len(tiles) == 1:
            return 0, hp, 0, wp
        return (max(0, t[0] + scale - margin), min(hp, t[1] + scale + margin),
                max(0, t[2] + scale - margin), min(wp, t[3] + scale + margin))

    def shape(t: Box) -> tuple[int, int]:
        y0, y1, x0, x1 = region(t)
        return y1 - y0, x1 - x0

    # tiles of one region shape run one after the other: a backend compiled per shape (OpenVINO's large
    # tiles) then compiles each shape once, not at every change between edge and interior tiles (16 Mpx
    # at 4x in 4 x 4 tiles: 4 compiles instead of 12, ~1 s each plus a fresh allocation)
    tiles.sort(key=shape)
    for i, (ty0, ty1, tx0, tx1) in enumerate(tiles):
        ry0, ry1, rx0, rx1 = region((ty0, ty1, tx0, tx1))
        part = run(ry0, ry1, rx0, rx1)
        oy, ox = (ty0 + scale - ry0) * scale, (tx0 + scale - rx0) * scale
        give((ty0 * scale, ty1 * scale, tx0 * scale, tx1 * scale),
             part[..., oy: oy + (ty1 - ty0) * scale, ox: ox + (tx1 - tx0) * scale])
        del part
        if on_tile:
            on_tile(i + 1, len(tiles))
    return out


def choose_backend(backend: str, device: torch.device | str, precision: str = "fp32") -> str:
    """``torch`` or ``openvino`` for ``backend`` (auto|torch|openvino) on ``device`` at ``precision``.

    OpenVINO runs in float32: ``auto`` takes it only at fp32, an explicit ``openvino`` with another
    precision is an error naming both.
    """
    chosen = resolve_backend(backend, device)
    if chosen == "openvino" and precision != "fp32":
        if backend == "openvino":
            raise MgsrError(f"backend 'openvino' runs in float32: use precision 'fp32' (not {precision!r}) "
                            "or backend 'torch'")
        chosen = "torch"  # auto: the reduced precision asked for wins over the faster float32 backend
    return chosen


def _forward_of(model: GMGBP, levels: int, backend: str, device: torch.device,
                precision: str) -> Callable[..., torch.Tensor] | None:
    """The OpenVINO forward when ``backend`` resolves to it, else ``None`` (eager PyTorch)."""
    return openvino_generator(model, levels) if choose_backend(backend, device, precision) == "openvino" else None
