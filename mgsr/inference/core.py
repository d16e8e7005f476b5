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

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from mgsr.errors import MgsrError
from mgsr.inference.noise import amplitude_region, base_seed, noise_region
from mgsr.inference.openvino import openvino_generator, resolve_backend
from mgsr.inference.tiles import DEFAULT_MARGIN, tile_regions
from mgsr.model.amplitude import check_amplitude
from mgsr.model.generator import GMGBP
from mgsr.number_formats import PRECISIONS
from mgsr.ops.precision import ieee_float32

#: W for every level, one W per 2x level (2x first), or per level a tensor broadcastable to its noise map.
NoiseSetting = float | Sequence[float]
#: (y0, y1, x0, x1) of a piece of the output, in output pixels.
Box = tuple[int, int, int, int]
#: Receives each finished piece of the output: ``sink(box, piece)``.
Sink = Callable[[Box, torch.Tensor], None]


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
    return [check_amplitude(v, f"noise {values}") for v in values]


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
        rounding, faster: README, "Speed on CPU") or ``auto`` (OpenVINO on CPU when installed).
    :param precision: ``fp32`` (default), ``bf16`` or ``fp16``: the filter blocks run under ``torch.autocast``
        in that type, the image path (classic upscaler, residual sums, the first convolution) stays float32;
        fp32 is IEEE float32 on CUDA too (no TF32).  For GPUs: on a CPU without bf16/fp16 instructions both
        are several times slower than fp32 (README, "GPU precision").
    :param sink: when given, each finished piece of the output goes to ``sink(box, piece)`` -- ``box`` its
        (y0, y1, x0, x1) in output pixels, ``piece`` (N, C, y1 - y0, x1 - x0) float32 on the run device --
        and nothing is assembled (``None`` is returned): the caller keeps only what it converts the pieces to.
    :param noise_origin: (row, column) of ``lr``'s top left pixel in a larger image: the seeded noise is that
        image's at this place, so a crop upscaled alone (a preview) has the grain of the whole result there.
    """
    levels = levels_for(scale)
    amps = check_noise(model.default_noise if noise_amp is None else noise_amp, levels)
    run_on = torch.device(device) if device is not None else lr.device
    dtype = check_precision(precision)
    forward = _forward_of(model, levels, backend, run_on, precision)
    height, width = lr.shape[-2], lr.shape[-1]
    padded = border_pad(lr, scale)
    inputs = _level_inputs(model, lr, scale, amps, noise_map, run_on, noise, seed, noise_origin)
    run = _tile_runner(model, padded, levels, amps, inputs, run_on, forward, dtype)
    assembly: Assembly | None = None
    give: Sink
    if sink is None:
        give = assembly = Assembly(lr, model.channels, scale)
    else:
        give = sink
    regions = tile_regions(height, width, None if tile is None else tile, margin, scale)
    for i, ((ty0, ty1, tx0, tx1), (ry0, ry1, rx0, rx1)) in enumerate(regions):
        part = run(ry0, ry1, rx0, rx1)
        oy, ox = (ty0 + scale - ry0) * scale, (tx0 + scale - rx0) * scale
        give(
            (ty0 * scale, ty1 * scale, tx0 * scale, tx1 * scale),
            part[..., oy : oy + (ty1 - ty0) * scale, ox : ox + (tx1 - tx0) * scale],
        )
        del part
        if on_tile:
            on_tile(i + 1, len(regions))
    return assembly.out if assembly is not None else None


def _level_inputs(
    model: GMGBP,
    lr: torch.Tensor,
    scale: int,
    amps: Sequence[float],
    noise_map: torch.Tensor | None,
    run_on: torch.device,
    noise: Sequence[torch.Tensor] | None,
    seed: int | None,
    origin: tuple[int, int],
) -> LevelInputs | None:
    """The per-level noise and W of :func:`upscale_tensor`'s input, or ``None`` when W is 0 everywhere (no map):
    then nothing is drawn."""
    if noise_map is None and all(a == 0 for a in amps):
        return None
    padded_map = None if noise_map is None else border_pad(_map_at(noise_map, lr.shape[-2], lr.shape[-1]), scale)
    explicit = list(noise) if noise is not None else None
    return LevelInputs(model, lr.shape[0], amps, padded_map, run_on, explicit=explicit, seed=seed, origin=origin)


def _tile_runner(
    model: GMGBP,
    padded: torch.Tensor,
    levels: int,
    amps: Sequence[float],
    inputs: LevelInputs | None,
    run_on: torch.device,
    forward: Callable[..., torch.Tensor] | None,
    dtype: torch.dtype,
) -> Callable[[int, int, int, int], torch.Tensor]:
    """``run(y0, y1, x0, x1)``: the network's last level for that region of the padded input, on ``run_on``,
    through ``forward`` (OpenVINO) when given, else eager PyTorch autocast to ``dtype``."""

    def run(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        crop = padded[..., y0:y1, x0:x1].to(run_on).contiguous(memory_format=torch.channels_last)
        z: list[torch.Tensor] | None = None
        w: list[float | torch.Tensor] = [float(a) for a in amps]
        if inputs is not None:
            z, w = inputs.all_levels(levels, (y0, y1, x0, x1))
        if forward is not None:
            return forward(crop, w, z)
        with ieee_float32(), torch.autocast(run_on.type, dtype=dtype, enabled=dtype != torch.float32):
            return model(crop, levels, noise_amp=w, noise=z)[-1].float()

    return run


def _map_at(noise_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A noise map as (N|1, 1, height, width) float32 (bilinear when its size differs from the input's)."""
    noise_map = torch.as_tensor(noise_map, dtype=torch.float32)
    noise_map = noise_map.view(1, 1, *noise_map.shape) if noise_map.dim() == 2 else noise_map
    if tuple(noise_map.shape[-2:]) != (height, width):
        noise_map = F.interpolate(noise_map, size=(height, width), mode="bilinear", align_corners=False)
    return noise_map


