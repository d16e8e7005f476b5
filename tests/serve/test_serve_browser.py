"""mgsr serve in a real browser: upload, paint, move W, preview, upscale, screenshot.

Marked slow (a minute or more).  Needs the ``test-web`` extra and Debian's chromium
(``apt-get install chromium``; playwright's own browser download is not used).
``MGSR_CHROMIUM`` names another chromium binary; ``MGSR_SCREENSHOT`` keeps the
screenshot at that path (docs/serve.png was made this way); ``MGSR_SHOTS`` names a
folder for a screenshot after each step.

The preview must follow every way of changing a setting (mouse, keyboard, a typed
number, the model, an unsaved stroke, the detail slider, the output factor, the crop moved by a key, the
automatic map and a stroke over it) and say it is out of date until it has: each step waits until the preview
is "current" and the line under it agrees with the page's knobs (a state of the page, not a time).  The
whole-image result says when it no longer matches the settings; the preview's two halves line up; every
control has its own name; a refused upload says no preview is coming.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgsr.io.images import noise_map_of, read_picture

from ..helpers import png_claiming
from ..serve_helpers import start_server, stop, write_adaptive_calibration

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("MGSR_CHROMIUM", "/usr/bin/chromium")
SAMPLE = Path(__file__).resolve().parents[2] / "mgsr" / "samples" / "grace_hopper.png"

# every state the line above the preview takes, in order, recorded in the page
RECORD_STATES = """() => {
  window.mgsrStates = [];
  new MutationObserver(() => {
    const s = document.querySelector('#mgsr-preview-status [data-state]')?.dataset.state || '';
    if (window.mgsrStates[window.mgsrStates.length - 1] !== s) window.mgsrStates.push(s);
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""
# one snapshot of what the page shows: the preview's state and caption, the line beside detail, and the knobs
SNAPSHOT = """() => {
  const value = (sel) => document.querySelector(sel)?.value ?? '';
  const text = (sel) => document.querySelector(sel)?.innerText.trim() ?? '';
  return {
    state: (document.querySelector('#mgsr-preview-status [data-state]')?.dataset.state) || '',
    made: text('#mgsr-preview-caption'),
    says: text('#mgsr-detail-w'),
    model: value('#mgsr-model input'),
    scale: value('#mgsr-scale input:checked'),
    outscale: value('#mgsr-outscale textarea') || value('#mgsr-outscale input'),
    by: value('#mgsr-by textarea') || value('#mgsr-by input'),
    automatic: value('#mgsr-automatic textarea') || value('#mgsr-automatic input'),
    detail: value('#mgsr-detail input[type=number]'),
    w: value('#mgsr-w input[type=number]'),
    seed: value('#mgsr-seed input'),
  };
}"""
#: the calibration the server is started with (--noise): its W per level, as the preview's line names them
FITTED_W = (0.02, 0.6)
STATE = "() => document.querySelector('#mgsr-preview-status [data-state]')?.dataset.state || ''"
RESULT_STATE = "() => document.querySelector('#mgsr-result-status [data-state]')?.dataset.state || ''"


def shown(value: str | float) -> str:
    """A number as the line under the preview gives it (4 significant digits)."""
    return f"{float(value):.4g}"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason='needs playwright: pip install -e ".[test-web]"')
    pytest.importorskip("gradio", reason='needs the web extra: pip install -e ".[web]"')
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) or MGSR_CHROMIUM")
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(browser, tmp_path_factory):
    # naming no model, it serves pirm-r1 too, where the walk below turns its automatic map on (a file fitted for
    # another model is refused: tests/serve/test_serve.py)
    calibration = write_adaptive_calibration(tmp_path_factory.mktemp("operator") / "fitted.json", FITTED_W, None)
    proc, address = start_server("--noise", str(calibration))
    try:
        yield address
    finally:
        stop(proc)


def shot(page, step: str) -> None:
    if os.environ.get("MGSR_SHOTS"):
        page.screenshot(path=str(Path(os.environ["MGSR_SHOTS"]) / f"{step}.png"), full_page=True)


def expected_line(now: dict[str, str]) -> str:
    """The start of the line under the preview that the knobs call for."""
    size = f"{now['scale']}x" if not now["outscale"] else f"{float(now['outscale']):g}x (from {now['scale']}x)"
    if now["automatic"]:
        w = f"W per level {','.join(shown(v) for v in FITTED_W)} of fitted.json"
    elif now["by"] == "w":
        w = f"W {shown(now['w'])}"
    else:  # W by detail: the W slider shows the W that detail means, once the server has said it
        w = f"detail {shown(now['detail'])} = W {shown(now['w'])}"
    return f"{now['model']} · {size} · {w} · seed {now['seed']} · "


def beside_detail(now: dict[str, str]) -> bool:
    """Whether the line beside detail is the server's answer to the knobs shown (its update has landed)."""
    if now["automatic"]:
        return now["says"].startswith("W comes from the automatic map")
    w = f"W = {float(now['w']):.4g}"
    return now["says"] == w if now["by"] == "detail" else now["says"].startswith(f"{w}, set directly")


def follows(page, step: str, expect: str, *, painted: str | None) -> str:
    """Wait until the preview shows the step's change (``expect``), agrees with every knob and is "current", two
    looks in a row (a display update still on its way would change one of them); it must have said "out of date"
    since the last step.  ``painted`` is how the line names the map ("painted", "automatic map", None: no map).

    Returns the line under the preview.  Waits on the page's state, never on the clock: the machine may be slow.
    """
    deadline, agreed, now = time.monotonic() + 240, 0, {}
    while agreed < 2:
        now = page.evaluate(SNAPSHOT)
        # the line itself, without the progress text Gradio shows in the same box while a preview is made
        now["made"] = (
            now["made"][now["made"].find("Preview made with: ") :] if "Preview made with: " in now["made"] else ""
        )
        fits = now["state"] == "current" and expect in now["made"]
        fits = fits and expected_line(now) in now["made"] and beside_detail(now)
        agreed = agreed + 1 if fits else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"{step}: the preview never showed {expect!r} with the knobs {now}")
        page.wait_for_timeout(250)  # the interval between looks
    states = page.evaluate("() => window.mgsrStates.splice(0)")
    assert "stale" in states, f"{step}: the preview never said it was out of date ({states})"
    made = now["made"]
    regions = made.rsplit(" · ", 1)[1]
    assert regions.startswith(f"{painted}:" if painted else "no painted regions"), (step, made)
    shot(page, step)
    return made


