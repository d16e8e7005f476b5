"""The node in ComfyUI's own page, in a real browser: loaded into the graph, run, its result shown.

Slow, and needs playwright (``pip install playwright``) driving Debian's chromium (``apt-get install
chromium``; ``MGSR_CHROMIUM`` names another binary); ``MGSR_SCREENSHOT=docs/comfyui.png`` keeps the
screenshot README shows (it was made this way, then reduced to 256 colours).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from mgsr.cli import main

from .helpers import SAMPLE, snapshot
from .server import Server, comfy_python

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("MGSR_CHROMIUM", "/usr/bin/chromium")
#: the flags this machine's headless chromium needs (no sandbox as root; no calls home: the network is closed)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "grace_hopper.png"}},
    "2": {
        "class_type": "MgsrUpscale",
        "inputs": {"image": ["1", 0], "model": "pirm-r3", "scale": 4, "detail": 0.5, "seed": 0, "tile": -1},
    },
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "mgsr"}},
}
#: what the page's graph says of the node once loaded: its title, widgets and input slots
READ_NODE = """() => {
  const node = window.app.graph.getNodeById(2);
  return {title: node.title, type: node.type,
          widgets: Object.fromEntries(node.widgets.map(w => [w.name, w.value])),
          inputs: node.inputs.map(i => i.name)};
}"""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) or MGSR_CHROMIUM")
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    base = tmp_path_factory.mktemp("page")
    (base / "custom_nodes").mkdir()
    assert main(["comfyui", "install", str(base)]) == 0
    (base / "input").mkdir()
    Image.open(SAMPLE).save(base / "input" / "grace_hopper.png")
    # a returning user (no template gallery), the minimap closed (it would cover the result)
    settings = base / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}))
    running = Server(comfy_python(snapshot()), snapshot(), base)
    yield running
    running.stop()


def test_the_node_in_the_page_runs_and_shows_its_result(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 760})
    page.goto(server.url)
    page.wait_for_function("() => window.app?.graph && window.LiteGraph?.registered_node_types['MgsrUpscale']")
    page.evaluate("api => window.app.loadApiJson(api, 'mgsr.json')", WORKFLOW)
    shown = page.evaluate(READ_NODE)
    assert shown["title"] == "Upscale Image (mgsr, detail)" and shown["type"] == "MgsrUpscale"
    assert shown["widgets"] == {"model": "pirm-r3", "scale": 4, "detail": 0.5, "seed": 0, "tile": -1}
    assert shown["inputs"][:1] == ["image"] and "noise_map" in shown["inputs"]
    before = set(server.get("/history"))
    page.evaluate("() => window.app.queuePrompt(0)")
    deadline = time.monotonic() + 300
    while not (set(server.get("/history")) - before):
        assert time.monotonic() < deadline, "the page's prompt did not finish"
        time.sleep(1)
    (entry,) = [v for k, v in server.get("/history").items() if k not in before]
    assert entry["status"]["status_str"] == "success", entry["status"]
    page.wait_for_function("() => (window.app.graph.getNodeById(3).imgs || []).length > 0", timeout=60_000)
    page.mouse.click(640, 700)  # the canvas has the focus, then "." fits the view to the graph
    page.keyboard.press(".")
    page.wait_for_timeout(1500)
    if os.environ.get("MGSR_SCREENSHOT"):
        page.screenshot(
            path=str(Path(os.environ["MGSR_SCREENSHOT"])), clip={"x": 0, "y": 0, "width": 1280, "height": 600}
        )
    page.close()
