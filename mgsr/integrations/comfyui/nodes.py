"""The ComfyUI node ``MgsrUpscale``, "Upscale Image (mgsr, detail)", in ComfyUI's node API (``comfy_api.latest``).

Only ComfyUI imports this module (through the loader in :data:`mgsr.integrations.comfyui.PACK_DIR`): it needs ComfyUI's
``comfy_api``, ``comfy`` and ``folder_paths`` on the path.  The node adds to the core upscaling nodes what
they cannot set: the scale (2x, 4x, 8x from one set of weights), the detail (W along the model's curve, as
``--detail``), the seed, a painted W map (a MASK, as ``--noise-map``) and mgsr's seamless tiles; its work is
:func:`mgsr.integrations.comfyui.upscaling.upscale_images`, the same code as ``mgsr upscale``.

Two ways to register it, both exported: :func:`comfy_entrypoint` (the current API, which the shipped loader
uses) and :data:`NODE_CLASS_MAPPINGS` (for loaders that read only the legacy mapping; an ``io.ComfyNode``
runs the same through it).  :func:`register` adds G-MGBP to spandrel for the core "Load Upscale Model".
"""

from __future__ import annotations

import logging
from typing import Any

import comfy.model_management as model_management  # type: ignore[import-not-found]
import comfy.utils  # type: ignore[import-not-found]
import folder_paths  # type: ignore[import-not-found]
import torch
from comfy_api.latest import ComfyExtension, io  # type: ignore[import-not-found]

from mgsr.assembly.loading import resolve_model
from mgsr.inference.outsize import LEVEL_SCALES
from mgsr.integrations.comfyui import files
from mgsr.integrations.comfyui.upscaling import AUTO_TILE, Settings, upscale_images, working_memory
from mgsr.model.detail import implied_noise
from mgsr.model.generator import GMGBP

log = logging.getLogger("mgsr.integrations.comfyui")
#: ComfyUI's own limit for seeds (the core KSampler's)
MAX_SEED = 0xFFFFFFFFFFFFFFFF


def upscale_models() -> files.UpscaleModels:
    """ComfyUI's ``models/upscale_models`` folders (and any extra_model_paths.yaml adds), as ComfyUI lists them."""
    return files.UpscaleModels(
        lambda: folder_paths.get_filename_list("upscale_models"),
        lambda name: folder_paths.get_full_path("upscale_models", name),
    )


def register() -> None:
    """Make the core "Load Upscale Model" load mgsr's files (4x, each at its card's W); harmless twice."""
    if files.install(upscale_models()):
        log.info("mgsr: G-MGBP registered with spandrel: Load Upscale Model loads mgsr's .safetensors files")


def _inputs() -> list[Any]:
    """The node's inputs; the model list is read again whenever ComfyUI asks (a page refresh lists new files)."""
    return [
        io.Image.Input("image"),
        io.Combo.Input(
            "model",
            options=upscale_models().choices(),
            default="pirm-r3",
            tooltip="pirm-r1/r2/r3 (bundled) or an mgsr .safetensors file in models/upscale_models",
        ),
        io.Combo.Input("scale", options=list(LEVEL_SCALES), default=4, tooltip="2x, 4x or 8x from the same weights"),
        io.Float.Input(
            "detail",
            default=1.0,
            min=0.0,
            max=1.0,
            step=0.01,
            tooltip="how far along the model's perception-distortion curve: 0 = least distortion (W = 0), "
            "1 = the model's most detail (its W); as mgsr upscale --detail",
        ),
        io.Int.Input(
            "seed",
            default=0,
            min=0,
            max=MAX_SEED,
            # the page gives an input named "seed" a "randomize after each run" control unless told not to:
            # mgsr's seed stays where it is set (same seed, same image), as `mgsr upscale --seed` does
            control_after_generate=False,
            tooltip="seed of the detail's noise: same seed, same image",
        ),
        io.Mask.Input(
            "noise_map",
            optional=True,
            tooltip="where the detail goes (as --noise-map): white = the detail's W, black = W 0; paint it "
            "in the mask editor. Without a mask the detail's W is used everywhere",
        ),
        io.Int.Input(
            "tile",
            default=AUTO_TILE,
            min=AUTO_TILE,
            max=8192,
            optional=True,
            tooltip="input tile side in pixels (bounded memory, seamless: tiled = untiled); "
            "0 = the whole image at once, -1 = auto (the largest tile the device's memory allows)",
        ),
    ]


