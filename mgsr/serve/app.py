"""The page of ``mgsr serve``: Gradio components wired to :mod:`mgsr.serve.handling`.

Only layout and plumbing live here.  Each event handler turns any failure into a
``gr.Error`` (a message in the page) so one bad request never stops the server.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from mgsr.errors import MgsrError
from mgsr.inference.core import levels_for
from mgsr.serve import handling
from mgsr.serve.handling import Catalog, Mask, Settings
from mgsr.serve.uploads import Limits, Upload, open_upload

_CSS = """
#mgsr-command textarea { font-family: ui-monospace, monospace; }
footer { display: none !important; }
"""

_INTRO = """## mgsr — the perception–distortion knob
**W = 0**: the sharpest faithful upscale (lowest distortion).  **W = 1**: the most realistic detail.
Paint regions on the image to change W there (white = W, black = 0), click the small image to move the preview."""


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure becomes a message in the page; unexpected ones are also logged with their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MgsrError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - a server must survive whatever one request does
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"this request failed ({type(exc).__name__}: {exc}); the server keeps running",
                           print_exception=False) from None

    return wrapper


class Server:
    """The state shared by all requests: offered models, limits, the folder for uploads and results."""

    def __init__(self, catalog: Catalog, limits: Limits, work: Path, preview_side: int) -> None:
        self.catalog, self.limits, self.work, self.preview_side = catalog, limits, work, preview_side
        self._open = functools.lru_cache(maxsize=4)(self._open_uncached)

    def _open_uncached(self, path: str, stamp: tuple[int, int]) -> Upload:
        return open_upload(path, Path(path).name, self.work / "uploads", self.limits)

    def upload(self, path: str | None) -> Upload:
        if not path:
            raise MgsrError("upload an image first")
        info = os.stat(path)
        return self._open(str(path), (info.st_mtime_ns, info.st_size))

    def settings(self, model: str, scale: Any, w: float, per_level_on: bool, w1: float, w2: float, w3: float,
                 seed: Any) -> Settings:
        return Settings.make(model, scale, w, [w1, w2, w3] if per_level_on else None, seed)

    def mask(self, upload: Upload, editor: dict | None, mask_path: str | None, folder: Path) -> Mask | None:
        """An uploaded mask file wins over painting; no paint and no file means no mask."""
        stem = Path(upload.name).stem
        if mask_path:
            return handling.uploaded_mask(mask_path, Path(mask_path).name, self.work / "uploads", folder, stem,
                                          self.limits)
        layers = (editor or {}).get("layers") or []
        grey = handling.painted_mask(layers, upload.picture.size)
        return None if grey is None else handling.save_painted(grey, folder, stem)


def build_app(server: Server) -> gr.Blocks:
    """The Blocks of the page; ``launch`` it (see :func:`mgsr.serve.launch`)."""
    catalog = server.catalog
    default = catalog.get(catalog.default)
    # Gradio's own copies of uploads and outputs are deleted after an hour too
    with gr.Blocks(title="mgsr serve", analytics_enabled=False, delete_cache=(600, handling.KEEP_SECONDS)) as demo:
        gr.Markdown(_INTRO)
        centre = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image_file = gr.File(label="Image (any mode mgsr upscale reads; kept byte for byte)",
                                     file_types=["image"], type="filepath", elem_id="mgsr-image")
                model = gr.Dropdown(catalog.labels, value=catalog.default, label="Model")
                scale = gr.Radio([2, 4, 8], value=4, label="Scale")
                w = gr.Slider(0.0, 1.0, value=default.default_noise, step=0.01, label="W (noise amplitude)",
                              info="0 = lowest distortion, 1 = most detail; default: the model's W",
                              elem_id="mgsr-w")
                with gr.Accordion("Advanced", open=False):
                    per_level_on = gr.Checkbox(False, label="W per 2x level (replaces W above)")
                    levels = [gr.Slider(0.0, 1.0, value=default.default_noise, step=0.01,
                                        label=f"W at the {2 << j}x level", visible=j < 2) for j in range(3)]
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed (same seed, same bytes)")
                    mask_file = gr.File(label="Mask image instead of painting (white = W, black = 0)",
                                        file_types=["image"], type="filepath")
            with gr.Column(scale=2):
                editor = gr.ImageEditor(label="Paint regions: white = W, black = 0 (unpainted = W)",
                                        type="numpy", sources=(), transforms=(), layers=False,
                                        brush=gr.Brush(colors=[("#000000", 0.6), ("#ffffff", 0.6), ("#808080", 0.6)],
                                                       default_color=("#000000", 0.6), color_mode="fixed"),
                                        eraser=gr.Eraser(), height=420, format="png", elem_id="mgsr-editor")
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                chooser = gr.Image(label="Preview crop (click to move)", interactive=False, height=260,
                                   elem_id="mgsr-crop")
                preview_btn = gr.Button("Preview", variant="secondary")
            with gr.Column(scale=2):
                preview_view = gr.ImageSlider(label="Preview: bicubic | mgsr", format="png", height=340,
                                              interactive=False, elem_id="mgsr-preview")
        run_btn = gr.Button("Upscale the whole image", variant="primary")
        full_view = gr.ImageSlider(label="Result: bicubic | mgsr (drag the divider)", format="png",
                                   interactive=False, max_height=700, elem_id="mgsr-result")
        with gr.Row():
            downloads = gr.File(label="Download: result PNG (and the mask)", file_count="multiple",
                                interactive=False)
            command = gr.Textbox(label="The same with mgsr upscale (mask saved alongside)", lines=2,
                                 interactive=False, buttons=["copy"], elem_id="mgsr-command")

        knobs = [image_file, model, scale, w, per_level_on, *levels, seed, editor, mask_file]

        def chooser_view(upload: Upload, scale_value: Any, point: tuple[float, float] | None) -> Any:
            side = max(8, server.preview_side // int(scale_value))
            return handling.crop_outline(upload.display, handling.crop_box(upload.picture.size, point, side))

        @_guarded
        def on_image(path: str | None, scale_value: Any) -> tuple[Any, Any, Any]:
            if not path:
                return None, None, None
            upload = server.upload(path)
            return ({"background": upload.display, "layers": [], "composite": upload.display},
                    chooser_view(upload, scale_value, None), None)

        @_guarded
        def on_model(label: str) -> tuple[Any, ...]:
            value = catalog.get(label).default_noise
            return (gr.Slider(value=value),) + tuple(gr.Slider(value=value) for _ in levels)

        @_guarded
        def on_scale(path: str | None, scale_value: Any, point: Any) -> tuple[Any, ...]:
            count = levels_for(int(scale_value))
            view = chooser_view(server.upload(path), scale_value, point) if path else None
            return (*(gr.Slider(visible=j < count) for j in range(3)), view)

        @_guarded
        def on_select(path: str | None, scale_value: Any, evt: gr.SelectData) -> tuple[Any, Any]:
            upload = server.upload(path)
            factor = handling.chooser_factor(upload.picture.size)
            point = (float(evt.index[0]) / factor, float(evt.index[1]) / factor)
            return point, chooser_view(upload, scale_value, point)

        @_guarded
        def on_preview(path, model_label, scale_value, w_value, per_on, w1, w2, w3, seed_value, editor_value,
                       mask_path, point):  # noqa: ANN001 - Gradio passes the components' values
            if not path:
                return None
            upload = server.upload(path)
            settings = server.settings(model_label, scale_value, w_value, per_on, w1, w2, w3, seed_value)
            folder = handling.request_folder(server.work)
            mask = server.mask(upload, editor_value, mask_path, folder)
            before, after = handling.preview(catalog, upload, settings, mask, tuple(point) if point else None,
                                             server.preview_side)
            return before, after

        @_guarded
        def on_run(path, model_label, scale_value, w_value, per_on, w1, w2, w3, seed_value, editor_value,
                   mask_path, progress=gr.Progress()):  # noqa: ANN001, B008 - Gradio's conventions
            upload = server.upload(path)
            settings = server.settings(model_label, scale_value, w_value, per_on, w1, w2, w3, seed_value)
            folder = handling.request_folder(server.work)
            mask = server.mask(upload, editor_value, mask_path, folder)
            progress(0.0, desc="loading the model")
            result = handling.upscale_full(catalog, upload, settings, mask, folder,
                                           on_tile=lambda done, total: progress(done / total,
                                                                                desc=f"tile {done}/{total}"))
            files = [str(result.output)] + ([str(result.mask)] if result.mask else [])
            return (result.before, result.after), files, result.command

        image_file.change(on_image, [image_file, scale], [editor, chooser, centre], api_name="load") \
            .then(on_preview, knobs + [centre], preview_view, api_visibility="private")
        model.change(on_model, model, [w, *levels], api_visibility="private")
        scale.change(on_scale, [image_file, scale, centre], [*levels, chooser], api_visibility="private")
        chooser.select(on_select, [image_file, scale], [centre, chooser], api_visibility="private") \
            .then(on_preview, knobs + [centre], preview_view, api_visibility="private")
        preview_btn.click(on_preview, knobs + [centre], preview_view, api_name="preview",
                          trigger_mode="always_last")
        for trigger in (w.release, scale.change, seed.submit, per_level_on.change, mask_file.change,
                        editor.apply, *(level.release for level in levels)):
            trigger(on_preview, knobs + [centre], preview_view, trigger_mode="always_last",
                    api_visibility="private", show_progress="minimal")
        run_btn.click(on_run, knobs, [full_view, downloads, command], api_name="upscale")
    return demo


def make_server(models: list[str], device: str, limits: Limits, work: Path,
                preview_side: int = handling.DEFAULT_PREVIEW_SIDE) -> Server:
    """The server state; also lowers Pillow's decompression-bomb limit to ours for this process.

    Gradio decodes what the client sends for the painting layers itself; with the
    limit lowered, a layer claiming more than twice ``max_pixels`` is refused as well.  ``device`` may be
    ``auto``; ``server.catalog.device`` is what it resolved to.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    return Server(Catalog(models, device), limits, work, preview_side)


def theme() -> gr.themes.Base:
    """System fonts only: the page makes no request to any other site."""
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "monospace"])


def launch(server: Server, host: str, port: int, *, block: bool = True) -> tuple[gr.Blocks, str]:
    """Start serving; returns the Blocks and the local URL (``block=False`` returns at once)."""
    demo = build_app(server)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_name=host, server_port=port, max_file_size=server.limits.max_bytes,
                            allowed_paths=[str(server.work)], ssr_mode=False, share=False, quiet=True,
                            prevent_thread_lock=not block, show_error=True, theme=theme(), css=_CSS,
                            footer_links=[], pwa=False, mcp_server=False)
    return demo, url


__all__ = ["Server", "build_app", "launch", "make_server"]
