"""The page of ``mgsr serve`` wired: the components of :mod:`.layout` to :class:`mgsr.serve.server.Server`.

Only plumbing lives here: what each change of the page asks of the server, and what the browser does at
once without asking (:mod:`.page`'s scripts).  Each event handler turns any failure into a ``gr.Error`` (a
message in the page, :func:`guarded`) so one bad request never stops the server.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import gradio as gr

from mgsr.errors import MgsrError
from mgsr.inference.core import levels_for
from mgsr.serve import maps, page
from mgsr.serve.crop import chooser_factor, crop_box, crop_outline, crop_side, moved_centre
from mgsr.serve.failures import page_message
from mgsr.serve.layout import Page, lay_out
from mgsr.serve.server import KEEP_SECONDS, Server
from mgsr.serve.settings import BY_DETAIL, BY_W, Knobs, detail_says, level_for_output, model_start, output_factor
from mgsr.serve.uploads import Upload


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure becomes a message in the page (:func:`mgsr.serve.failures.page_message`), as ``gr.Error``.

    The message stays until the user closes it (a message that vanishes after seconds
    leaves a bare "Error" badge), and names no server path nor more than
    :data:`mgsr.serve.failures.MESSAGE_CHARS` of the exception's text.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - a server must survive whatever one request does
            raise gr.Error(page_message(exc), duration=None, print_exception=False) from None

    return wrapper


def _editor_value(picture: Any) -> dict[str, Any]:
    """The editor showing ``picture`` with nothing painted."""
    return {"background": picture, "layers": [], "composite": picture}


def _quietly(**more: Any) -> dict[str, Any]:
    """Options of the small events that only keep the page's controls in step (no queue, no spinner)."""
    return dict(queue=False, show_progress="hidden", **more)


def _wire_image(p: Page, server: Server) -> tuple[Any, Any]:
    """A new image, a new scale or factor, a click on the crop chooser; returns the image's and the click's events."""

    def chooser_view(upload: Upload, scale_value: Any, out_value: Any, point: tuple[float, float] | None) -> Any:
        side = crop_side(server.preview_side, output_factor(scale_value, out_value))
        return crop_outline(upload.display, crop_box(upload.picture.size, point, side))

    @guarded
    def on_image(path: str | None, scale_value: Any, out_value: Any, automatic: str) -> tuple[Any, Any, Any]:
        """A new image: nothing painted, the automatic map of this image where it is on, the crop centred."""
        if not path:
            return None, None, None
        upload = server.upload(path)
        return _editor_value(server.overlay(path, automatic)), chooser_view(upload, scale_value, out_value, None), None

    @guarded
    def on_scale(path: str | None, scale_value: Any, out_value: Any, point: Any) -> tuple[Any, ...]:
        count = levels_for(int(scale_value))
        view = chooser_view(server.upload(path), scale_value, out_value, point) if path else None
        return (*(gr.Slider(visible=j < count) for j in range(3)), view)

    @guarded
    def on_outscale(path: str | None, scale_value: Any, out_value: Any, point: Any) -> tuple[Any, Any]:
        """A factor picks its level (the Scale shown follows it); the crop box follows the factor."""
        level = level_for_output(scale_value, out_value)
        view = chooser_view(server.upload(path), level, out_value, point) if path else gr.skip()
        return level, view

    @guarded
    def on_select(path: str | None, scale_value: Any, out_value: Any, evt: gr.SelectData) -> tuple[Any, Any]:
        upload = server.upload(path)
        factor = chooser_factor(upload.picture.size)
        point = (float(evt.index[0]) / factor, float(evt.index[1]) / factor)
        return point, chooser_view(upload, scale_value, out_value, point)

    sized = [p.image_file, p.scale, p.outscale, p.centre]
    p.scale.change(on_scale, sized, [*p.levels, p.chooser], api_visibility="private")
    # a factor sets the level it needs; a level picked by the user empties the factor
    p.outscale.change(on_outscale, sized, [p.scale, p.chooser], **_quietly(trigger_mode="always_last"))
    p.scale.input(None, None, [p.outscale], js="() => ''", **_quietly())
    # a new image or crop place: out of date at once, a new preview once the server has taken it
    inputs = [p.image_file, p.scale, p.outscale, p.automatic]
    # out of date at once: registered first, as Gradio runs a trigger's events in order, each after the last
    for event in (p.image_file.change, p.chooser.select):
        event(None, [p.made], [p.status, p.result_status], js=page.STALE_JS, **_quietly())
    loaded = p.image_file.change(on_image, inputs, [p.editor, p.chooser, p.centre], api_name="load")
    moved = p.chooser.select(on_select, sized[:3], [p.centre, p.chooser], api_visibility="private")
    # a refused file asks for no preview (its preview is asked for on .success): the line says so, not waiting
    loaded.failure(None, None, [p.status], js=page.REFUSED_JS, queue=False)
    moved.failure(None, None, [p.status], js=page.FAILED_JS, queue=False)
    return loaded, moved


