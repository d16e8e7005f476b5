"""mgsr serve in a real browser: upload, paint, move W, preview, upscale, screenshot.

Marked slow (a minute or more).  Needs the ``test-web`` extra and Debian's chromium
(``apt-get install chromium``; playwright's own browser download is not used).
``MGSR_CHROMIUM`` names another chromium binary; ``MGSR_SCREENSHOT`` keeps the
screenshot at that path (docs/serve.png was made this way); ``MGSR_SHOTS`` names a
folder for a screenshot after each step.

The preview must follow every way of changing a setting (mouse, keyboard, a typed
number, the model, an unsaved stroke, the detail slider, the output factor) and say it is out of
date until it has: each step waits for "current" and compares the line under the preview with the
page's knobs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgsr.io.images import noise_map_of, read_picture

from ..helpers import png_claiming
from ..serve_helpers import start_server, stop

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("MGSR_CHROMIUM", "/usr/bin/chromium")
SAMPLE = Path(__file__).resolve().parents[2] / "mgsr" / "samples" / "grace_hopper.png"

PREVIEW_SOURCES = "() => [...document.querySelectorAll('#mgsr-preview img')].map(e => e.src).join(' ')"
STATE = "() => document.querySelector('#mgsr-preview-status [data-state]')?.dataset.state || ''"
# every state the line above the preview takes, in order, recorded in the page
RECORD_STATES = """() => {
  window.mgsrStates = [];
  new MutationObserver(() => {
    const s = document.querySelector('#mgsr-preview-status [data-state]')?.dataset.state || '';
    if (window.mgsrStates[window.mgsrStates.length - 1] !== s) window.mgsrStates.push(s);
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


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
def url(browser):
    proc, address = start_server()
    try:
        yield address
    finally:
        stop(proc)


def shot(page, step: str) -> None:
    if os.environ.get("MGSR_SHOTS"):
        page.screenshot(path=str(Path(os.environ["MGSR_SHOTS"]) / f"{step}.png"), full_page=True)


def knobs(page) -> dict[str, str]:
    """The settings as the page's own inputs show them."""
    return {
        "model": page.locator("#mgsr-model input").input_value(),
        "scale": page.locator("#mgsr-scale input:checked").input_value(),
        "outscale": page.locator("#mgsr-outscale textarea, #mgsr-outscale input").first.input_value(),
        "by": page.locator("#mgsr-by textarea, #mgsr-by input").first.input_value(),
        "detail": page.locator("#mgsr-detail input[type=number]").input_value(),
        "w": page.locator("#mgsr-w input[type=number]").input_value(),
        "seed": page.locator("#mgsr-seed input").input_value(),
    }


def follows(page, step: str, *, painted: bool) -> str:
    """Wait for the preview of the current settings; it must have said "out of date" since the last step.

    Returns the line under the preview, checked against the knobs.
    """
    # the step's own "out of date" first: a check before the page has taken the key or click would pass wrongly
    page.wait_for_function("() => window.mgsrStates.includes('stale')", timeout=30_000)
    page.wait_for_function(f"() => ({STATE})() === 'current'", timeout=180_000)
    if knobs(page)["by"] == "detail":  # the W slider shows the W detail means once the server said it
        page.wait_for_function(
            "() => { const m = document.querySelector('#mgsr-preview-caption').innerText"
            ".match(/= W ([0-9.e+-]+) /); return !!m && Number(m[1]) === "
            "Number(document.querySelector('#mgsr-w input[type=number]').value); }",
            timeout=30_000,
        )
    states = page.evaluate("() => window.mgsrStates.splice(0)")
    assert "stale" in states, f"{step}: the preview never said it was out of date ({states})"
    made = page.locator("#mgsr-preview-caption").inner_text()
    now = knobs(page)
    size = f"{now['scale']}x" if not now["outscale"] else f"{float(now['outscale']):g}x (from {now['scale']}x)"
    w = f"W {float(now['w'])!r}"  # W by detail: the W slider shows the W that detail means
    w = w if now["by"] == "w" else f"detail {float(now['detail'])!r} = {w}"
    expected = f"{now['model']} · {size} · {w} · seed {now['seed']} · "
    assert expected in made, f"{step}: the preview shows {made!r}, the knobs say {now}"
    assert ("painted:" in made) == painted, made
    shot(page, step)
    page.wait_for_timeout(1000)  # let late display updates settle, so the next step starts from a quiet page
    page.wait_for_function(f"() => ({STATE})() === 'current'", timeout=180_000)
    page.evaluate("() => window.mgsrStates.splice(0)")
    return made


def painted_black(page) -> int:
    """Pure black pixels in the editor as the user sees it."""
    box = page.locator("#mgsr-editor canvas").first.bounding_box()
    png = page.screenshot(clip=box)
    return int((np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 8).sum())


def test_page_preview_follows_every_setting_and_the_result_is_what_it_shows(browser, url, tmp_path):
    image = tmp_path / "face.png"
    shutil.copy(SAMPLE, image)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#mgsr-image", timeout=60_000)
    page.evaluate(RECORD_STATES)
    page.get_by_text("Advanced").click()  # the seed is there
    page.locator("#mgsr-image input[type=file]").set_input_files(str(image))
    page.wait_for_selector("#mgsr-preview img", timeout=180_000)  # the first preview comes by itself
    assert "pirm-r3 · 4x · detail 1.0 = W 1.0 · seed 0" in follows(page, "upload", painted=False)
    assert page.locator("#mgsr-crop button[aria-label]").count() >= 1  # the crop mover is named
    alts = page.evaluate("() => [...document.querySelectorAll('#mgsr-preview img')].map(e => e.alt)")
    assert len(alts) == 2 and all("mgsr" in a or "bicubic" in a for a in alts), alts

    # the detail slider, the main knob: the keyboard, then a number typed; W follows, shown beside it
    detail = page.locator("#mgsr-detail input[type=range]")
    detail.focus()
    page.keyboard.press("Home")
    assert "detail 0.0 = W 0.0 ·" in follows(page, "detail-home", painted=False)
    detail_number = page.locator("#mgsr-detail input[type=number]")
    detail_number.fill("0.5")
    detail_number.press("Enter")
    assert "detail 0.5 = W 0.0119786" in follows(page, "detail-typed", painted=False)
    assert page.locator("#mgsr-detail-w").inner_text().strip() == "W = 0.01198"

    # the keyboard on the W slider (the expert's, under Advanced): Home, arrows; detail shows where W is
    slider = page.locator("#mgsr-w input[type=range]")
    slider.focus()
    page.keyboard.press("Home")
    assert "W 0.0 ·" in follows(page, "home", painted=False)
    assert detail_number.input_value() == "0" and "set directly" in page.locator("#mgsr-detail-w").inner_text()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert "W 0.03 ·" in follows(page, "arrows", painted=False)
    # a number typed into the box, then Enter
    number = page.locator("#mgsr-w input[type=number]")
    number.fill("0.25")
    number.press("Enter")
    assert "W 0.25 ·" in follows(page, "typed", painted=False)

    # another model: its own W, and a preview with it
    page.locator("#mgsr-model input").click()
    page.get_by_role("option", name="pirm-r1").click()
    assert "pirm-r1 · 4x · detail 1.0 = W 0.0632 ·" in follows(page, "model", painted=False)

    # a stroke of black brush across the cap, never confirmed with the editor's ✓
    black_before = painted_black(page)
    page.locator("#mgsr-editor button[aria-label=Brush]").click()
    canvas = page.locator("#mgsr-editor canvas").first.bounding_box()
    cx, top = canvas["x"] + canvas["width"] / 2, canvas["y"] + 60
    page.mouse.move(cx - 120, top)
    page.mouse.down()
    for i in range(13):
        page.mouse.move(cx - 120 + 20 * i, top + (i % 2) * 30, steps=3)
    page.mouse.up()
    page.mouse.move(canvas["x"] - 40, canvas["y"] - 40)  # away, so the cursor's ring is not counted
    # Gradio hands the stroke over about a second after the button is released; from then on it is "out of date"
    page.wait_for_function(f"() => ({STATE})() === 'stale'", timeout=30_000)
    made = follows(page, "stroke", painted=True)
    assert painted_black(page) > black_before + 500, "black paint should look black"

    # drag W as a user does
    track = slider.bounding_box()
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + track["width"] * 0.1, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.3, y, steps=10)
    page.mouse.up()
    w = float(page.locator("#mgsr-w input[type=number]").input_value())
    assert 0.2 < w < 0.4
    made = follows(page, "drag", painted=True)
    # any output factor: 3 takes the 4x level (the Scale shown follows) and shrinks to 3x
    factor = page.locator("#mgsr-outscale textarea, #mgsr-outscale input").first
    factor.fill("3")
    factor.press("Enter")
    made = follows(page, "outscale", painted=True)
    assert " 3x (from 4x) · " in made and knobs(page)["scale"] == "4"
    # and back to the detail slider, dragged: the result is chosen by detail, and its command says so
    track = detail.bounding_box()
    page.mouse.move(track["x"] + track["width"] * 0.5, y := track["y"] + track["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.7, y, steps=10)
    page.mouse.up()
    detail.blur()  # Gradio's slider re-sends its value on blur: a (cached) preview, done before the next step
    t = float(detail_number.input_value())
    assert 0.5 < t < 0.9 and knobs(page)["by"] == "detail"
    made = follows(page, "detail-drag", painted=True)

    page.get_by_role("button", name="Upscale the whole image").click()
    page.wait_for_function(
        "() => (document.querySelector('#mgsr-command textarea') || {}).value?.startsWith('mgsr upscale')",
        timeout=400_000,
    )
    command = page.locator("#mgsr-command textarea").input_value()
    assert re.fullmatch(
        rf"mgsr upscale face\.png -o face_x3\.png --model pirm-r1 --outscale 3 --detail {t!r} "
        r"--noise-map face_mask\.png --seed 0",
        command,
    ), command
    # the whole image used the very mask the preview was made with
    links = page.locator("#mgsr-result ~ * a[download], a[download]").all()
    mask_url = next(a.get_attribute("href") for a in links if "face_mask" in (a.get_attribute("href") or ""))
    mask_file = tmp_path / "face_mask.png"
    mask_file.write_bytes(page.request.get(mask_url if mask_url.startswith("http") else url + mask_url).body())
    digest = hashlib.sha256(np.ascontiguousarray(noise_map_of(read_picture(mask_file))).tobytes()).hexdigest()[:6]
    assert f"(mask {digest})" in made, (digest, made)
    # current again once any display update that landed during the run (W following detail) has been previewed
    page.wait_for_function(f"() => ({STATE})() === 'current'", timeout=60_000)
    assert f"detail {t!r} = " in page.locator("#mgsr-preview-caption").inner_text()
    assert page.locator("#mgsr-result img").count() == 2  # before | after
    page.wait_for_timeout(1500)  # let the result images paint
    path = Path(os.environ.get("MGSR_SCREENSHOT", tmp_path / "page.png"))
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as im:
        assert im.width == 1280 and im.height > 1000
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
        page.wait_for_timeout(12_000)  # Gradio's default toasts are gone after 10 s
        assert toast.is_visible(), "the message vanished"
        shot(page, bad.stem)
        toast.locator("button").first.click()  # closed by the user
