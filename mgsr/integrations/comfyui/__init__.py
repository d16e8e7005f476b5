"""mgsr in ComfyUI: a node pack installed with mgsr.

ComfyUI loads a custom node pack from a folder in its ``custom_nodes/``; :data:`PACK_DIR` is that folder, a
two-line loader that imports :mod:`mgsr.integrations.comfyui.nodes` from the Python running ComfyUI, so the pack always
matches the installed mgsr (``mgsr comfyui install COMFYUI_DIR`` links or copies it there).

The modules: :mod:`.upscaling` does a node's work on ComfyUI's plain tensors (no ComfyUI needed, so it is
tested alone); :mod:`.files` finds mgsr's weights among ComfyUI's upscale models and registers G-MGBP with
spandrel so the core "Load Upscale Model" loads them with their own card; :mod:`.nodes` is the node itself and
imports ComfyUI's ``comfy_api``, so only ComfyUI (or a test with ComfyUI's code on the path) imports it.
Nothing here imports ComfyUI at import time.
"""

from __future__ import annotations

from pathlib import Path

#: the folder to put in ComfyUI's custom_nodes/ (its ``__init__.py`` is the whole loader)
PACK_DIR = Path(__file__).resolve().parent / "custom_node"
#: its name there: not an importable name, so it can never shadow the ``mgsr`` package on ComfyUI's path
PACK_NAME = "comfyui-mgsr"

__all__ = ["PACK_DIR", "PACK_NAME"]
