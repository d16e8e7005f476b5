"""A real HTTP server on 127.0.0.1 for tests of the download path (never a mock of it), and a fake VGG-19 to serve.

The fixtures ``server`` and ``online`` (tests/conftest.py) are built from :func:`local_server` and
:func:`go_online`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import torch

import mgsr


@attrs.define
class Server:
    """What the handler serves and what it saw; ``cut`` paths get half their bytes, then the socket closes."""

    base: str = ""
    files: dict[str, bytes] = attrs.Factory(dict)
    cut: set[str] = attrs.Factory(set)
    hits: list[str] = attrs.Factory(list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@contextlib.contextmanager
def local_server() -> Iterator[Server]:
    """A threading HTTP server on a free port of 127.0.0.1 serving ``state.files``, shut down on exit."""
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            state.hits.append(name)
            if name not in state.files:
                self.send_error(404, "no such file")
                return
            data = state.files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if name in state.cut:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def go_online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Network allowed (conftest forbids it), and an empty hub cache; returns the cache folder."""
    monkeypatch.delenv("MGSR_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def hashed_name(stem: str, data: bytes, ext: str = "bin") -> str:
    """A torch.hub-style name promising ``data``'s real SHA-256 prefix."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.{ext}"


def fake_vgg19(layer: str = "conv3_4") -> dict[str, torch.Tensor]:
    """A torchvision-style VGG-19 state dict (right keys and shapes, random values)."""
    vgg = mgsr.default_registry().get("feature_extractor", "vgg19")
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) for k, v in vgg(vgg.Config(layer=layer, pretrained=False)).state_dict().items()}
    return state


def serve_fake_vgg19(server: Server, tmp_path: Path) -> tuple[str, dict]:
    """Serve a fake VGG-19 file under a name whose hash prefix is its real SHA-256's; (name, state dict)."""
    state = fake_vgg19()
    torch.save(state, tmp_path / "fake.pth")
    data = (tmp_path / "fake.pth").read_bytes()
    name = hashed_name("vgg19", data, "pth")  # not torchvision's name: the URL's file name is the one expected
    server.files[name] = data
    return name, state
