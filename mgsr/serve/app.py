"""The page of ``mgsr serve``: Gradio components wired to :mod:`mgsr.serve.handling`.

Only layout and plumbing live here.  Each event handler turns any failure into a
``gr.Error`` (a message in the page) so one bad request never stops the server.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from mgsr.errors import MgsrError
from mgsr.inference.core import levels_for
from mgsr.serve import handling, page
from mgsr.serve.handling import Catalog, public_message
from mgsr.serve.server import Server
from mgsr.serve.settings import SCALES
from mgsr.serve.uploads import Limits, Upload


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure becomes a message in the page; unexpected ones are also logged with their traceback.

    The message stays until the user closes it (a message that vanishes after seconds
    leaves a bare "Error" badge), and names no server path.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MgsrError as exc:
            raise gr.Error(public_message(str(exc)), duration=None, print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - a server must survive whatever one request does
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(
                public_message(f"this request failed ({type(exc).__name__}: {exc}); the server keeps running"),
                duration=None,
                print_exception=False,
            ) from None

    return wrapper


def build_app(server: Server) -> gr.Blocks:
    """The Blocks of the page; ``launch`` it (see :func:`mgsr.serve.launch`)."""
    catalog = server.catalog
    default = catalog.get(catalog.default)
    # the detail slider drives W where the model has a curve; W (Advanced) is the expert's way, and then the rest
    start = handling.model_start(catalog, default.label)
    # Gradio's own copies of uploads and outputs are deleted after an hour too
    with gr.Blocks(title="mgsr serve", analytics_enabled=False, delete_cache=(600, handling.KEEP_SECONDS)) as demo:
        gr.Markdown(page.INTRO)
        centre = gr.State(None)
        # requests for a preview, counted in the browser, and the one the shown preview answers
        wanted = gr.Number(0, precision=0, visible="hidden", elem_id="mgsr-wanted")
        shown = gr.Number(-1, precision=0, visible="hidden", elem_id="mgsr-shown")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image_file = gr.File(
                    label="Image (any mode mgsr upscale reads; kept byte for byte)",
                    file_types=["image"],
                    type="filepath",
                    elem_id="mgsr-image",
                )
                model = gr.Dropdown(catalog.labels, value=catalog.default, label="Model", elem_id="mgsr-model")
                with gr.Row():
                    scale = gr.Radio(list(SCALES), value=4, label="Scale", elem_id="mgsr-scale", scale=3)
                    # text, not a number box: empty must stay empty (the scale), and a bad entry gets mgsr's message
                    outscale = gr.Textbox(
                        "",
                        label="or any factor",
                        placeholder="e.g. 3 or 2.5; empty: the scale",
                        max_lines=1,
                        min_width=100,
                        scale=2,
                        elem_id="mgsr-outscale",
                    )
                detail = gr.Slider(
                    0.0,
                    1.0,
                    value=start["t"],
                    step=0.01,
                    label="Detail",
                    interactive=start["by"] == handling.BY_DETAIL,
                    elem_id="mgsr-detail",
                    info="0 = lowest distortion, 1 = the model's most detail (its recorded W)",
                )
                detail_w = gr.Markdown(
                    handling.detail_says(catalog, default.label, start["by"], start["t"], start["w"]),
                    elem_id="mgsr-detail-w",
                )
                by = gr.Textbox(start["by"], visible="hidden", elem_id="mgsr-by")
                with gr.Accordion("Advanced", open=False):
                    w = gr.Slider(
                        0.0,
                        1.0,
                        value=default.default_noise,
                        step=0.01,
                        label="W (noise amplitude), instead of detail",
                        info="moving it sets detail to match; default: the model's W",
                        elem_id="mgsr-w",
                    )
                    per_level_on = gr.Checkbox(False, label="W per 2x level (replaces W above)")
                    levels = [
                        gr.Slider(
                            0.0,
                            1.0,
                            value=default.default_noise,
                            step=0.01,
                            label=f"W at the {2 << j}x level",
                            visible=j < 2,
                        )
                        for j in range(3)
                    ]
                    seed = gr.Number(
                        0, precision=0, minimum=0, label="Seed (same seed, same bytes)", elem_id="mgsr-seed"
                    )
                    mask_file = gr.File(
                        label="Mask image instead of painting (white = W, black = 0)",
                        file_types=["image"],
                        type="filepath",
                    )
            with gr.Column(scale=2):
                gr.Markdown(page.LEGEND, elem_id="mgsr-legend")
                # opaque paint: what the stroke looks like is what it does (black = no added detail)
                editor = gr.ImageEditor(
                    label="Paint regions (see the legend above)",
                    type="numpy",
                    sources=(),
                    transforms=(),
                    layers=False,
                    brush=gr.Brush(
                        colors=["#000000", "#ffffff", "#808080"], default_color="#000000", color_mode="fixed"
                    ),
                    eraser=gr.Eraser(),
                    height=420,
                    format="png",
                    elem_id="mgsr-editor",
                )
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                chooser = gr.Image(
                    label="Preview crop (click to move)", interactive=False, height=260, elem_id="mgsr-crop"
                )
                preview_btn = gr.Button("Refresh the preview", variant="secondary")
            with gr.Column(scale=2):
                status = gr.HTML("", elem_id="mgsr-preview-status")
                preview_view = gr.ImageSlider(
                    label="Preview: bicubic | mgsr", format="png", height=340, interactive=False, elem_id="mgsr-preview"
                )
                caption = gr.Markdown("", elem_id="mgsr-preview-caption")
        run_btn = gr.Button("Upscale the whole image", variant="primary")
        full_view = gr.ImageSlider(
            label="Result: bicubic | mgsr (drag the divider)",
            format="png",
            interactive=False,
            max_height=700,
            elem_id="mgsr-result",
        )
        with gr.Row():
            downloads = gr.File(label="Download: result PNG (and the mask)", file_count="multiple", interactive=False)
            command = gr.Textbox(
                label="The same with mgsr upscale (mask saved alongside)",
                lines=2,
                interactive=False,
                buttons=["copy"],
                elem_id="mgsr-command",
            )

        knobs = [image_file, model, scale, outscale, by, detail, w, per_level_on, *levels, seed, editor, mask_file]

        def chooser_view(upload: Upload, scale_value: Any, out_value: Any, point: tuple[float, float] | None) -> Any:
            side = handling.crop_side(server.preview_side, handling.output_factor(scale_value, out_value))
            return handling.crop_outline(upload.display, handling.crop_box(upload.picture.size, point, side))

        @_guarded
        def on_image(path: str | None, scale_value: Any, out_value: Any) -> tuple[Any, Any, Any]:
            if not path:
                return None, None, None
            upload = server.upload(path)
            return (
                {"background": upload.display, "layers": [], "composite": upload.display},
                chooser_view(upload, scale_value, out_value, None),
                None,
            )

        @_guarded
        def on_scale(path: str | None, scale_value: Any, out_value: Any, point: Any) -> tuple[Any, ...]:
            count = levels_for(int(scale_value))
            view = chooser_view(server.upload(path), scale_value, out_value, point) if path else None
            return (*(gr.Slider(visible=j < count) for j in range(3)), view)

        @_guarded
        def on_outscale(path: str | None, scale_value: Any, out_value: Any, point: Any) -> tuple[Any, Any]:
            """A factor picks its level (the Scale shown follows it); the crop box follows the factor."""
            level = handling.level_for_output(scale_value, out_value)
            view = chooser_view(server.upload(path), level, out_value, point) if path else gr.skip()
            return level, view

        @_guarded
        def on_select(path: str | None, scale_value: Any, out_value: Any, evt: gr.SelectData) -> tuple[Any, Any]:
            upload = server.upload(path)
            factor = handling.chooser_factor(upload.picture.size)
            point = (float(evt.index[0]) / factor, float(evt.index[1]) / factor)
            return point, chooser_view(upload, scale_value, out_value, point)

        # The preview reads only ``by`` and the control it names, both set in the browser with the request for
        # it; the other control and the line beside detail follow from the server, for the eye only.
        @_guarded
        def on_detail(model_label: str, t: float) -> tuple[Any, str]:
            """The user moved detail: the W slider and the line beside detail show the W it means."""
            noise = catalog.noise_for_detail(model_label, t)
            return noise, handling.detail_says(catalog, model_label, handling.BY_DETAIL, t, noise)

        @_guarded
        def on_w(model_label: str, w_value: float) -> tuple[Any, str]:
            """The user set W itself: detail shows where that W is on the model's scale."""
            t = catalog.detail_for_noise(model_label, w_value)
            return (
                gr.skip() if t is None else round(t, 3),
                handling.detail_says(catalog, model_label, handling.BY_W, t or 0.0, w_value),
            )

        @_guarded
        def on_model(model_label: str) -> tuple[Any, str]:
            """A new model: detail is usable only where it has a curve; the line beside says what W means."""
            k = handling.model_start(catalog, model_label)
            return (
                gr.Slider(interactive=k["by"] == handling.BY_DETAIL),
                handling.detail_says(catalog, model_label, k["by"], k["t"], k["w"]),
            )

        @_guarded
        def on_preview(
            path,
            model_label,
            scale_value,
            out_value,
            by_value,
            t,
            w_value,
            per_on,
            w1,
            w2,
            w3,
            seed_value,
            editor_value,
            mask_path,
            point,
            request,
        ):  # noqa: ANN001 - Gradio's values
            if not path:
                return None, "", request
            upload = server.upload(path)
            settings = server.settings(
                model_label, scale_value, out_value, by_value, t, w_value, per_on, w1, w2, w3, seed_value
            )
            mask = server.mask(upload, editor_value, mask_path, handling.request_folder(server.work))
            images, made_with = server.refresh_preview(upload, settings, mask, tuple(point) if point else None)
            return images, made_with, request

        @_guarded
        def on_run(
            path,
            model_label,
            scale_value,
            out_value,
            by_value,
            t,
            w_value,
            per_on,
            w1,
            w2,
            w3,
            seed_value,
            editor_value,
            mask_path,
            progress=gr.Progress(),  # noqa: B008 - Gradio injects progress through this default
        ):
            upload = server.upload(path)
            settings = server.settings(
                model_label, scale_value, out_value, by_value, t, w_value, per_on, w1, w2, w3, seed_value
            )
            folder = handling.request_folder(server.work)
            mask = server.mask(upload, editor_value, mask_path, folder)
            progress(0.0, desc="loading the model")
            result = handling.upscale_full(
                catalog,
                upload,
                settings,
                mask,
                folder,
                on_tile=lambda done, total: progress(done / total, desc=f"tile {done}/{total}"),
            )
            files = [str(result.output)] + ([str(result.mask)] if result.mask else [])
            return (result.before, result.after), files, result.command

        def stale_after(*events: Callable[..., Any]) -> None:
            """Each of these events changes what the preview should show: mark it out of date, ask for a new one."""
            for event in events:
                event(None, [wanted], [wanted, status], js=page.MARK_JS, queue=False, show_progress="hidden")

        # a new model brings its own W and detail (t of that W, by detail where it has a curve), set in the
        # browser with the request for a preview (no round trip, so no preview is made with half of them)
        model_knobs = {label: handling.model_start(catalog, label) for label in catalog.labels}
        model.change(
            None,
            [model, wanted],
            [w, *levels, detail, by, wanted, status],
            queue=False,
            show_progress="hidden",
            js=f"(label, n) => {{ const k = {json.dumps(model_knobs)}[label]; "
            f"return [k.w, {', '.join('k.w' for _ in levels)}, k.t, k.by, {page.NEXT}, "
            f"{json.dumps(page.STALE)}]; }}",
        )
        quick = dict(queue=False, show_progress="hidden", trigger_mode="always_last", api_visibility="private")
        model.change(on_model, [model], [detail, detail_w], **quick)
        # .input is the user's own move (mouse, keys, a typed number), never the other control's update: no loop.
        # Which control the user moved is set in the browser; its change asks for a preview once it is set
        # (a preview asked for by the control's own change may still read the old one: it is then not current).
        for control, mode in ((detail, handling.BY_DETAIL), (w, handling.BY_W)):
            control.input(None, None, [by], queue=False, show_progress="hidden", js=f"() => {json.dumps(mode)}")
        detail.input(on_detail, [model, detail], [w, detail_w], **quick)
        w.input(on_w, [model, w], [detail, detail_w], **quick)
        scale.change(on_scale, [image_file, scale, outscale, centre], [*levels, chooser], api_visibility="private")
        # a factor sets the level it needs; a level picked by the user empties the factor
        outscale.change(on_outscale, [image_file, scale, outscale, centre], [scale, chooser], **quick)
        scale.input(None, None, [outscale], js="() => ''", queue=False, show_progress="hidden")
        # a new image or crop place: out of date at once, a new preview once the server has taken it
        loaded = image_file.change(on_image, [image_file, scale, outscale], [editor, chooser, centre], api_name="load")
        moved = chooser.select(on_select, [image_file, scale, outscale], [centre, chooser], api_visibility="private")
        for event in (image_file.change, chooser.select):
            event(None, None, [status], js=f"() => {json.dumps(page.STALE)}", queue=False, show_progress="hidden")
        stale_after(
            loaded.then,
            moved.then,
            w.change,
            detail.change,
            by.change,
            scale.change,
            outscale.change,
            per_level_on.change,
            seed.change,
            mask_file.change,
            *(level.change for level in levels),
            editor.change,
            editor.input,
            editor.apply,
            preview_btn.click,
        )
        # one preview at a time; changes during one collapse into a single next one (always_last)
        made = wanted.change(
            on_preview,
            knobs + [centre, wanted],
            [preview_view, caption, shown],
            api_name="preview",
            trigger_mode="always_last",
            show_progress="minimal",
        )
        made.success(None, [wanted, shown, preview_view], [status], js=page.SETTLE_JS, queue=False)
        made.failure(None, None, [status], js=page.FAILED_JS, queue=False)
        run_btn.click(on_run, knobs, [full_view, downloads, command], api_name="upscale")
    return demo


