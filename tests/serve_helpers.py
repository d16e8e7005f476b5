"""Starting and stopping a real ``mgsr serve`` process for the slow server and browser tests; the files the
automatic map's tests share."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

from mgsr.inference.adaptive import ADAPTIVE_FORMAT, ADAPTIVE_KIND, AdaptiveRule


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*extra: str, timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    """``mgsr serve`` on a free port, returned once it answers HTTP: (process, URL)."""
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgsr", "serve", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mgsr serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2):
                return proc, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    stop(proc)
    raise AssertionError(f"mgsr serve did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def write_adaptive_calibration(path, levels=(0.02, 0.6), model: str | None = "pirm-r3"):
    """An adaptive calibration file as `mgsr calibrate --adaptive` writes it (the keys its reader needs); with
    ``model=None`` one written by hand, which names no model and so serves any."""
    rule = AdaptiveRule(levels=tuple(levels), centre=0.8, softness=0.1, smooth=1.0)
    record = {"kind": ADAPTIVE_KIND, "format_version": ADAPTIVE_FORMAT, "rule": rule.to_dict()}
    if model is not None:
        record["model"] = model
    path.write_text(json.dumps(record))
    return path


def half_flat_photo(path, h=16, w=20):
    """Flat on the left, busy on the right: the automatic map is high on one side and low on the other."""
    pixels = np.full((h, w, 3), 120, np.uint8)
    pixels[:, w // 2 :] = np.random.default_rng(1).integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path
