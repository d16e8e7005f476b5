"""Shared fixtures: the reference data beside the clone, a clean registry, the recipe folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.registry import Registry, make_plugin_manager

from .http_helpers import Server, go_online, local_server

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
# One intra-op thread: tests are tiny, and several run processes of their own (data workers, gloo ranks);
# more threads only oversubscribe the 2-core CI machine (measured: 12 s instead of minutes under load).
torch.set_num_threads(1)
# `--backend auto` would convert every bundled model for OpenVINO where it is installed (a minute each); tests
# that mean OpenVINO ask for it by name (tests/inference/test_openvino_backend.py).
os.environ.setdefault("MGSR_BACKEND", "torch")

REFERENCE = Path(os.environ.get("MGSR_REFERENCE", REPO.parent / "shared" / "reference"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test reaches the internet: a missing file is an error (tests/io/test_hub.py serves files locally)."""
    monkeypatch.setenv("MGSR_OFFLINE", "1")
    monkeypatch.delenv("MGSR_VGG19_URL", raising=False)


@pytest.fixture(scope="session")
def reference() -> Path:
    """``../shared/reference``; its absence is an error, not a skip (parity is what these tests prove)."""
    if not (REFERENCE / "README.md").is_file():
        pytest.fail(f"reference data not found at {REFERENCE}; set MGSR_REFERENCE to its folder")
    return REFERENCE


@pytest.fixture
def builtin_registry() -> Registry:
    """Built-ins only, whatever else is installed in the environment."""
    return Registry.from_plugin_manager(make_plugin_manager(autoload=False))


@pytest.fixture(scope="session")
def r3_recipe():
    return mgsr.load_recipe(RECIPES / "pirm_r3.toml", Registry.from_plugin_manager(make_plugin_manager(autoload=False)))


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    """A training test may switch torch to deterministic algorithms; never leak that into the next test."""
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture
def server() -> Iterator[Server]:
    """A real HTTP server on 127.0.0.1 for the download path (tests/http_helpers.py)."""
    with local_server() as state:
        yield state


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Network allowed and an empty hub cache (the cache folder); see tests/http_helpers.py."""
    return go_online(monkeypatch, tmp_path)


#: the smallest crop NIQE scores after the 4-pixel shave (one 96x96 block)
HR_SIDE = 104


@pytest.fixture(scope="module")
def hr_dir(reference: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two HR_SIDE-pixel crops of the reference photographs (astronaut, coffee), for evaluation tests."""
    folder = tmp_path_factory.mktemp("hr")
    for name in ("astronaut", "coffee"):
        rgb = np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"))
        Image.fromarray(rgb[:HR_SIDE, 40 : 40 + HR_SIDE]).save(folder / f"{name}.png")
    return folder
