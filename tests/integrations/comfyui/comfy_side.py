"""The ComfyUI side of the pack's smoke test, run in a process of its own with ComfyUI's code on the path.

``python -m tests.integrations.comfyui.comfy_side SNAPSHOT WORK`` (from the repository root): loads ``WORK/custom_nodes/
comfyui-mgsr`` the way ComfyUI's ``nodes.load_custom_node`` does, gets the node through ``comfy_entrypoint``,
runs it as ComfyUI's executor would (a class clone, ``FUNCTION``, ComfyUI's real progress hook), runs the core
"Load Upscale Model" + "Upscale Image (using Model)" nodes on an mgsr file of ``WORK/models``, and writes what
it saw to ``WORK/seen.json`` and the images to ``WORK/*.npy`` for the test to compare with ``mgsr upscale``.

Why a process of its own: ComfyUI's top-level modules (``nodes``, ``utils``, ``server``, ``comfy``) would
shadow or clash with names in the test process, and importing ``comfy.model_management`` probes devices.
Why not the server: its requirements (the web frontend, transformers, ...) are the slow test's
(tests/integrations/comfyui/test_comfyui_server.py); this needs only what mgsr's test extra installs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from ...helpers import import_torchvision
from .helpers import comfy_image, comfy_mask


def load_like_comfyui(folder: Path):
    """A custom node folder imported as ComfyUI imports one (a module named by its path, from __init__.py)."""
    name = str(folder).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_node(node, **inputs):
    """One execution of a V3 node as ComfyUI's executor does it: a class clone, then its FUNCTION."""
    clone = node.PREPARE_CLASS_CLONE({})
    return getattr(clone, node.FUNCTION)(**inputs).result


def _pack_node(work: Path, seen: dict):
    """The pack's node through comfy_entrypoint, and what ComfyUI's /object_info would say of it."""
    pack = load_like_comfyui(work / "custom_nodes" / "comfyui-mgsr")
    seen["legacy_mapping_in_loader"] = hasattr(pack, "NODE_CLASS_MAPPINGS")  # would win over the entrypoint
    extension = asyncio.run(pack.comfy_entrypoint())
    nodes = asyncio.run(extension.get_node_list())
    schema = nodes[0].GET_SCHEMA()
    seen["schema"] = {"node_id": schema.node_id, "display_name": schema.display_name, "category": schema.category}
    seen["info"] = nodes[0].GET_NODE_INFO_V1()
    return nodes[0]


def main(snapshot: Path, work: Path) -> None:
    import_torchvision()  # spandrel imports it; see tests.helpers
    sys.path.append(str(snapshot))
    import comfy.options

    comfy.options.enable_args_parsing()  # as main.py does, with the flags the server test starts it with
    sys.argv = [sys.argv[0], "--cpu", "--base-directory", str(work)]
    import comfy.utils
    import folder_paths

    folder_paths.add_model_folder_path("upscale_models", str(work / "models"), is_default=True)
    progress: list[list[int]] = []
    comfy.utils.set_progress_bar_global_hook(
        lambda value, total, preview, node_id=None: progress.append([value, total])
    )
    seen: dict = {}
    node = _pack_node(work, seen)
    image = torch.from_numpy(comfy_image(work / "photo.png"))
    mask = torch.from_numpy(comfy_mask(work / "mask.png"))
    (out,) = run_node(node, image=image, model="pirm-r3", scale=4, detail=0.5, seed=3, noise_map=mask, tile=16)
    np.save(work / "node.npy", out.numpy())
    seen["progress"] = list(progress)

    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel, UpscaleModelLoader

    (loaded,) = run_node(UpscaleModelLoader, model_name="mine.safetensors")
    seen["core_tags"] = loaded.tags
    (core,) = run_node(ImageUpscaleWithModel, upscale_model=loaded, image=image)
    np.save(work / "core.npy", core.numpy())
    try:
        run_node(node, image=image, model="mine.safetensors", scale=2, detail=0.5, seed=0)
    except Exception as exc:  # noqa: BLE001 - what ComfyUI's executor catches and shows
        seen["error"] = {"type": type(exc).__name__, "message": str(exc)}
    (work / "seen.json").write_text(json.dumps(seen, default=str))


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
    except Exception:  # noqa: BLE001 - any failure: its traceback for the test to show, and exit 1
        traceback.print_exc()
        sys.exit(1)