def painted_black(page) -> int:
    """Pure black pixels in the editor as the user sees it."""
    box = page.locator("#mgsr-editor canvas").first.bounding_box()
    png = page.screenshot(clip=box)
    return int((np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 8).sum())


def stroke(page, down: float = 60) -> None:
    """A zigzag of the black brush across the top of the picture (the cap), never confirmed with the editor's ✓."""
    page.locator("#mgsr-editor button[aria-label=Brush]").click()
    canvas = page.locator("#mgsr-editor canvas").first.bounding_box()
    cx, top = canvas["x"] + canvas["width"] / 2, canvas["y"] + down
    page.mouse.move(cx - 120, top)
    page.mouse.down()
    for i in range(13):
        page.mouse.move(cx - 120 + 20 * i, top + (i % 2) * 30, steps=3)
    page.mouse.up()
    page.mouse.move(canvas["x"] - 40, canvas["y"] - 40)  # away, so the cursor's ring is not counted


def drag(page, control, start: float, end: float) -> None:
    """Drag a slider's handle from ``start`` to ``end`` (fractions of its track), as a user does."""
    track = control.bounding_box()
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + track["width"] * start, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * end, y, steps=10)
    page.mouse.up()


def whole_image(page, url: str, tmp_path: Path, made: str) -> str:
    """Upscale the whole image; the mask it offers must be the one the preview was made with.  Its command."""
    before = page.locator("#mgsr-command textarea").input_value()
    page.get_by_role("button", name="Upscale the whole image").click()
    page.wait_for_function(
        "(before) => { const v = (document.querySelector('#mgsr-command textarea') || {}).value || ''; "
        "return v.startsWith('mgsr upscale') && v !== before; }",
        arg=before,
        timeout=400_000,
    )
    links = page.locator("a[download]").all()
    mask_url = next(a.get_attribute("href") for a in links if "face_mask" in (a.get_attribute("href") or ""))
    mask_file = tmp_path / "face_mask.png"
    mask_file.write_bytes(page.request.get(mask_url if mask_url.startswith("http") else url + mask_url).body())
    digest = hashlib.sha256(np.ascontiguousarray(noise_map_of(read_picture(mask_file))).tobytes()).hexdigest()[:6]
    assert f"(mask {digest})" in made, (digest, made)
    # both sides of the result shown, decoded
    page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#mgsr-result img')]; "
        "return i.length === 2 && i.every(e => e.complete && e.naturalWidth > 0); }",
        timeout=120_000,
    )
    return page.locator("#mgsr-command textarea").input_value()


