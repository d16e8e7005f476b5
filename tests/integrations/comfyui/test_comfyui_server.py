"""The pack in a running ComfyUI: workflows posted to /prompt, the saved PNGs against ``mgsr upscale``.

Slow (``python -m pytest -m slow tests/integrations/comfyui``): the first run builds ComfyUI's environment (about 4
minutes, see tests/integrations/comfyui/server.py), each server takes ~30 s to start on 2 busy cores.  The pack is
installed as a user installs it (``mgsr comfyui install BASE --weights``, a link in ``custom_nodes/``), the
pictures go through ComfyUI's own LoadImage, LoadImageMask, ImageBatch and SaveImage, and the progress bar
is read from ComfyUI's websocket.

Two references: ``mgsr upscale`` (what a user compares with; SaveImage truncates to 8 bits where mgsr rounds,
so values differ by one level at most, on about half of them), and :func:`mgsr.upscale` on the same float
picture, truncated as SaveImage truncates, which the node's saved PNG must equal byte for byte.
"""

from __future__ import annotations

import shutil

import attrs
import numpy as np
import pytest
from PIL import Image

import mgsr
from mgsr.assembly.loading import load_generator
from mgsr.cli import main
from mgsr.model.weights import save_generator

from .helpers import comfy_image, comfy_mask, crop, differences, mask_png, mgsr_upscale, snapshot, to_8bit
from .server import Listener, Server, comfy_python

pytestmark = pytest.mark.slow


def prepare_base(base) -> None:
    """ComfyUI's base directory: the pack and the bundled weights by the CLI, a trained-like file, the inputs."""
    (base / "custom_nodes").mkdir(parents=True)
    assert main(["comfyui", "install", str(base), "--weights"]) == 0
    mine = load_generator("pirm-r1")  # a file as training writes one: its own name and W, no curve
    card = attrs.evolve(mine.card, name="mine", default_noise=0.02, curve=None)
    save_generator(base / "models" / "upscale_models" / "mine.safetensors", mine, mine.spec, card)
    (base / "input").mkdir()
    crop(base / "input" / "photo.png", (8, 4, 72, 76))
    crop(base / "input" / "photo2.png", (30, 20, 94, 92))
    mask_png(base / "input" / "mask.png", (64, 72))


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    python = comfy_python(snapshot())
    base = tmp_path_factory.mktemp("comfyui")
    prepare_base(base)
    server = Server(python, snapshot(), base)
    print(f"\nComfyUI started in {server.startup_s:.1f} s")
    yield server
    server.stop()


def _load(image: str) -> dict:
    return {"class_type": "LoadImage", "inputs": {"image": image}}


def _save(node: str, prefix: str) -> dict:
    return {"class_type": "SaveImage", "inputs": {"images": [node, 0], "filename_prefix": prefix}}


def _mgsr(image: list, model: str, scale: int, detail: float, seed: int, **optional) -> dict:
    inputs = {"image": image, "model": model, "scale": scale, "detail": detail, "seed": seed, **optional}
    return {"class_type": "MgsrUpscale", "inputs": inputs}


def _report(name: str, saved, reference) -> tuple[int, float]:
    largest, share = differences(np.asarray(Image.open(saved).convert("RGB")), reference)
    print(f"{name}: largest difference {largest} grey level(s), {share:.4%} of values differ")
    return largest, share


def test_mgsr_node_workflow_equals_mgsr_upscale(comfy, tmp_path):
    listener = Listener(comfy)
    mask = ["2", 0]
    prompt = {
        "1": _load("photo.png"),
        "2": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}},
        "3": _mgsr(["1", 0], "pirm-r3", 4, 0.5, 3, noise_map=mask, tile=16),
        "4": _save("3", "tiled"),
        "5": _mgsr(["1", 0], "pirm-r3", 4, 0.5, 3, noise_map=mask, tile=0),
        "6": _save("5", "whole"),
        "7": _load("photo2.png"),
        "8": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["7", 0]}},
        "9": _mgsr(["8", 0], "pirm-r1", 2, 1.0, 0),
        "10": _save("9", "batch"),
    }
    entry = comfy.run(prompt, client_id=listener.client_id)
    listener.stop()
    assert entry["status"]["status_str"] == "success", entry["status"]
    photo, maskfile = comfy.base / "input" / "photo.png", comfy.base / "input" / "mask.png"
    cli = mgsr_upscale(photo, tmp_path / "cli.png", "--detail", "0.5", "--seed", "3", "--noise-map", str(maskfile))
    exact = mgsr.upscale(
        comfy_image(photo)[0],
        model="pirm-r3",
        scale=4,
        detail=0.5,
        seed=3,
        noise_map=comfy_mask(maskfile)[0],
        tile=None,
    )
    for node, name in (("4", "MgsrUpscale tile 16"), ("6", "MgsrUpscale whole")):
        (saved,) = comfy.saved(entry, node)
        largest, share = _report(f"{name} vs mgsr upscale", saved, cli)
        assert largest <= 1 and share < 0.7
        largest, share = _report(f"{name} vs mgsr.upscale truncated", saved, to_8bit(exact, truncate=True))
        assert largest <= 1 and share < 1e-3  # tiled = untiled to ~1e-5 before the 8 bits
    whole_saved = np.asarray(Image.open(comfy.saved(entry, "6")[0]).convert("RGB"))
    assert differences(whole_saved, to_8bit(exact, truncate=True)) == (0, 0.0)  # byte for byte
    batch = comfy.saved(entry, "10")
    assert len(batch) == 2
    for i, (saved, source) in enumerate(zip(batch, (photo, comfy.base / "input" / "photo2.png"), strict=True)):
        reference = mgsr_upscale(source, tmp_path / f"b{i}.png", "--model", "pirm-r1", "--scale", "2", "--detail", "1")
        largest, _ = _report(f"batch image {i} vs mgsr upscale", saved, reference)
        assert largest <= 1
    steps = [m["data"] for m in listener.messages() if m.get("type") == "progress" and m["data"]["node"] == "3"]
    print(f"progress of the tiled node: {[(s['value'], s['max']) for s in steps]}")
    assert len(steps) > 1 and steps[-1]["value"] == steps[-1]["max"] == len(steps)


