"""Helpers shared by several test modules: tiny recipes, synthetic images, checkpoint comparisons."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import tomli_w
import torch
from PIL import Image

from mgsr.assembly.build import build
from mgsr.recipe import load_recipe
from mgsr.recipe.tables import read_recipe_table
from mgsr.registry import default_registry
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint
from mgsr.training.run import stage_trainer
from mgsr.training.trainer import Trainer

from .conftest import RECIPES

#: texture for smooth_rgb, seeded: the images are the same in every run
RNG = np.random.default_rng(0)


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels, a few dozen bytes on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def smooth_rgb(h: int, w: int) -> np.ndarray:
    """A photo-like test image: smooth gradients plus mild texture, uint8."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.3 * x * y], axis=2)
    return np.clip((base + 0.05 * RNG.random((h, w, 3))) * 255, 0, 255).astype(np.uint8)


def make_images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


TINY_BLOCK = {"type": "dense", "layers": 1, "growth": 4, "bottleneck": 2}


def tiny_recipe(tmp_path: Path, **training) -> Path:
    """The quickstart objective at toy size: fast enough to train a few steps in a test."""
    table = read_recipe_table(RECIPES / "quickstart.toml")
    table["model"].update(
        features=8, **{m: dict(TINY_BLOCK) for m in ("analysis", "upscaling", "downscaling", "synthesis")}
    )
    table["discriminator"].update(features=8, **{m: dict(TINY_BLOCK) for m in ("analysis", "pooling", "synthesis")})
    table["data"].update(patch_size=16, val_crop=32)
    table["training"] = {
        "from_scratch": True,
        "steps": 4,
        "batch_size": 4,
        "scales": [1, 2],
        "seed": 3,
        "deterministic": True,
        "log_every": 1,
        "validate_every": 2,
        "sample_every": 2,
        "checkpoint_every": 2,
        "keep_checkpoints": 10,
        **training,
    }
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(table))
    return path


def tiny_trainer(tmp_path: Path, overrides: list[str] = (), device: str = "cpu") -> Trainer:
    """A Trainer of :func:`tiny_recipe` (no validation) whose steps a test drives itself with ``train_step``."""
    registry = default_registry()
    recipe = load_recipe(tiny_recipe(tmp_path), registry, overrides=["data.val=[]", *overrides])
    torch.manual_seed(recipe.training.seed)
    built = build(recipe, registry, training=True)
    return stage_trainer(built, tmp_path / "run", with_data=False, device=device, progress=False)


def final_state(run: Path) -> dict:
    return load_checkpoint(list_checkpoints(run / "checkpoints")[-1])


def assert_same_state(a: dict, b: dict, exact: bool = True) -> None:
    assert a["step"] == b["step"]
    assert a.get("scaler") == b.get("scaler")  # fp16's loss scale and its growth counter
    for part in ("generator", "discriminator"):
        for key, tensor in a[part].items():
            if exact:
                assert torch.equal(tensor, b[part][key]), f"{part}.{key}"
            else:
                torch.testing.assert_close(tensor, b[part][key], rtol=1e-4, atol=1e-5, msg=f"{part}.{key}")
    for part in ("generator", "discriminator"):
        sa, sb = a["optimizers"][part]["state"], b["optimizers"][part]["state"]
        assert sa.keys() == sb.keys()
        for idx in sa:
            for name, value in sa[idx].items():
                if exact:
                    assert torch.equal(value, sb[idx][name]), f"optimizer {part}[{idx}].{name}"
                else:
                    torch.testing.assert_close(value, sb[idx][name], rtol=1e-3, atol=1e-6)


def import_torchvision():
    """torchvision, importable even where its compiled ops do not load against this torch.

    Why: the package index of our CI machines has only PyPI's CUDA build of torchvision 0.28.0, whose ``_C``
    extension does not load beside torch 2.13.0+cpu, and torchvision then fails at import while registering
    fake kernels for ``torchvision::nms``/``qnms``.  The comparisons that need it (spandrel, torchmetrics'
    LPIPS) use none of torchvision's compiled ops, so declaring those two op schemas (test-only) lets the real
    libraries run instead of being skipped.  A working torchvision is imported untouched.
    """
    import importlib
    import sys

    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(library)
    return importlib.import_module("torchvision")


_KEEP: list = []


#: the paper recipe's modules, each shrunk to a one-layer filter block by :func:`tiny_paper_recipe`
_PAPER_MODULES = (
    "model.analysis",
    "model.upscaling",
    "model.downscaling",
    "model.synthesis",
    "discriminator.analysis",
    "discriminator.pooling",
    "discriminator.synthesis",
)


def tiny_paper_recipe(*overrides: str) -> list[str]:
    """``--set`` arguments that shrink recipes/pirm_r3.toml to toy size (8 features, one-layer blocks, 16-pixel
    patches, 2x only, one step), then apply ``overrides`` (``key=value``, later ones win)."""
    small = [
        "model.features=8",
        "discriminator.features=8",
        "data.patch_size=16",
        "data.workers=0",
        "training.steps=1",
        "training.batch_size=2",
        "training.scales=[1]",
        "training.validate_every=10",
        "training.sample_every=10",
        "training.checkpoint_every=10",
    ]
    small += [f"{part}.{key}" for part in _PAPER_MODULES for key in ("layers=1", "growth=4", "bottleneck=2")]
    return [arg for item in [*small, *overrides] for arg in ("--set", item)]