def named_aligned_and_shareless(page) -> None:
    """Each control its own name, the status lines announced, the command box focusable, no Share button, and
    the preview's two halves one over the other, wholly inside their box (the mgsr half once sat 80 px above
    the bicubic one, and the bottom of both was cut off)."""
    assert page.get_by_role("button", name="Share").count() == 0, "Share only works on Hugging Face Spaces"
    assert page.get_by_role("button", name=re.compile("^Move the preview: click")).count() == 1
    for word in ("left", "up", "down", "right"):
        assert page.get_by_role("button", name=f"Move the preview crop {word}").count() == 1
    uploads = page.get_by_role("button", name=re.compile("^Upload ")).evaluate_all(
        "bs => bs.map(b => b.getAttribute('aria-label'))"
    )
    assert len(uploads) == len(set(uploads)) >= 2, uploads  # Advanced is open: the mask's and the calibration's
    assert page.get_by_role("button", name=re.compile("^Upload a mask image")).count() == 1
    assert page.get_by_role("button", name=re.compile("^Upload a calibration file")).count() == 1
    for line in ("#mgsr-preview-status", "#mgsr-result-status"):
        assert page.locator(line).get_attribute("role") == "status", line
        assert page.locator(line).get_attribute("aria-live") == "polite", line
    command = page.get_by_role("textbox", name="The same with mgsr upscale: the command line")
    command.focus()
    assert command.evaluate("e => e === document.activeElement && e.readOnly")
    box, halves = page.evaluate(
        "() => [document.querySelector('#mgsr-preview').getBoundingClientRect().toJSON(), "
        "[...document.querySelectorAll('#mgsr-preview img')].map(i => i.getBoundingClientRect().toJSON())]"
    )
    assert len(halves) == 2 and halves[0] == halves[1], halves
    assert box["top"] <= halves[0]["top"] and halves[0]["bottom"] <= box["bottom"] + 0.5, (box, halves[0])


def crop_by_key(page, expect: str) -> None:
    """The crop moved with the keyboard: the arrow key on the focused crop chooser; the preview follows."""
    before = page.locator("#mgsr-preview").screenshot()
    page.get_by_role("button", name=re.compile("^Move the preview: click")).focus()
    page.keyboard.press("ArrowDown")
    follows(page, "crop-key", expect, painted=None)
    assert page.locator("#mgsr-preview").screenshot() != before, "the arrow key did not move the crop"


def editor_colours(page) -> tuple[float, float, float]:
    """(mean channel spread, share of dark pixels, share of light pixels) of the editor's canvas as seen."""
    box = page.locator("#mgsr-editor canvas").first.bounding_box()
    rgb = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")).astype(int)
    spread = float((np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])).mean())
    grey = rgb.mean(axis=2)
    return spread, float((grey < 60).mean()), float((grey > 190).mean())