def _wire_crop_keys(p: Page, server: Server) -> list[Any]:
    """The crop moved by half its side with the buttons under the chooser (the arrow keys press them);
    returns their events, each of which asks for a preview."""

    def mover(dx: int, dy: int) -> Callable[..., tuple[Any, Any]]:
        @guarded
        def on_move(path: str | None, scale_value: Any, out_value: Any, point: Any) -> tuple[Any, Any]:
            upload = server.upload(path)
            side = crop_side(server.preview_side, output_factor(scale_value, out_value))
            moved = moved_centre(upload.picture.size, point, side, dx, dy)
            box = crop_box(upload.picture.size, moved, side)
            return moved, crop_outline(upload.display, box)

        return on_move

    events = []
    for key, _, dx, dy in page.CROP_MOVES:
        button = p.crop_moves[key]
        button.click(None, [p.made], [p.status, p.result_status], js=page.STALE_JS, **_quietly())
        inputs = [p.image_file, p.scale, p.outscale, p.centre]
        events.append(button.click(mover(dx, dy), inputs, [p.centre, p.chooser], api_visibility="private"))
    return events


def _wire_w(p: Page, server: Server) -> None:
    """Detail, W and the model keep each other in step; which of detail or W the user moved is ``by``."""
    catalog = server.catalog

    @guarded
    def on_detail(model_label: str, t: float) -> tuple[Any, str]:
        """The user moved detail: the W slider and the line beside detail show the W it means."""
        noise = catalog.noise_for_detail(model_label, t)
        return noise, detail_says(catalog, model_label, BY_DETAIL, t, noise)

    @guarded
    def on_w(model_label: str, w_value: float) -> tuple[Any, str]:
        """The user set W itself: detail shows where that W is on the model's scale."""
        t = catalog.detail_for_noise(model_label, w_value)
        return (
            gr.skip() if t is None else round(t, 3),
            detail_says(catalog, model_label, BY_W, t or 0.0, w_value),
        )

    @guarded
    def on_model(model_label: str, automatic: str) -> tuple[Any, str]:
        """A new model: detail is usable only where it has a curve (and no map sets W); the line beside says
        what W means."""
        k = model_start(catalog, model_label)
        if automatic:
            return gr.Slider(interactive=False), page.AUTOMATIC_W
        return (
            gr.Slider(interactive=k["by"] == BY_DETAIL),
            detail_says(catalog, model_label, k["by"], k["t"], k["w"]),
        )

    # a new model brings its own W and detail (t of that W, by detail where it has a curve), set in the
    # browser with the request for a preview (no round trip, so no preview is made with half of them)
    model_knobs = {label: model_start(catalog, label) for label in catalog.labels}
    p.model.change(
        None,
        [p.model, p.wanted, p.made],
        [p.w, *p.levels, p.detail, p.by, p.wanted, p.status, p.result_status],
        js=f"(label, n, made) => {{ const k = {json.dumps(model_knobs)}[label]; "
        f"const [wanted, status, result] = ({page.MARK_JS})(n, made); "
        f"return [k.w, {', '.join('k.w' for _ in p.levels)}, k.t, k.by, wanted, status, result]; }}",
        **_quietly(),
    )
    quick = _quietly(trigger_mode="always_last", api_visibility="private")
    p.model.change(on_model, [p.model, p.automatic], [p.detail, p.detail_w], **quick)
    # .input is the user's own move (mouse, keys, a typed number), never the other control's update: no loop.
    # Which control the user moved is set in the browser; its change asks for a preview once it is set
    # (a preview asked for by the control's own change may still read the old one: it is then not current).
    for control, mode in ((p.detail, BY_DETAIL), (p.w, BY_W)):
        control.input(None, None, [p.by], js=f"() => {json.dumps(mode)}", **_quietly())
    p.detail.input(on_detail, [p.model, p.detail], [p.w, p.detail_w], **quick)
    p.w.input(on_w, [p.model, p.w], [p.detail, p.detail_w], **quick)


