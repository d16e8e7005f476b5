"""What the ComfyUI tests share: small pictures, `mgsr upscale` as the reference, and the ComfyUI snapshot.

The reference for every ComfyUI output is the command line itself (``mgsr upscale`` run in this process),
so "the node's output equals `mgsr upscale` of the same picture with the same settings" is checked against
what a user would run, not against a function the node also calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgsr.cli import main

from ...conftest import REPO

SAMPLE = REPO / "mgsr" / "samples" / "grace_hopper.png"
#: the ComfyUI snapshot beside the clone (shared/comfyui; MGSR_COMFYUI names another copy)
SNAPSHOT = Path(os.environ.get("MGSR_COMFYUI", REPO.parent / "shared" / "comfyui"))


def snapshot() -> Path:
    """The ComfyUI snapshot; its absence is an error naming the variable, as the reference data's is."""
    if not (SNAPSHOT / "main.py").is_file() or not (SNAPSHOT / "comfy_api" / "latest").is_dir():
        pytest.fail(f"ComfyUI snapshot not found at {SNAPSHOT}; set MGSR_COMFYUI to a ComfyUI checkout")
    return SNAPSHOT


def crop(path: Path, box: tuple[int, int, int, int]) -> Path:
    """A crop (left, top, right, bottom) of the sample photo, written as an RGB PNG at ``path``."""
    Image.open(SAMPLE).convert("RGB").crop(box).save(path)
    return path


def mask_png(path: Path, size: tuple[int, int]) -> Path:
    """A grey W map (width, height): a left-to-right ramp with a black disc, as one would paint it."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    values = np.round(255 * x / max(1, w - 1)).astype(np.uint8)
    values[(y - h / 2) ** 2 + (x - w / 3) ** 2 < (min(w, h) / 4) ** 2] = 0
    Image.fromarray(values, mode="L").save(path)
    return path


def comfy_image(*paths: Path) -> np.ndarray:
    """Pictures as ComfyUI's LoadImage makes them: (B, H, W, 3) float32, 8-bit values / 255."""
    return np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in paths])


def comfy_mask(path: Path) -> np.ndarray:
    """A grey PNG as ComfyUI's LoadImageMask reads its red channel: (1, H, W) float32."""
    return (np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)[..., 0] / 255.0)[None]


def mgsr_upscale(source: Path, out: Path, *options: str) -> np.ndarray:
    """``mgsr upscale SOURCE -o OUT OPTIONS`` (eager PyTorch, quiet); its 8-bit output as (H, W, 3)."""
    assert main(["upscale", str(source), "-o", str(out), "--backend", "torch", "-q", *options]) == 0
    return np.asarray(Image.open(out).convert("RGB"))


def to_8bit(image: np.ndarray, truncate: bool = False) -> np.ndarray:
    """A float image in [0, 1] as 8 bits: rounded as mgsr writes, or truncated as ComfyUI's SaveImage does
    (both in float32, as they compute: a product rounded in float64 instead lands on the other side of .5)."""
    scaled = np.clip(image.astype(np.float32), 0, 1) * np.float32(255)
    return (scaled if truncate else np.round(scaled)).astype(np.uint8)


def differences(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(largest difference, fraction of values that differ) between two 8-bit images of one shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(diff.max()), float((diff > 0).mean())