class LevelInputs:
    """Each level's unit noise and W over a region of the padded input, on the run device.

    The noise is drawn per fixed block from its own seed (:mod:`mgsr.inference.noise`), at the place
    ``origin`` puts the input in a larger image, or cut from ``explicit`` draws; W is the level's amplitude,
    times the padded noise map's region when there is one.
    """

    def __init__(
        self,
        model: GMGBP,
        batch: int,
        amps: Sequence[float],
        padded_map: torch.Tensor | None,
        run_on: torch.device,
        *,
        explicit: list[torch.Tensor] | None,
        seed: int | None,
        origin: tuple[int, int],
    ) -> None:
        self.model, self.batch, self.amps, self.padded_map, self.run_on = model, batch, amps, padded_map, run_on
        self.explicit, self.origin = explicit, origin
        self.base = base_seed(seed) if explicit is None else 0

    def level(self, j: int, box: Box) -> tuple[torch.Tensor, float | torch.Tensor]:
        """Level ``j``'s unit noise and W over the padded-input region ``box`` = (y0, y1, x0, x1)."""
        y0, y1, x0, x1 = box
        rows, cols = (y0 << j, y1 << j), (x0 << j, x1 << j)
        if self.explicit is not None:
            z = self.explicit[j][..., rows[0] : rows[1], cols[0] : cols[1]]
        else:
            oy, ox = self.origin[0] << j, self.origin[1] << j
            z = noise_region(
                self.model.noise_source,
                self.batch,
                self.model.noise_channels,
                self.base,
                j,
                (rows[0] + oy, rows[1] + oy),
                (cols[0] + ox, cols[1] + ox),
            )
        w: float | torch.Tensor = self.amps[j]
        if self.padded_map is not None:
            w = (amplitude_region(self.padded_map, j, rows, cols) * self.amps[j]).to(self.run_on)
        return z.to(self.run_on), w

    def all_levels(self, levels: int, box: Box) -> tuple[list[torch.Tensor], list[float | torch.Tensor]]:
        draws = [self.level(j, box) for j in range(levels)]
        return [z for z, _ in draws], [w for _, w in draws]


class Assembly:
    """The default sink: finished pieces assembled into one float32 output on the input's device."""

    def __init__(self, lr: torch.Tensor, channels: int, scale: int) -> None:
        self.lr, self.channels, self.scale = lr, channels, scale
        self.out: torch.Tensor | None = None

    def __call__(self, box: Box, piece: torch.Tensor) -> None:
        batch, height, width = self.lr.shape[0], self.lr.shape[-2], self.lr.shape[-1]
        if box == (0, height * self.scale, 0, width * self.scale):
            self.out = piece.to(self.lr.device)
            return
        if self.out is None:
            self.out = self.lr.new_empty((batch, self.channels, height * self.scale, width * self.scale))
        self.out[..., box[0] : box[1], box[2] : box[3]] = piece.to(self.lr.device)


def choose_backend(backend: str, device: torch.device | str, precision: str = "fp32") -> str:
    """``torch`` or ``openvino`` for ``backend`` (auto|torch|openvino) on ``device`` at ``precision``.

    OpenVINO runs in float32: ``auto`` takes it only at fp32, an explicit ``openvino`` with another
    precision is an error naming both.
    """
    chosen = resolve_backend(backend, device)
    if chosen == "openvino" and precision != "fp32":
        if backend == "openvino":
            raise MgsrError(
                f"backend 'openvino' runs in float32: use precision 'fp32' (not {precision!r}) or backend 'torch'"
            )
        chosen = "torch"  # auto: the reduced precision asked for wins over the faster float32 backend
    return chosen


def _forward_of(
    model: GMGBP, levels: int, backend: str, device: torch.device, precision: str
) -> Callable[..., torch.Tensor] | None:
    """The OpenVINO forward when ``backend`` resolves to it, else ``None`` (eager PyTorch)."""
    return openvino_generator(model, levels) if choose_backend(backend, device, precision) == "openvino" else None
