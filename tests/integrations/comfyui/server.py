"""A real ComfyUI server for the slow tests: its own virtual environment, started on the snapshot, driven over HTTP.

The environment is ComfyUI's (``requirements.txt`` of the snapshot, torch pinned to the CPU build this
project uses), built once under ``~/.cache/mgsr-test-comfyui`` (``MGSR_COMFYUI_VENV`` names another place;
about 4 minutes and 1.7 GB; rebuilt when the requirements change) with mgsr installed into it from this
checkout, as a user installs mgsr beside ComfyUI.  The server gets a temporary ``--base-directory``, so
``custom_nodes/``, ``models/``, ``input/`` and ``output/`` are the test's and nothing is written into the
snapshot (bytecode goes to the cache too).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from ...conftest import REPO

CACHE = Path(os.environ.get("MGSR_COMFYUI_VENV", Path.home() / ".cache" / "mgsr-test-comfyui" / "venv"))
#: torch as everywhere in this project (its CPU build is on the machines' disk; see README); requests, which
#: ComfyUI's frontend manager imports without listing it
TORCH = ["torch==2.13.0", "torchvision==0.28.0", "requests"]
#: torchvision's CUDA wheel beside torch's CPU build: the two op schemas it registers fake kernels for are
#: declared first (tests.helpers.import_torchvision explains), so ComfyUI and spandrel import it
SITECUSTOMIZE = '''"""mgsr's ComfyUI test environment: torchvision importable beside the CPU build of torch."""
try:
    import torchvision  # noqa: F401
except RuntimeError as exc:
    if "torchvision::nms" not in str(exc):
        raise
    import sys
    import torch
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401
'''


def _run(args: list[str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    assert done.returncode == 0, f"{' '.join(args)} failed; see {log}:\n{log.read_text()[-3000:]}"


@functools.cache
def comfy_python(snapshot: Path) -> Path:
    """The environment's python, built if missing or made for other requirements; mgsr (this checkout) in it."""
    requirements = [r for r in (snapshot / "requirements.txt").read_text().splitlines() if r.strip()]
    wanted = [r for r in requirements if r.split("=")[0].strip() not in ("torch", "torchvision", "torchaudio")]
    key = hashlib.sha256(json.dumps([sys.version, TORCH, wanted, SITECUSTOMIZE]).encode()).hexdigest()[:16]
    python, ready, log = CACHE / "bin" / "python", CACHE / "ready", CACHE.parent / "build.log"
    if not (ready.is_file() and ready.read_text() == key and python.is_file()):
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        (CACHE.parent / "requirements.txt").write_text("\n".join(wanted) + "\n")
        _run([sys.executable, "-m", "venv", str(CACHE)], log)  # no --system-site-packages: ComfyUI's own
        _run([str(python), "-m", "pip", "install", "-q", TORCH[0]], log)  # first, so pip keeps the CPU build
        _run([str(python), "-m", "pip", "install", "-q", *TORCH, "-r", str(CACHE.parent / "requirements.txt")], log)
        site = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        Path(site.decode().strip(), "sitecustomize.py").write_text(SITECUSTOMIZE)
        ready.write_text(key)
    _run([str(python), "-m", "pip", "install", "-q", "-e", str(REPO)], log)  # this checkout, its dependencies
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python main.py --cpu`` on the snapshot with ``base`` as its base directory, on a free port."""

    def __init__(self, python: Path, snapshot: Path, base: Path) -> None:
        self.python, self.snapshot, self.base = python, snapshot, base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = base / "server.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PYTHONPYCACHEPREFIX=str(CACHE.parent / "pycache"), OMP_NUM_THREADS="1", MGSR_BACKEND="torch")
        args = [str(python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port)]
        args += ["--base-directory", str(base), "--database-url", "sqlite:///:memory:", "--disable-auto-launch"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(args, cwd=snapshot, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        self._wait_until_up(timeout=300)
        self.startup_s = time.monotonic() - self.started

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"ComfyUI exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                self.get("/system_stats")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        raise AssertionError(f"ComfyUI did not answer within {timeout} s:\n{self.log.read_text()[-4000:]}")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as answer:
            return json.loads(answer.read())

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # a refused prompt: ComfyUI says why in the body
            raise AssertionError(f"POST {path}: {exc.code} {exc.read().decode()[:3000]}") from None

    def run(self, prompt: dict, client_id: str = "", timeout: float = 600) -> dict:
        """Queue an API-format workflow and wait for its history entry (success or error)."""
        prompt_id = self.post("/prompt", {"prompt": prompt, "client_id": client_id})["prompt_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None and entry.get("status", {}).get("status_str") in ("success", "error"):
                return entry
            assert self.process.poll() is None, f"ComfyUI died:\n{self.log.read_text()[-4000:]}"
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish within {timeout} s")

    def saved(self, entry: dict, node: str) -> list[Path]:
        """The files a SaveImage node of a finished prompt wrote."""
        images = entry["outputs"][node]["images"]
        return [self.base / "output" / i["subfolder"] / i["filename"] for i in images]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


#: a websocket client in ComfyUI's environment (aiohttp is ComfyUI's): every message for ``client_id``, a line each
LISTENER = """
import asyncio, sys, aiohttp
async def main(url, path):
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        with open(path, "a") as out:
            print("connected", file=out, flush=True)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    print(message.data, file=out, flush=True)
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class Listener:
    """What ComfyUI sends one client over its websocket (progress messages among them), read from a file."""

    def __init__(self, server: Server) -> None:
        self.client_id = uuid.uuid4().hex
        self.file = server.base / f"ws-{self.client_id}.jsonl"
        url = f"ws://127.0.0.1:{server.port}/ws?clientId={self.client_id}"
        self.process = subprocess.Popen([str(server.python), "-c", LISTENER, url, str(self.file)])
        deadline = time.monotonic() + 60
        while not (self.file.is_file() and self.file.read_text().startswith("connected")):
            assert time.monotonic() < deadline and self.process.poll() is None, "the websocket listener did not connect"
            time.sleep(0.2)

    def messages(self) -> list[dict]:
        return [json.loads(line) for line in self.file.read_text().splitlines()[1:]]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