def make_server(
    models: list[str], device: str, limits: Limits, work: Path, preview_side: int = handling.DEFAULT_PREVIEW_SIDE
) -> Server:
    """The server state; also makes Pillow's decompression-bomb limit ours for this process.

    Uploads meet ``--max-pixels`` first, in mgsr's words (:func:`mgsr.serve.uploads.check_limits`).
    Gradio decodes what the client sends for the painting layers itself; Pillow refuses there
    whatever is over ``max_pixels`` too (its warning made an error), so the two limits agree.
    ``device`` may be ``auto``; ``server.catalog.device`` is what it resolved to.
    """
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    return Server(Catalog(models, device), limits, work, preview_side)


def theme() -> gr.themes.Base:
    """System fonts only: the page makes no request to any other site."""
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "SFMono-Regular", "monospace"]
    )


def launch(server: Server, host: str, port: int, *, block: bool = True) -> tuple[gr.Blocks, str]:
    """Start serving; returns the Blocks and the local URL (``block=False`` returns at once)."""
    demo = build_app(server)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=server.limits.max_bytes,
        allowed_paths=[str(server.work)],
        ssr_mode=False,
        share=False,
        quiet=True,
        prevent_thread_lock=not block,
        show_error=True,
        theme=theme(),
        css=page.CSS,
        head=page.HEAD,
        footer_links=[],
        pwa=False,
        mcp_server=False,
    )
    return demo, url


__all__ = ["Server", "build_app", "launch", "make_server"]
