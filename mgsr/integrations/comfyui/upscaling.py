"""The work of the ``MgsrUpscale`` node on ComfyUI's plain tensors, through mgsr's one inference path.

Why apart from the node: ComfyUI's IMAGE is a ``(B, H, W, C)`` float32 tensor in [0, 1] and its MASK a
``(B, H, W)`` or ``(H, W)`` one, so the upscale, the detail -> W rule, the mask's batch rule and the input
checks need no ComfyUI and are tested here alone; :mod:`mgsr.integrations.comfyui.nodes` only adds ComfyUI's device,
progress bar and cancel button.

Every image of a batch is upscaled on its own with the same seed, as ``mgsr upscale`` upscales each file of
a folder: image ``i`` of the output is what ``mgsr upscale`` makes of that picture alone (with a batch drawn
as one tensor, the noise of image 2 would depend on the batch it came in).  The result is float32 like any
ComfyUI image, so tiles get the context of a float output (:data:`~mgsr.inference.tiles.DEFAULT_MARGIN`):
tiled equals untiled to ~1e-5.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from mgsr.errors import MgsrError
from mgsr.inference.core import choose_backend
from mgsr.inference.pictures import super_resolve
from mgsr.inference.tiles import AUTO_MEMORY_BUDGET, BYTES_PER_OUTPUT_PIXEL, DEFAULT_MARGIN, auto_tile
from mgsr.model.detail import implied_noise
from mgsr.model.generator import GMGBP

#: the node's ``tile`` value that asks for mgsr's automatic tile (``--tile auto``); 0 is the whole image
AUTO_TILE = -1
#: ``on_tile(image, done, total)``: image ``image`` of the batch has finished ``done`` of its ``total`` tiles
TileCallback = Callable[[int, int, int], None]


@attrs.frozen
class Settings:
    """The node's knobs, as ``mgsr upscale`` names them: ``--scale``, ``--detail``, ``--seed``, ``--tile``."""

    scale: int = 4
    detail: float = 1.0
    seed: int = 0
    tile: int = AUTO_TILE
    backend: str = "auto"


def check_images(images: torch.Tensor) -> None:
    """An error saying what to do unless ``images`` is a ComfyUI IMAGE batch of RGB pictures."""
    if images.dim() != 4:
        raise MgsrError(
            f"image: expected a ComfyUI IMAGE batch (B, H, W, 3), got a tensor of shape {tuple(images.shape)}"
        )
    if images.shape[-1] != 3:
        raise MgsrError(
            f"image has {images.shape[-1]} channels; mgsr upscales RGB (3 channels): split an alpha channel "
            "off first (the core 'Split Image with Alpha' node) and upscale the mask with 'Upscale Image'"
        )


def masks_for(noise_map: torch.Tensor | None, batch: int) -> list[torch.Tensor | None]:
    """The W map of each of ``batch`` images: one ComfyUI MASK for all, or one per image.

    Values multiply W as ``--noise-map``'s do (white = the detail's W, black = 0); a map of another size
    than its image is resized to it bilinearly, as ``--noise-map`` is.
    """
    if noise_map is None:
        return [None] * batch
    maps = noise_map.unsqueeze(0) if noise_map.dim() == 2 else noise_map
    if maps.dim() != 3:
        raise MgsrError(f"noise_map: expected a ComfyUI MASK (B, H, W), got a tensor of shape {tuple(noise_map.shape)}")
    if maps.shape[0] not in (1, batch):
        raise MgsrError(
            f"noise_map holds {maps.shape[0]} masks for {batch} images: give one mask for all of them or one per image"
        )
    maps = maps.detach().to("cpu", torch.float32).clamp(0, 1)
    return [maps[i if maps.shape[0] > 1 else 0] for i in range(batch)]


def tile_for(settings: Settings, device: torch.device) -> int | None:
    """The input tile side ``upscale_tensor`` gets: ``None`` (whole), the node's value, or mgsr's auto tile."""
    if settings.tile == 0:
        return None
    if settings.tile == AUTO_TILE:
        backend = choose_backend(settings.backend, device)
        return auto_tile(settings.scale, device, DEFAULT_MARGIN, backend=backend)
    if settings.tile < 0:
        raise MgsrError(f"tile {settings.tile}: give a tile side in pixels, 0 for the whole image or -1 for auto")
    return settings.tile


def working_memory(settings: Settings, height: int, width: int) -> int:
    """Bytes one forward pass of these settings needs at most: what a host should free before the run.

    A tile's padded region at the output's size times the measured peak per output pixel; the automatic tile
    is sized to mgsr's budget, so that is its bound.
    """
    if settings.tile == AUTO_TILE:
        return AUTO_MEMORY_BUDGET
    rows, cols = (height, width) if settings.tile == 0 else (min(height, settings.tile), min(width, settings.tile))
    pad = 2 * (DEFAULT_MARGIN + settings.scale)
    return BYTES_PER_OUTPUT_PIXEL * (rows + pad) * (cols + pad) * settings.scale**2


def upscale_images(
    generator: GMGBP,
    images: torch.Tensor,
    settings: Settings,
    *,
    noise_map: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    on_tile: TileCallback | None = None,
) -> torch.Tensor:
    """Upscale a ComfyUI IMAGE batch: ``(B, H, W, 3)`` -> ``(B, sH, sW, 3)`` float32 in [0, 1], on the CPU.

    Each image goes through :func:`~mgsr.inference.pictures.super_resolve`, the function ``mgsr upscale``
    runs, written straight into its place in the output (no second float copy of a large result).
    """
    check_images(images)
    device = torch.device(device)
    noise = implied_noise(generator, settings.detail)
    maps = masks_for(noise_map, images.shape[0])
    tile = tile_for(settings, device)
    backend = choose_backend(settings.backend, device)
    batch, height, width = images.shape[:3]
    out = torch.empty((batch, height * settings.scale, width * settings.scale, 3), dtype=torch.float32)
    for i, amplitude in enumerate(maps):
        super_resolve(
            generator,
            images[i].detach().to("cpu", torch.float32).numpy(),
            scale=settings.scale,
            noise=noise,
            noise_map=None if amplitude is None else amplitude.numpy(),
            seed=settings.seed,
            tile=tile,
            margin=DEFAULT_MARGIN,
            device=device,
            on_tile=None if on_tile is None else _for_image(on_tile, i),
            backend=backend,
            out=out[i].numpy(),
        )
    return out.clamp_(0.0, 1.0)


def _for_image(on_tile: TileCallback, image: int) -> Callable[[int, int], None]:
    """``upscale_tensor``'s ``on_tile(done, total)`` for image ``image`` of the batch."""
    return lambda done, total: on_tile(image, done, total)
