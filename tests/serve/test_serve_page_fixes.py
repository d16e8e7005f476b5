"""The page's smaller promises, without a server: request bodies capped before the framework reads them, no
payload in a message or the log, captions a person reads, the automatic map shown as the legend says, strokes
kept when the map is switched, the crop moved by keys.

The browser test (test_serve_browser.py) checks the same on the page itself.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from PIL import Image

from mgsr.serve import jobs, maps
from mgsr.serve.catalog import Catalog
from mgsr.serve.crop import moved_centre
from mgsr.serve.limits import MAX_BODY_BYTES, MAX_TEXT, RequestLimits
from mgsr.serve.server import Server
from mgsr.serve.settings import Knobs, Settings
from mgsr.serve.uploads import Limits

from ..helpers import smooth_rgb


def call(body: bytes, *, path: str = "/gradio_api/call/preview", method: str = "POST", declared: bool = True):
    """Send ``body`` (in 64 kB chunks) through the middleware to an app that echoes its length.

    Returns (status, answer, whether the app ran, chunks the middleware read).
    """
    ran, reads = [], []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def app(scope, receive, send):
        got = b""
        while True:
            message = await receive()
            got += message.get("body", b"")
            if not message.get("more_body"):
                break
        ran.append(got)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(got)).encode()})

    async def receive():
        reads.append(1)
        k = len(reads) - 1
        if k < len(chunks):
            return {"type": "http.request", "body": chunks[k], "more_body": k < len(chunks) - 1}
        return {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(RequestLimits(app)(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, answer, bool(ran), len(reads)


def test_a_body_over_the_limit_is_refused_unread():
    big = json.dumps({"data": ["y" * (MAX_BODY_BYTES + 10)]}).encode()
    status, answer, ran, reads = call(big)
    assert status == 413 and not ran and reads == 0  # refused on its Content-Length, nothing read
    assert b"/gradio_api/upload" in answer and b"yyyy" not in answer
    status, _, ran, reads = call(big, declared=False)  # no length declared: refused once past the limit
    assert status == 413 and not ran and reads <= MAX_BODY_BYTES // 65536 + 2


def test_a_long_text_in_json_is_refused_and_not_echoed():
    status, answer, ran, _ = call(json.dumps({"data": [None, "y" * (MAX_TEXT + 1)]}).encode())
    assert status == 413 and not ran
    assert f"{MAX_TEXT + 1} characters".encode() in answer and b"yyy" not in answer


def test_the_pages_own_requests_and_uploads_pass():
    normal = json.dumps(
        {"data": [{"path": "/tmp/gradio/ab/face.png", "meta": {"_type": "gradio.FileData"}}, "pirm-r3"]}
    )
    status, answer, ran, _ = call(normal.encode())
    assert status == 200 and ran and answer == str(len(normal)).encode()  # the body reaches the app whole
    upload = b"x" * (MAX_BODY_BYTES * 2)
    assert call(upload, path="/gradio_api/upload")[0] == 200  # files: limited per file by Gradio
    nested = ("[" * 100_000 + "]" * 100_000).encode()  # no JSON Python can parse: left to the framework
    assert call(nested)[0] == 200


def test_failures_quote_no_payload(capsys):
    pytest.importorskip("gradio", reason='needs the web extra: pip install -e ".[web]"')
    import gradio as gr

    from mgsr.serve.failures import MESSAGE_CHARS
    from mgsr.serve.wiring import guarded

    payload = "y" * 100_000

    @guarded
    def handler() -> None:
        raise ValueError(f"cannot use {payload}")

    with pytest.raises(gr.Error) as caught:
        handler()
    logged = capsys.readouterr().err
    assert len(str(caught.value)) < MESSAGE_CHARS + 200 and "more characters not shown" in str(caught.value)
    assert "ValueError" in logged and "y" * (MESSAGE_CHARS + 1) not in logged


def test_captions_round_w_for_reading_and_the_command_keeps_it_exact():
    settings = Settings.make("pirm-r1", 4, 0.2606538251239785, None, 3)
    line = jobs.describe(settings, None)
    assert line == "pirm-r1 · 4x · W 0.2607 · seed 3 · no painted regions"
    command = jobs.command_line("a.png", "a_x4.png", Catalog().get("pirm-r1"), settings, None)
    assert "--noise 0.2606538251239785" in command
    detail = Settings.make("pirm-r3", 2, 0.011978634, None, 0, detail=0.5)
    assert "detail 0.5 = W 0.01198" in jobs.describe(detail, None)
    levels = Settings.make("pirm-r3", 4, 0.0, [0.123456, 1.0], 0)
    assert "W per level 0.1235,1 ·" in jobs.describe(levels, None)


def test_a_preview_is_made_again_for_a_w_the_caption_rounds_alike(tmp_path, monkeypatch):
    """The preview's cache is keyed by the settings, not by their (rounded) line."""
    source = tmp_path / "p.png"
    Image.fromarray(smooth_rgb(12, 12)).save(source)
    server = Server(Catalog(), Limits(), tmp_path / "work", 16, None)
    made = []
    monkeypatch.setattr(jobs, "preview", lambda *args: made.append(args[2].noise) or (None, None))
    knobs = dict(path=str(source), model="pirm-r1", scale=2, outscale="", by="w", detail=1.0, per_level_on=False)
    knobs |= dict(w1=1.0, w2=1.0, w3=1.0, seed=0)
    first = server.preview(Knobs(**knobs, w=0.260651), None)[1]
    second = server.preview(Knobs(**knobs, w=0.260652), None)[1]
    assert first == second  # the same line...
    assert made == [(0.260651,), (0.260652,)]  # ...but two previews
    server.preview(Knobs(**knobs, w=0.260652), None)
    assert len(made) == 2  # the same settings again: answered from the cache