def _say(generator: GMGBP, model: str, settings: Settings, noise_map: torch.Tensor | None) -> None:
    """The server's console line for a run: the W the detail means (as ``--detail`` prints it), and a warning
    for an all-black map, which is what an unpainted Load Image's mask is (W = 0 everywhere, easily missed)."""
    name = generator.card.name if generator.card is not None else model
    noise = implied_noise(generator, settings.detail)
    log.info(
        "mgsr: %s at %dx, detail %g = W %.6g, seed %d", name, settings.scale, settings.detail, noise, settings.seed
    )
    if noise_map is not None and not bool(noise_map.any()):
        log.warning(
            "mgsr: noise_map is black everywhere, so W = 0 everywhere (an unpainted Load Image's mask is empty): "
            "paint where the detail goes in the mask editor, or leave noise_map unconnected"
        )


class MgsrUpscale(io.ComfyNode):
    """Upscale Image (mgsr, detail): G-MGBP with its scale, detail, seed and W map, as ``mgsr upscale``."""

    @classmethod
    def define_schema(cls) -> Any:
        return io.Schema(
            node_id="MgsrUpscale",
            display_name="Upscale Image (mgsr, detail)",
            category="image/upscaling",
            description="Super-resolve with G-MGBP (mgsr): 2x/4x/8x, the detail from least distortion (0) to "
            "most detail (1), and a mask saying where the detail goes. Same result as `mgsr upscale`.",
            inputs=_inputs(),
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        model: str,
        scale: int,
        detail: float,
        seed: int,
        noise_map: torch.Tensor | None = None,
        tile: int = AUTO_TILE,
    ) -> Any:
        """One run: the model on ComfyUI's device, memory freed for the tile first, the bar moved per tile.

        An mgsr error (a detail a curve-less model cannot map, a mask per image that does not match the batch)
        propagates as it is: ComfyUI shows its one line in the node's error box and the server goes on.
        """
        settings = Settings(scale=int(scale), detail=float(detail), seed=int(seed), tile=int(tile))
        device = model_management.get_torch_device()
        generator = resolve_model(upscale_models().resolve(model), device)
        _say(generator, model, settings, noise_map)
        model_management.free_memory(working_memory(settings, image.shape[1], image.shape[2]), device)
        bar = comfy.utils.ProgressBar(image.shape[0])

        def on_tile(index: int, done: int, total: int) -> None:
            bar.update_absolute(index * total + done, image.shape[0] * total)
            model_management.throw_exception_if_processing_interrupted()  # the Cancel button, between tiles

        out = upscale_images(generator, image, settings, noise_map=noise_map, device=device, on_tile=on_tile)
        return io.NodeOutput(out)


class MgsrExtension(ComfyExtension):
    """The pack for ComfyUI's extension loader: one node."""

    async def get_node_list(self) -> list[type[Any]]:
        return [MgsrUpscale]


async def comfy_entrypoint() -> MgsrExtension:
    """What ComfyUI calls when it loads the pack (the current node API)."""
    register()
    return MgsrExtension()


#: the legacy registration: for loaders that read only these mappings (then call :func:`register` too)
NODE_CLASS_MAPPINGS = {"MgsrUpscale": MgsrUpscale}
NODE_DISPLAY_NAME_MAPPINGS = {"MgsrUpscale": "Upscale Image (mgsr, detail)"}
