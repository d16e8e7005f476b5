"""Peak memory of a picture upscale: the final 8-bit image plus one tile's working set, nothing that grows more."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgsr.assembly.build import build_generator
from mgsr.model.weights import ModelCard, save_generator
from mgsr.recipe import structure_model_spec

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_bench.py"
SMALL = {  # working set ~140 B per output pixel, so a few dozen tiles outweigh one
    "features": 4,
    "channels": 3,
    "noise_channels": 1,
    "mu": 1,
    "classic_upscaler": {"type": "learned_bicubic"},
    "noise": {"type": "gaussian"},
    **{
        part: {"type": "dense", "layers": 1, "growth": 2, "bottleneck": 1}
        for part in ("analysis", "upscaling", "downscaling", "synthesis")
    },
}
MIB = 1024**2


def test_peak_is_the_final_image_plus_one_tile(tmp_path):
    spec = structure_model_spec(SMALL)
    torch.manual_seed(0)
    weights = save_generator(
        tmp_path / "small.safetensors", build_generator(spec).eval(), spec, ModelCard(name="small", default_noise=1.0)
    )
    # 8x of 128x96 in 48 tiles of 16 (margin 4): 1024x768x3 = 2.25 MiB of uint8 output, 9 MiB as float32
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--size",
            "128x96",
            "--scale",
            "8",
            "--tile",
            "16",
            "--margin",
            "4",
            "--model",
            str(weights),
            "--float",
            "--json",
            "--backend",
            "torch",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    picture, one_tile, assembled = runs["picture"], runs["tile"], runs["float"]
    if not picture["hwm_reset"]:
        pytest.skip("this kernel refuses to reset the resident-set high-water mark (/proc/self/clear_refs)")
    assert picture["final_bytes"] == 1024 * 768 * 3
    bound = picture["final_bytes"] + 1.5 * one_tile["increase"] + 2 * MIB
    assert picture["increase"] <= bound, runs
    # the bound has teeth: the same job assembled in float32 and converted at the end exceeds it
    assert assembled["increase"] > bound, runs