def test_the_automatic_map_shows_white_and_black_as_the_legend_says():
    picture = np.zeros((4, 6, 3), np.uint8)
    picture[..., 0] = 255  # a saturated red picture under the map
    picture[:, 3:] = (0, 255, 255)
    values = np.zeros((4, 6), np.float32)
    values[:2] = 1.0
    shown = maps.overlay(picture, values).astype(int)
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()  # grey: a map
    assert shown[:2].min() >= 204 and shown[2:].max() <= 51  # map 1 near white, map 0 near black
    assert shown[0, 0, 0] != shown[0, 4, 0]  # the picture still shows faintly


def test_switching_the_map_keeps_the_strokes():
    picture = np.full((4, 5, 3), 200, np.uint8)
    layer = np.zeros((4, 5, 4), np.uint8)
    layer[0:2, 0:2] = (0, 0, 0, 255)  # a black stroke
    value = maps.with_strokes(picture, {"background": None, "layers": [layer], "composite": None})
    assert len(value["layers"]) == 1 and np.array_equal(value["layers"][0], layer)
    assert value["composite"][0:2, 0:2].max() == 0 and value["composite"][2:].min() == 200
    assert value["background"] is picture
    assert maps.with_strokes(picture, None)["layers"] == []  # nothing painted: nothing to keep


def test_the_crop_moves_by_half_its_side_and_stays_inside():
    size = (100, 80)  # height, width
    assert moved_centre(size, None, 20, 1, 0) == (50.0, 50.0)  # from the centre (40, 50), right by 10
    assert moved_centre(size, (40, 50), 20, 0, -1) == (40.0, 40.0)
    at_edge = moved_centre(size, (75, 50), 20, 1, 0)
    assert at_edge == (70.0, 50.0)  # kept where the crop fits
    assert moved_centre(size, at_edge, 20, -1, 0) == (60.0, 50.0)  # so a step back moves it at once
    assert moved_centre((10, 10), None, 20, 1, 1) == (5.0, 5.0)  # larger than the image: centred
