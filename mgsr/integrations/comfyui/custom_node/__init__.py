"""comfyui-mgsr: the loader ComfyUI finds in ``custom_nodes/`` (a link to, or a copy of, this folder).

It holds no node code: the nodes come from the mgsr installed in the Python that runs ComfyUI, so updating
mgsr updates the pack.  ComfyUI calls ``comfy_entrypoint`` (its current node API); importing it already
registers G-MGBP with spandrel, so the core "Load Upscale Model" lists and loads mgsr's files.
"""

import sys

try:
    from mgsr.integrations.comfyui import nodes
except ImportError as exc:  # mgsr (or a dependency) missing in ComfyUI's environment: say how to get it
    raise ImportError(
        f"comfyui-mgsr needs mgsr installed in the Python that runs ComfyUI ({sys.executable}): "
        f"run `{sys.executable} -m pip install -e PATH_TO_MGSR` ({exc})"
    ) from exc

nodes.register()
comfy_entrypoint = nodes.comfy_entrypoint

__all__ = ["comfy_entrypoint"]