def _wire_automatic(p: Page, server: Server) -> None:
    """A calibration file loaded; the automatic map shown in the editor (to paint over), or taken away."""
    catalog = server.catalog

    @guarded
    def on_calibration(path: str | None, model_label: str) -> tuple[Any, ...]:
        """An adaptive file becomes the automatic map's; a global one sets W, as ``--noise calib.json`` does."""
        if not path:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        found = server.add_calibration(path)
        server.check_calibration(found, model_label)
        if found.rule is not None:
            return found.key, gr.skip(), gr.skip(), gr.skip(), gr.skip(), found.about()
        w = float(found.noise)  # type: ignore[arg-type]
        t = catalog.detail_for_noise(model_label, w)
        says = detail_says(catalog, model_label, BY_W, t or 0.0, w)
        return gr.skip(), w, gr.skip() if t is None else round(t, 3), BY_W, says, found.about()

    @guarded
    def on_automatic(
        path: str | None, key: str | None, scale_value: Any, out_value: Any, editor: dict | None
    ) -> tuple[Any, ...]:
        """The map of this image in the editor under the strokes made; W and detail wait until No map."""
        if not key:
            raise MgsrError(page.NO_CALIBRATION)
        found = server.automatic(key)
        assert found is not None
        found.check_levels(level_for_output(scale_value, out_value))
        view = maps.with_strokes(server.overlay(path, key), editor)
        frozen = gr.Slider(interactive=False)
        return view, key, frozen, frozen, page.AUTOMATIC_W, page.automatic_on(found.name)

    @guarded
    def on_plain(
        path: str | None, key: str | None, model_label: str, by: str, t: float, w: float, editor: dict | None
    ) -> tuple[Any, ...]:
        """No map: the picture in the editor, the strokes kept (and said to be); detail and W choose W again."""
        view = maps.with_strokes(server.upload(path).display, editor) if path else gr.skip()
        curve = catalog.has_curve(model_label)
        says = detail_says(catalog, model_label, by if curve else BY_W, t, w)
        found = server.automatic(key)
        note = page.PLAIN_NOTE + (page.NO_CALIBRATION if found is None else found.about())
        return view, "", gr.Slider(interactive=curve), gr.Slider(interactive=True), says, note

    p.calibration_file.change(
        on_calibration,
        [p.calibration_file, p.model],
        [p.calibration, p.w, p.detail, p.by, p.detail_w, p.automatic_note],
        api_visibility="private",
    )
    shown = [p.editor, p.automatic, p.detail, p.w, p.detail_w, p.automatic_note]
    for button in (p.automatic_btn, p.plain_btn):  # out of date at once; the map's change then asks for a preview
        button.click(None, [p.made], [p.status, p.result_status], js=page.STALE_JS, **_quietly())
    asked = [p.image_file, p.calibration, p.scale, p.outscale, p.editor]
    switched = [p.automatic_btn.click(on_automatic, asked, shown, api_name="automatic_map")]
    plain = [p.image_file, p.calibration, p.model, p.by, p.detail, p.w, p.editor]
    switched.append(p.plain_btn.click(on_plain, plain, shown, api_visibility="private"))
    for event in switched:  # refused (no calibration loaded, another scale): nothing changed, the lines say so
        settled = [p.wanted, p.shown, p.preview_view, p.made]
        event.failure(None, settled, [p.status, p.result_status], js=page.UNPEND_JS, queue=False)


