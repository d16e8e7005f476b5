"""The components of the ``mgsr serve`` page, placed; :mod:`mgsr.serve.wiring` wires them to the server.

Apart from the wiring so that each reads on its own: here what the page shows and where, there
what each change does.
"""

from __future__ import annotations

from typing import Any

import attrs
import gradio as gr

from mgsr.inference.outsize import LEVEL_SCALES
from mgsr.serve import page
from mgsr.serve.server import Server
from mgsr.serve.settings import BY_DETAIL, Knobs, detail_says


@attrs.define
class Page:
    """Every component the wiring needs, by name (set by :func:`lay_out`)."""

    image_file: Any = None
    model: Any = None
    scale: Any = None
    outscale: Any = None
    by: Any = None
    detail: Any = None
    detail_w: Any = None
    w: Any = None
    per_level_on: Any = None
    levels: list[Any] = attrs.Factory(list)
    seed: Any = None
    mask_file: Any = None
    calibration_file: Any = None
    calibration: Any = None  # the key of the calibration file loaded (State)
    automatic: Any = None  # the key of the calibration whose map is on, "" when off
    automatic_btn: Any = None
    plain_btn: Any = None
    automatic_note: Any = None
    editor: Any = None
    centre: Any = None
    wanted: Any = None
    shown: Any = None
    chooser: Any = None
    crop_moves: dict[str, Any] = attrs.Factory(dict)  # the keyboard's way to move the crop, by direction
    preview_btn: Any = None
    stroke_start: Any = None  # hidden: the pen went down on the editor (the browser clicks it)
    stroke_none: Any = None  # hidden: the pen was lifted and no stroke was sent
    status: Any = None
    preview_view: Any = None
    caption: Any = None
    run_btn: Any = None
    full_view: Any = None
    result_status: Any = None
    made: Any = None  # the request number the shown result was made at; -1: no result
    downloads: Any = None
    command: Any = None

    @property
    def knobs(self) -> list[Any]:
        """What every request reads, in the order of :class:`mgsr.serve.settings.Knobs`."""
        named = {
            "path": self.image_file,
            "w1": self.levels[0],
            "w2": self.levels[1],
            "w3": self.levels[2],
            "mask_path": self.mask_file,
        }
        return [named[f.name] if f.name in named else getattr(self, f.name) for f in attrs.fields(Knobs)]


def _image_and_size(p: Page, server: Server) -> None:
    catalog = server.catalog
    p.image_file = gr.File(
        label="Image (any mode mgsr upscale reads; kept byte for byte)",
        file_types=["image"],
        type="filepath",
        elem_id="mgsr-image",
    )
    p.model = gr.Dropdown(catalog.labels, value=catalog.default, label="Model", elem_id="mgsr-model")
    with gr.Row():
        p.scale = gr.Radio(list(LEVEL_SCALES), value=4, label="Scale", elem_id="mgsr-scale", scale=3)
        # text, not a number box: empty must stay empty (the scale), and a bad entry gets mgsr's message
        p.outscale = gr.Textbox(
            "",
            label="or any factor",
            placeholder="e.g. 3 or 2.5; empty: the scale",
            max_lines=1,
            min_width=100,
            scale=2,
            elem_id="mgsr-outscale",
        )


def _detail_and_w(p: Page, server: Server) -> None:
    """Detail drives W where the model has a curve; W (Advanced) is the expert's way, and then the rest."""
    catalog, start = server.catalog, server.start()
    p.detail = gr.Slider(
        0.0,
        1.0,
        value=start["t"],
        step=0.01,
        label="Detail",
        interactive=start["by"] == BY_DETAIL,
        elem_id="mgsr-detail",
        info="0 = lowest distortion, 1 = the model's most detail (its recorded W)",
    )
    p.detail_w = gr.Markdown(
        detail_says(catalog, catalog.default, start["by"], start["t"], start["w"]), elem_id="mgsr-detail-w"
    )
    p.by = gr.Textbox(start["by"], visible="hidden", elem_id="mgsr-by")
    with gr.Accordion("Advanced", open=False):
        p.w = gr.Slider(
            0.0,
            1.0,
            value=start["w"],
            step=0.01,
            label="W (noise amplitude), instead of detail",
            info="moving it sets detail to match; default: the model's W",
            elem_id="mgsr-w",
        )
        p.per_level_on = gr.Checkbox(False, label="W per 2x level (replaces W above)")
        p.levels = [
            gr.Slider(0.0, 1.0, value=start["w"], step=0.01, label=f"W at the {2 << j}x level", visible=j < 2)
            for j in range(3)
        ]
        p.seed = gr.Number(0, precision=0, minimum=0, label="Seed (same seed, same bytes)", elem_id="mgsr-seed")
        p.mask_file = gr.File(
            label="Mask image instead of painting (white = W, black = 0)",
            file_types=["image"],
            type="filepath",
            elem_id="mgsr-mask",
        )
        p.calibration_file = gr.File(
            label="Calibration (.json from mgsr calibrate): adaptive for the automatic map, global sets W",
            file_types=[".json"],
            type="filepath",
            elem_id="mgsr-calibration",
        )


