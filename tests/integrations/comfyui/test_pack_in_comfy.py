"""The pack inside ComfyUI's real code, without its server (CI's smoke test of the ComfyUI pack).

ComfyUI's own modules from the snapshot in ../shared/comfyui run here: ``comfy_api.latest`` (the node API the
pack is written in), ``comfy.utils`` (the progress bar), ``comfy.model_management`` (the device, the cancel
check), ``folder_paths`` and the core upscaling nodes of ``comfy_extras/nodes_upscale_model.py`` with
spandrel.  No stand-in replaces any of them; what is not run is ComfyUI's server and executor (the prompt
queue, the graph, LoadImage and SaveImage), which tests/integrations/comfyui/test_comfyui_server.py runs (slow: it needs
ComfyUI's full requirements in an environment of their own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import attrs
import numpy as np
import pytest

from mgsr.assembly.loading import load_generator
from mgsr.cli import main
from mgsr.model.weights import save_generator

from ...conftest import REPO
from .helpers import crop, differences, mask_png, mgsr_upscale, snapshot, to_8bit


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """Run tests/integrations/comfyui/comfy_side.py on a prepared folder; (what it saw, the folder)."""
    work = tmp_path_factory.mktemp("comfy")
    (work / "custom_nodes").mkdir()
    assert main(["comfyui", "install", str(work)]) == 0
    crop(work / "photo.png", (8, 4, 72, 76))
    mask_png(work / "mask.png", (64, 72))
    (work / "models").mkdir()
    mine = load_generator("pirm-r1")  # a file as training writes one: its own name and W, no curve
    save_generator(
        work / "models" / "mine.safetensors",
        mine,
        mine.spec,
        attrs.evolve(mine.card, name="mine", default_noise=0.02, curve=None),
    )
    shutil.copyfile(REPO / "pyproject.toml", work / "models" / "not-a-model.safetensors")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # nothing written into the shared snapshot
    done = subprocess.run(
        [sys.executable, "-m", "tests.integrations.comfyui.comfy_side", str(snapshot()), str(work)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads((work / "seen.json").read_text()), work


def test_comfyui_sees_the_node_as_specified(seen):
    saw, _ = seen
    assert not saw["legacy_mapping_in_loader"]  # so ComfyUI takes comfy_entrypoint
    assert saw["schema"] == {
        "node_id": "MgsrUpscale",
        "display_name": "Upscale Image (mgsr, detail)",
        "category": "image/upscaling",
    }
    required, optional = saw["info"]["input"]["required"], saw["info"]["input"]["optional"]
    assert list(required) == ["image", "model", "scale", "detail", "seed"] and list(optional) == ["noise_map", "tile"]
    assert required["image"][0] == "IMAGE" and optional["noise_map"][0] == "MASK" and optional["tile"][0] == "INT"
    assert required["model"][1]["options"] == ["pirm-r1", "pirm-r2", "pirm-r3", "mine.safetensors"]
    assert required["scale"][1]["options"] == [2, 4, 8]
    detail = required["detail"]
    assert detail[0] == "FLOAT" and {k: detail[1][k] for k in ("min", "max", "step", "default")} == {
        "min": 0.0,
        "max": 1.0,
        "step": 0.01,
        "default": 1.0,
    }
    assert required["seed"][0] == "INT" and saw["info"]["output"] == ["IMAGE"]


def test_the_node_equals_mgsr_upscale_and_moves_the_progress_bar_per_tile(seen, tmp_path):
    saw, work = seen
    node = np.load(work / "node.npy")
    assert node.shape == (1, 288, 256, 3)
    options = ("--detail", "0.5", "--seed", "3", "--noise-map", str(work / "mask.png"))
    whole = mgsr_upscale(work / "photo.png", tmp_path / "whole.png", *options, "--tile", "0")
    tiled = mgsr_upscale(work / "photo.png", tmp_path / "tiled.png", *options, "--tile", "16")
    # tiles of 16 with the float output's context: within one level of the untiled and the tiled command
    for reference in (whole, tiled):
        largest, share = differences(to_8bit(node[0]), reference)
        assert largest <= 1 and share < 1e-3, (largest, share)
    steps = saw["progress"]
    assert len(steps) > 1 and steps[-1][0] == steps[-1][1] == len(steps)  # ComfyUI's bar, once per tile
    assert [s[0] for s in steps] == list(range(1, len(steps) + 1))


def test_the_core_nodes_load_an_mgsr_file_with_its_cards_w(seen, tmp_path):
    saw, work = seen
    assert saw["core_tags"] == ["mine", "W=0.02"]
    core = np.load(work / "core.npy")
    expected = mgsr_upscale(
        work / "photo.png", tmp_path / "core.png", "--model", str(work / "models" / "mine.safetensors"), "--tile", "0"
    )
    largest, share = differences(to_8bit(core[0]), expected)
    assert largest <= 1 and share < 1e-3, (largest, share)  # ComfyUI blends its own (single) tile
    at_bundled_w = mgsr_upscale(work / "photo.png", tmp_path / "r1.png", "--model", "pirm-r1", "--tile", "0")
    assert differences(to_8bit(core[0]), at_bundled_w)[0] > 1  # W 0.02 is not pirm-r1's 0.0632


def test_an_error_is_mgsrs_one_line(seen):
    error = seen[0]["error"]
    assert error["type"] == "WeightsError"
    assert "model 'mine' has no perception-distortion curve" in error["message"]
    assert "mgsr calibrate --curve" in error["message"] and "\n" not in error["message"]