def test_core_upscale_nodes_load_mgsr_files(comfy, tmp_path):
    loaders = comfy.get("/object_info/UpscaleModelLoader")["UpscaleModelLoader"]["input"]["required"]
    listed = loaders["model_name"][1]["options"]
    assert {"pirm-r1.safetensors", "pirm-r3.safetensors", "mine.safetensors"} <= set(listed)
    prompt = {"1": _load("photo.png")}
    for n, model in enumerate(("pirm-r3.safetensors", "mine.safetensors")):
        prompt[f"l{n}"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        prompt[f"u{n}"] = {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": [f"l{n}", 0], "image": ["1", 0]},
        }
        prompt[f"s{n}"] = _save(f"u{n}", f"core{n}")
    entry = comfy.run(prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    photo = comfy.base / "input" / "photo.png"
    for n, model in enumerate(("pirm-r3", str(comfy.base / "models" / "upscale_models" / "mine.safetensors"))):
        reference = mgsr_upscale(photo, tmp_path / f"c{n}.png", "--model", model, "--scale", "4")
        (saved,) = comfy.saved(entry, f"s{n}")
        largest, share = _report(f"core nodes with {model.rsplit('/', 1)[-1]} vs mgsr upscale", saved, reference)
        assert largest <= 1 and share < 0.7


def test_an_error_is_comfyuis_error_with_mgsrs_line_and_the_server_goes_on(comfy):
    entry = comfy.run(
        {"1": _load("photo.png"), "2": _mgsr(["1", 0], "mine.safetensors", 2, 0.5, 0), "3": _save("2", "e")}
    )
    assert entry["status"]["status_str"] == "error"
    (error,) = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert error["node_type"] == "MgsrUpscale" and error["exception_type"].endswith("WeightsError")
    first = error["exception_message"].strip()
    assert "model 'mine' has no perception-distortion curve" in first and "\n" not in first
    entry = comfy.run(
        {"1": _load("photo.png"), "2": _mgsr(["1", 0], "mine.safetensors", 2, 1.0, 0), "3": _save("2", "ok")}
    )
    assert entry["status"]["status_str"] == "success"  # detail 1 needs no curve: the card's W


def test_the_legacy_mapping_loads_too(tmp_path):
    """A custom node that exports only NODE_CLASS_MAPPINGS (what loaders before comfy_entrypoint read)."""
    base = tmp_path / "legacy"
    (base / "custom_nodes" / "mgsr-legacy").mkdir(parents=True)
    (base / "custom_nodes" / "mgsr-legacy" / "__init__.py").write_text(
        "from mgsr.integrations.comfyui import nodes\n\nnodes.register()\n"
        "NODE_CLASS_MAPPINGS = nodes.NODE_CLASS_MAPPINGS\n"
        "NODE_DISPLAY_NAME_MAPPINGS = nodes.NODE_DISPLAY_NAME_MAPPINGS\n"
    )
    (base / "input").mkdir()
    crop(base / "input" / "photo.png", (8, 4, 72, 76))
    server = Server(comfy_python(snapshot()), snapshot(), base)
    try:
        info = server.get("/object_info/MgsrUpscale")["MgsrUpscale"]
        assert info["display_name"] == "Upscale Image (mgsr, detail)" and info["category"] == "image/upscaling"
        entry = server.run({"1": _load("photo.png"), "2": _mgsr(["1", 0], "pirm-r2", 2, 0.25, 1), "3": _save("2", "l")})
        assert entry["status"]["status_str"] == "success", entry["status"]
        reference = mgsr_upscale(
            base / "input" / "photo.png",
            tmp_path / "l.png",
            "--model",
            "pirm-r2",
            "--scale",
            "2",
            "--detail",
            "0.25",
            "--seed",
            "1",
        )
        largest, _ = _report("legacy-registered node vs mgsr upscale", server.saved(entry, "3")[0], reference)
        assert largest <= 1
    finally:
        server.stop()
    shutil.rmtree(base / "output", ignore_errors=True)
