"""mgsr serve as a running server, driven through its HTTP API with gradio_client.

Marked slow: the server process imports torch and Gradio (~30 s on the shared
2-core machine); tests/serve/test_serve.py checks the same request handling without a server.
Needs the ``test-web`` extra (``pip install -e ".[test-web]"``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..helpers import png_claiming, smooth_rgb
from ..serve_helpers import half_flat_photo, start_server, stop, write_adaptive_calibration

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client", reason='needs the test-web extra: pip install -e ".[test-web]"')
pytest.importorskip("gradio", reason='needs the web extra: pip install -e ".[web]"')

EMPTY_EDITOR = {"background": None, "layers": [], "composite": None, "id": None}


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> Path:
    """The operator's adaptive calibration (``mgsr serve --noise``): the page's automatic map."""
    return write_adaptive_calibration(tmp_path_factory.mktemp("operator") / "fitted.json")


@pytest.fixture(scope="module")
def server(calibration):
    proc, url = start_server("--max-pixels", "1000000", "--max-upload-mb", "2", "--noise", str(calibration))
    try:
        yield url, gradio_client.Client(url, verbose=False)
    finally:
        stop(proc)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    image = tmp_path / "tiny.png"
    Image.fromarray(smooth_rgb(16, 16)).save(image)
    mask = tmp_path / "regions.png"
    grey = np.full((16, 16), 255, np.uint8)
    grey[:, :8] = 0  # no detail on the left half
    Image.fromarray(grey).save(mask)
    return {"image": image, "mask": mask}


def upscale(client, image: Path, mask: Path | None, *, model="pirm-r1", scale=2, w=0.7, seed=5, automatic=""):
    h = gradio_client.handle_file
    # the page's knobs (mgsr.serve.settings.Knobs): image, model, scale, output factor, W chosen by "w" (not detail),
    # detail, W, W per level
    return client.predict(
        h(str(image)),
        model,
        scale,
        None,
        "w",
        1.0,
        w,
        False,
        1.0,
        1.0,
        1.0,
        seed,
        EMPTY_EDITOR,
        None if mask is None else h(str(mask)),
        automatic,  # the key of the calibration whose automatic map is on; "": none
        api_name="/upscale",
    )


def test_page_result_equals_mgsr_upscale(server, files, tmp_path):
    _, client = server
    _slider, downloads, command = upscale(client, files["image"], files["mask"])
    result = Path(downloads[0])
    assert result.name == "tiny_x2.png" and Path(downloads[1]).name == "tiny_mask.png"
    assert command == (
        "mgsr upscale tiny.png -o tiny_x2.png --model pirm-r1 --scale 2 --noise 0.7 --noise-map tiny_mask.png --seed 5"
    )
    out = tmp_path / "cli.png"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mgsr",
            "upscale",
            str(files["image"]),
            "-o",
            str(out),
            "--model",
            "pirm-r1",
            "--scale",
            "2",
            "--noise",
            "0.7",
            "--noise-map",
            str(files["mask"]),
            "--seed",
            "5",
            "-q",
        ],
        check=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.read_bytes() == out.read_bytes()
    assert Path(downloads[1]).read_bytes() == files["mask"].read_bytes()  # the mask saved alongside


def test_the_operators_automatic_map_equals_mgsr_upscale_with_its_calibration(server, calibration, tmp_path):
    _, client = server
    image = half_flat_photo(tmp_path / "half.png")
    key = hashlib.sha256(calibration.read_bytes()).hexdigest()[:20]  # how the page names a calibration file
    _slider, downloads, command = upscale(client, image, None, model="pirm-r3", scale=4, automatic=key)
    assert command == "mgsr upscale half.png -o half_x4.png --model pirm-r3 --scale 4 --noise fitted.json --seed 5"
    assert [Path(d).name for d in downloads] == ["half_x4.png", "fitted.json"]
    out = tmp_path / "cli.png"
    argv = [sys.executable, "-m", "mgsr", "upscale", str(image), "-o", str(out), "--model", "pirm-r3"]
    argv += ["--scale", "4", "--noise", str(calibration), "--seed", "5", "-q"]
    subprocess.run(argv, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert Path(downloads[0]).read_bytes() == out.read_bytes()
    with pytest.raises(Exception, match="not loaded on this server"):
        upscale(client, image, None, model="pirm-r3", scale=4, automatic="f" * 20)


def test_a_broken_request_is_a_message_and_the_server_lives_on(server, files, tmp_path):
    _, client = server
    broken = tmp_path / "broken.png"
    broken.write_bytes(files["image"].read_bytes()[:60])
    with pytest.raises(Exception, match="cannot be used|not an image"):
        upscale(client, broken, None)
    with pytest.raises(Exception, match=r"'bomb.png' is 3000 x 3000 = 9.0 Mpx, over this server's --max-pixels"):
        upscale(client, png_claiming(tmp_path / "bomb.png", 3000, 3000), None)  # over Pillow's limit too
    text = tmp_path / "notes.png"
    text.write_text("shopping list")
    with pytest.raises(Exception, match="'notes.png' is not an image mgsr can read") as caught:
        upscale(client, text, None)
    assert not re.search(r"/tmp|gradio|[0-9a-f]{20}", str(caught.value)), str(caught.value)
    with pytest.raises(Exception, match="not in the list of choices|not offered"):
        upscale(client, files["image"], None, model="/etc/passwd")
    _slider, downloads, _command = upscale(client, files["image"], None, w=0.0)
    with Image.open(downloads[0]) as im:
        assert im.size == (32, 32)


def test_server_paths_named_by_a_client_are_not_read(server, files):
    url, _ = server
    secret = files["image"]  # a real image on the server's disk, readable by the server process
    body = json.dumps(
        {
            "data": [
                {"path": str(secret), "meta": {"_type": "gradio.FileData"}},
                "pirm-r1",
                2,
                None,
                "w",
                1.0,
                0.5,
                False,
                1.0,
                1.0,
                1.0,
                0,
                None,
                None,
                "",
            ]
        }
    ).encode()
    request = urllib.request.Request(
        url + "gradio_api/call/upscale", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(url + f"gradio_api/call/upscale/{event}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: error" in stream and "not uploaded by a user" in stream
    for path in (str(secret), "/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + f"gradio_api/file={path}", timeout=30)
        assert caught.value.code in (403, 404)


def test_request_bodies_are_limited_before_they_are_read(server):
    """A 200 MB JSON post once grew the server by 1.6 GB and was copied into its log: now it is refused on its
    declared length, unread, and a short body quoting a long text is refused without echoing it."""
    url, client = server
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest("POST", "/gradio_api/call/preview")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(200 * 2**20))
    connection.endheaders()  # and no body: a server waiting to read it would time out here
    response = connection.getresponse()
    assert response.status == 413 and b"/gradio_api/upload" in response.read()
    connection.close()
    body = json.dumps({"data": [None, "y" * 5000] + [None] * 15}).encode()
    request = urllib.request.Request(
        url + "gradio_api/call/preview", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413 and b"yyyy" not in caught.value.read()
    with urllib.request.urlopen(url + "gradio_api/info", timeout=30) as alive:  # and it serves on
        assert alive.status == 200