def test_page_preview_follows_every_setting_and_the_result_is_what_it_shows(browser, url, tmp_path):
    image = tmp_path / "face.png"
    shutil.copy(SAMPLE, image)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#mgsr-image", timeout=60_000)
    page.evaluate(RECORD_STATES)
    page.get_by_role("button", name="Advanced").click()  # the seed is there
    page.locator("#mgsr-image input[type=file]").set_input_files(str(image))
    follows(page, "upload", "pirm-r3 · 4x · detail 1 = W 1 · seed 0", painted=None)  # it comes by itself
    named_aligned_and_shareless(page)
    alts = page.evaluate("() => [...document.querySelectorAll('#mgsr-preview img')].map(e => e.alt)")
    assert len(alts) == 2 and all("mgsr" in a or "bicubic" in a for a in alts), alts

    # the detail slider, the main knob: the keyboard, then a number typed; W follows, shown beside it
    detail = page.locator("#mgsr-detail input[type=range]")
    detail.focus()
    page.keyboard.press("Home")
    follows(page, "detail-home", "detail 0 = W 0 ·", painted=None)
    detail_number = page.locator("#mgsr-detail input[type=number]")
    detail_number.fill("0.5")
    detail_number.press("Enter")
    follows(page, "detail-typed", "detail 0.5 = W 0.01198 ·", painted=None)  # 4 digits: not W 0.0119786...
    assert page.locator("#mgsr-detail-w").inner_text().strip() == "W = 0.01198"

    # the keyboard on the W slider (the expert's, under Advanced): Home, arrows; detail shows where W is
    slider = page.locator("#mgsr-w input[type=range]")
    slider.focus()
    page.keyboard.press("Home")
    follows(page, "home", "W 0 ·", painted=None)
    assert detail_number.input_value() == "0" and "set directly" in page.locator("#mgsr-detail-w").inner_text()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    follows(page, "arrows", "W 0.03 ·", painted=None)
    # a number typed into the box, then Enter
    number = page.locator("#mgsr-w input[type=number]")
    number.fill("0.25")
    number.press("Enter")
    follows(page, "typed", "W 0.25 ·", painted=None)
    crop_by_key(page, "W 0.25 ·")

    # another model: its own W, and a preview with it
    page.locator("#mgsr-model input").click()
    page.get_by_role("option", name="pirm-r1").click()
    follows(page, "model", "pirm-r1 · 4x · detail 1 = W 0.0632 ·", painted=None)

    # a stroke of black brush across the cap, never confirmed with the editor's ✓: it counts at once, and the
    # page says "out of date" from the moment the pen is down (Gradio sends the stroke a second later)
    black_before = painted_black(page)
    stroke(page)
    assert page.evaluate(STATE) == "stale", "a stroke on its way, and the preview said it was current"
    follows(page, "stroke", "· painted: W lowered on", painted="painted")
    assert painted_black(page) > black_before + 500, "black paint should look black"

    # drag W as a user does
    drag(page, slider, 0.1, 0.3)
    w = float(number.input_value())
    assert 0.2 < w < 0.4
    follows(page, "drag", f"W {shown(w)} ·", painted="painted")
    # any output factor: 3 takes the 4x level (the Scale shown follows) and shrinks to 3x
    factor = page.locator("#mgsr-outscale textarea, #mgsr-outscale input").first
    factor.fill("3")
    factor.press("Enter")
    follows(page, "outscale", " 3x (from 4x) · ", painted="painted")
    # and back to the detail slider, dragged: the result is chosen by detail, and its command says so
    drag(page, detail, 0.5, 0.7)
    detail.blur()  # Gradio's slider re-sends its value on blur: a (cached) preview
    t = float(detail_number.input_value())
    assert 0.5 < t < 0.9
    made = follows(page, "detail-drag", f"detail {shown(t)} = ", painted="painted")
    command = whole_image(page, url, tmp_path, made)
    assert command == (
        f"mgsr upscale face.png -o face_x3.png --model pirm-r1 --outscale 3 --detail {t!r} "
        "--noise-map face_mask.png --seed 0"
    )
    page.wait_for_function(f"() => ({RESULT_STATE})() === 'current'", timeout=30_000)

    # the automatic map (the operator's --noise fitted.json): shown over the picture as a grey map (white = W,
    # black = 0), the stroke kept on top, W from it; the result above no longer matches: it says so at once
    page.get_by_role("button", name="Automatic map").click()
    assert page.evaluate(RESULT_STATE) == "stale", "the result and its command were left as if current"
    assert float(page.locator("#mgsr-command").evaluate("e => getComputedStyle(e).opacity")) < 1
    made = follows(page, "automatic", "W per level 0.02,0.6 of fitted.json", painted="painted map")
    spread, dark, light = editor_colours(page)
    assert spread < 6 and dark > 0.2, (spread, dark, light)  # a grey map, not the colour picture under a veil
    assert not page.locator("#mgsr-w input[type=number]").is_enabled(), "W must wait while the map sets it"
    # painted over again: the strokes cover the map there; the command gives the map and the map's W per level
    stroke(page, down=30)
    made = follows(page, "automatic-painted", "· painted map: W x ", painted="painted map")
    (tmp_path / "auto").mkdir()
    command = whole_image(page, url, tmp_path / "auto", made)
    assert command == (
        "mgsr upscale face.png -o face_x3.png --model pirm-r1 --outscale 3 --noise 0.02,0.6 "
        "--noise-map face_mask.png --seed 0"
    )
    page.wait_for_function(f"() => ({RESULT_STATE})() === 'current'", timeout=30_000)
    path = Path(os.environ.get("MGSR_SCREENSHOT", tmp_path / "page.png"))
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as im:
        assert im.width == 1280 and im.height > 1000
    # no map: detail is the knob again; the strokes stay, and the line above the editor says so
    page.get_by_role("button", name="No map").click()
    follows(page, "no-map", f"detail {shown(t)} = ", painted="painted")
    assert "your strokes stay" in page.locator("#mgsr-automatic-note").inner_text()
    assert painted_black(page) > black_before + 500, "No map dropped the strokes"
    assert page.locator("#mgsr-w input[type=number]").is_enabled()
    assert not outside, f"the page fetched from other sites: {outside[:5]}"