def _wire_preview(p: Page, server: Server, asks: list[Any]) -> None:
    """Every change marks the preview out of date and asks for a new one; the whole image on request.

    ``asks`` are the follow-ups (``.success``) of the events that ask for a preview once the server has taken
    their change (a new image, a moved crop); the others ask at once.
    """

    def on_asked(request: gr.Request, number: Any) -> None:
        """Told at once (no queue) of every request for a preview, so the queue can skip all but the newest."""
        server.sessions.asked(str(request.session_hash), int(number or 0))

    @guarded
    def on_preview(request: gr.Request, *values: Any) -> tuple[Any, ...]:  # the knobs, the crop's centre, the number
        *knobs, point, number = values
        page_id, number = str(request.session_hash), int(number or 0)
        if server.sessions.outdated(page_id, number):
            return gr.skip(), gr.skip(), gr.skip()  # the page asked for a newer one: that one is made
        server.sessions.asked(page_id, number)
        if not knobs[0]:
            return None, "", number
        images, made_with = server.preview(Knobs(*knobs), tuple(point) if point else None)
        return images, made_with, number

    @guarded
    def on_run(progress=gr.Progress(), *knobs: Any) -> tuple[Any, ...]:  # noqa: B008 - Gradio injects progress
        progress(0.0, desc="loading the model")
        result = server.result(
            Knobs(*knobs), on_tile=lambda done, total: progress(done / total, desc=f"tile {done}/{total}")
        )
        return (result.before, result.after), [str(f) for f in (result.output, *result.files)], result.command

    changes = [*asks, p.preview_btn.click, p.editor.input, p.editor.apply]
    changes += [c.change for c in (p.w, p.detail, p.by, p.scale, p.outscale, p.per_level_on, p.seed)]
    changes += [c.change for c in (p.mask_file, *p.levels, p.editor, p.automatic)]
    for event in changes:  # each changes what the preview should show: mark it out of date, ask for a new one
        event(None, [p.wanted, p.made], [p.wanted, p.status, p.result_status], js=page.MARK_JS, **_quietly())
    # the pen on the editor: out of date at once (the browser presses these hidden buttons, see page.HEAD)
    p.stroke_start.click(None, [p.made], [p.status, p.result_status], js=page.PENDING_JS, **_quietly())
    settled = [p.wanted, p.shown, p.preview_view, p.made]
    p.stroke_none.click(None, settled, [p.status, p.result_status], js=page.UNPEND_JS, **_quietly())
    p.wanted.change(on_asked, [p.wanted], None, **_quietly(api_visibility="private"))
    # one preview at a time; changes during one collapse into a single next one (always_last, and the server
    # skips the requests older than one it has heard of)
    made = p.wanted.change(
        on_preview,
        [*p.knobs, p.centre, p.wanted],
        [p.preview_view, p.caption, p.shown],
        api_name="preview",
        trigger_mode="always_last",
        show_progress="minimal",
    )
    made.success(None, [p.wanted, p.shown, p.preview_view], [p.status], js=page.SETTLE_JS, queue=False)
    made.failure(None, None, [p.status], js=page.FAILED_JS, queue=False)
    # the result belongs to the request number of the press; any change after it marks it out of date
    p.run_btn.click(None, [p.wanted], None, js=page.RUN_JS, **_quietly())
    ran = p.run_btn.click(on_run, p.knobs, [p.full_view, p.downloads, p.command], api_name="upscale")
    ran.success(None, [p.wanted], [p.made, p.result_status], js=page.RAN_JS, queue=False)


def build_app(server: Server) -> gr.Blocks:
    """The Blocks of the page: the components placed (:mod:`.layout`), then wired; ``launch`` it."""
    # Gradio's own copies of uploads and outputs are deleted after an hour too
    with gr.Blocks(title="mgsr serve", analytics_enabled=False, delete_cache=(600, KEEP_SECONDS)) as demo:
        p = lay_out(server)
        loaded, moved = _wire_image(p, server)
        moves = _wire_crop_keys(p, server)
        _wire_w(p, server)
        _wire_automatic(p, server)
        # .success: a refused file or click asks for no preview; its own line stays (REFUSED_JS, FAILED_JS)
        _wire_preview(p, server, [loaded.success, moved.success, *(m.success for m in moves)])
    return demo
