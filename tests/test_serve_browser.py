"""mgsr serve in a real browser: upload, paint, move W, preview, upscale, screenshot.

Marked slow (a minute or more).  Needs the ``test-web`` extra and Debian's chromium
(``apt-get install chromium``; playwright's own browser download is not used).
``MGSR_CHROMIUM`` names another chromium binary; ``MGSR_SCREENSHOT`` keeps the
screenshot at that path (docs/serve.png was made this way).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from .serve_helpers import start_server, stop

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("MGSR_CHROMIUM", "/usr/bin/chromium")
SAMPLE = Path(__file__).resolve().parent.parent / "mgsr" / "samples" / "grace_hopper.png"

PREVIEW_SOURCES = "() => [...document.querySelectorAll('#mgsr-preview img')].map(e => e.src).join(' ')"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason='needs playwright: pip install -e ".[test-web]"')
    pytest.importorskip("gradio", reason='needs the web extra: pip install -e ".[web]"')
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) or MGSR_CHROMIUM")
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_page_upload_paint_slider_preview_result(browser, tmp_path):
    image = tmp_path / "face.png"
    shutil.copy(SAMPLE, image)
    proc, url = start_server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:"))
                else None)
        page.goto(url, wait_until="load")
        page.wait_for_selector("#mgsr-image", timeout=60_000)
        page.locator("#mgsr-image input[type=file]").set_input_files(str(image))
        page.wait_for_selector("#mgsr-preview img", timeout=180_000)  # the first preview comes by itself
        first = page.evaluate(PREVIEW_SOURCES)

        # paint the cap black (no added detail there) with the brush
        page.locator("#mgsr-editor button[aria-label=Brush]").click()
        canvas = page.locator("#mgsr-editor canvas").first.bounding_box()
        cx, top = canvas["x"] + canvas["width"] / 2, canvas["y"] + 60
        page.mouse.move(cx - 120, top)
        page.mouse.down()
        for i in range(13):
            page.mouse.move(cx - 120 + 20 * i, top + (i % 2) * 30, steps=3)
        page.mouse.up()
        page.locator("#mgsr-editor button[aria-label='Save changes']").click()

        # drag W from the model's 1.0 to about 0.3, as a user does
        track = page.locator("#mgsr-w input[type=range]").bounding_box()
        y = track["y"] + track["height"] / 2
        page.mouse.move(track["x"] + track["width"] - 3, y)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] * 0.3, y, steps=10)
        page.mouse.up()
        w = float(page.locator("#mgsr-w input[type=number]").input_value())
        assert 0.2 < w < 0.4
        page.wait_for_function(f"(s) => ({PREVIEW_SOURCES})() !== s", arg=first, timeout=180_000)

        page.get_by_role("button", name="Upscale the whole image").click()
        page.wait_for_function("() => (document.querySelector('#mgsr-command textarea') || {}).value"
                               "?.startsWith('mgsr upscale')", timeout=400_000)
        command = page.locator("#mgsr-command textarea").input_value()
        assert re.fullmatch(rf"mgsr upscale face\.png -o face_x4\.png --model pirm-r3 --scale 4 --noise {w!r} "
                            r"--noise-map face_mask\.png --seed 0", command), command
        assert page.locator("#mgsr-result img").count() == 2  # before | after
        page.wait_for_timeout(1500)  # let the result images paint
        shot = Path(os.environ.get("MGSR_SCREENSHOT", tmp_path / "page.png"))
        page.screenshot(path=str(shot), full_page=True)
        with Image.open(shot) as im:
            assert im.width == 1280 and im.height > 1000
        assert not outside, f"the page fetched from other sites: {outside[:5]}"
    finally:
        stop(proc)