def test_narrow_window_bad_uploads_and_lasting_messages(browser, url, tmp_path):
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#mgsr-image", timeout=60_000)
    face = tmp_path / "face.png"
    shutil.copy(SAMPLE, face)
    page.locator("#mgsr-image input[type=file]").set_input_files(str(face))
    page.wait_for_selector("#mgsr-editor canvas", timeout=120_000)
    legend = page.locator("#mgsr-legend")
    assert "white = W" in legend.inner_text() and "black = 0" in legend.inner_text()
    box = legend.bounding_box()
    on_top = page.evaluate(
        "([x, y]) => !!document.elementFromPoint(x, y)?.closest('#mgsr-legend')",
        [box["x"] + 10, box["y"] + box["height"] / 2],
    )
    assert legend.is_visible() and on_top, "the legend is covered at 800 px"
    shot(page, "narrow")

    for bad, says in [
        (png_claiming(tmp_path / "huge.png", 6000, 6000), "over this server's --max-pixels"),
        (tmp_path / "notes.png", "not an image mgsr can read"),
    ]:
        if bad.name == "notes.png":
            bad.write_text("shopping list")
        page.goto(url, wait_until="load")  # a fresh page: its file box is empty
        page.wait_for_selector("#mgsr-image input[type=file]", state="attached", timeout=60_000)
        page.locator("#mgsr-image input[type=file]").set_input_files(str(bad))
        toast = page.locator(".toast-body", has_text=says).first
        toast.wait_for(timeout=60_000)
        text = toast.inner_text()
        assert bad.name in text and "exceeds limit" not in text
        assert not re.search(r"/tmp|gradio|[0-9a-f]{20}", text), f"a server path in the message: {text!r}"
        page.wait_for_function(f"() => ({STATE})() === 'failed'", timeout=60_000)  # not "being updated" for ever
        assert "No preview" in page.locator("#mgsr-preview-status").inner_text()
        page.wait_for_timeout(12_000)  # Gradio's default toasts are gone after 10 s
        assert toast.is_visible(), "the message vanished"
        assert page.evaluate(STATE) == "failed", "a refused file left the preview waiting"
        shot(page, bad.stem)
        toast.locator("button").first.click()  # closed by the user