def _painting(p: Page, server: Server) -> None:
    loaded = server.calibration
    p.calibration = gr.State(None if loaded is None or loaded.rule is None else loaded.key)
    p.automatic = gr.Textbox("", visible="hidden", elem_id="mgsr-automatic")
    gr.Markdown(page.LEGEND, elem_id="mgsr-legend")
    with gr.Row():
        p.automatic_btn = gr.Button("Automatic map", size="sm", elem_id="mgsr-automatic-map")
        p.plain_btn = gr.Button("No map", size="sm", elem_id="mgsr-no-map")
    p.automatic_note = gr.Markdown(
        page.NO_CALIBRATION if loaded is None or loaded.rule is None else loaded.about(), elem_id="mgsr-automatic-note"
    )
    # opaque paint: what the stroke looks like is what it does (black = no added detail)
    p.editor = gr.ImageEditor(
        label="Paint regions (see the legend above)",
        type="numpy",
        sources=(),
        transforms=(),
        layers=False,
        brush=gr.Brush(colors=["#000000", "#ffffff", "#808080"], default_color="#000000", color_mode="fixed"),
        eraser=gr.Eraser(),
        height=420,
        format="png",
        elem_id="mgsr-editor",
    )
    p.stroke_start = gr.Button(visible="hidden", elem_id="mgsr-stroke-start")
    p.stroke_none = gr.Button(visible="hidden", elem_id="mgsr-stroke-none")


def _preview(p: Page) -> None:
    p.centre = gr.State(None)
    # requests for a preview, counted in the browser, and the one the shown preview answers
    p.wanted = gr.Number(0, precision=0, visible="hidden", elem_id="mgsr-wanted")
    p.shown = gr.Number(-1, precision=0, visible="hidden", elem_id="mgsr-shown")
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            # no buttons: its share button only fails off Hugging Face Spaces, and a download of it is no use
            p.chooser = gr.Image(
                label="Preview crop (click to move, or the arrows)",
                interactive=False,
                height=260,
                buttons=[],
                elem_id="mgsr-crop",
            )
            with gr.Row(elem_id="mgsr-crop-moves"):
                p.crop_moves = {
                    key: gr.Button(symbol, size="sm", min_width=40, elem_id=f"mgsr-crop-{key}")
                    for key, symbol, _, _ in page.CROP_MOVES
                }
            p.preview_btn = gr.Button("Refresh the preview", variant="secondary")
        with gr.Column(scale=2):
            p.status = gr.HTML("", elem_id="mgsr-preview-status")
            # max_height, not height: a fixed block height leaves Gradio's two images at max_height (500 px)
            # each, the second 80 px above the first and the bottom of both cut off
            p.preview_view = gr.ImageSlider(
                label="Preview: bicubic | mgsr", format="png", max_height=340, interactive=False, elem_id="mgsr-preview"
            )
            p.caption = gr.Markdown("", elem_id="mgsr-preview-caption")


def _result(p: Page) -> None:
    p.run_btn = gr.Button("Upscale the whole image", variant="primary")
    p.made = gr.Number(-1, precision=0, visible="hidden", elem_id="mgsr-made")
    p.result_status = gr.HTML("", elem_id="mgsr-result-status")
    p.full_view = gr.ImageSlider(
        label="Result: bicubic | mgsr (drag the divider)",
        format="png",
        interactive=False,
        max_height=700,
        elem_id="mgsr-result",
    )
    with gr.Row():
        p.downloads = gr.File(
            label="Download: the result PNG (and the mask or calibration the command reads)",
            file_count="multiple",
            interactive=False,
            elem_id="mgsr-downloads",
        )
        # interactive (the page makes it read-only): a disabled box can be neither focused nor read aloud
        p.command = gr.Textbox(
            label="The same with mgsr upscale (the files it reads are offered beside the result)",
            lines=2,
            interactive=True,
            buttons=["copy"],
            elem_id="mgsr-command",
        )


def lay_out(server: Server) -> Page:
    """Place the page's components (inside a ``gr.Blocks``) and return them by name."""
    p = Page()
    gr.Markdown(page.INTRO)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            _image_and_size(p, server)
            _detail_and_w(p, server)
        with gr.Column(scale=2):
            _painting(p, server)
    _preview(p)
    _result(p)
    return p
