"""Clips in, clips out: every frame through the same path as a picture
(:func:`~mgsr.inference.pictures.upscale_picture`).

So tiles, W, noise maps, device, backend and precision mean for a frame what they mean for a photo.  The
noise is seeded by position (seed, level, block): with one seed for all frames (the default), W > 0 grain is
the same on every frame -- no flicker on a static shot -- but it stays fixed to the frame when the camera
pans.  ``seed_per_frame`` seeds frame ``i`` with ``seed + i``, for grain that changes with every frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from mgsr.inference.pictures import upscale_picture
from mgsr.io.images import Picture
from mgsr.io.video import DEFAULT_CRF, probe, transcode
from mgsr.model.generator import GMGBP


def upscale_video(
    model: GMGBP,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    scale: int = 4,
    seed: int = 0,
    seed_per_frame: bool = False,
    crf: int = DEFAULT_CRF,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    **options: Any,
) -> int:
    """Upscale every frame of ``source`` by ``scale`` into ``target``; frame times and audio kept.

    ``options`` are :func:`~mgsr.inference.pictures.upscale_picture`'s (``noise``, ``noise_map``, ``tile``,
    ``device``, ``backend``, ``precision``).  ``on_start(frames)`` is told the expected frame count (None when
    the container does not say), ``on_frame(i)`` is called after frame ``i`` (progress bars; an exception from
    it stops the job and leaves no file), ``on_note`` gets lines worth telling the user (audio re-encoded).
    Returns the number of frames written.
    """
    info = probe(source)
    if on_start is not None:
        on_start(info.frames)

    def convert(index: int, rgb: np.ndarray) -> np.ndarray:
        picture = Picture(color=rgb.astype(np.float32) / np.float32(255.0), bits=8, mode="RGB")
        result = upscale_picture(model, picture, scale=scale, seed=seed + index if seed_per_frame else seed, **options)
        if on_frame is not None:
            on_frame(index)
        return result.color

    return transcode(source, target, convert, (info.width * scale, info.height * scale), crf=crf, on_note=on_note)
