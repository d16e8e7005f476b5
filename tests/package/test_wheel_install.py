"""A built wheel, installed away from the checkout, trains and shows recipes by their bundled names.

Why: the bundled recipes must travel in the wheel (as mgsr_recipes), not only live in the repository, or `mgsr train
quickstart` says "recipe file not found" after `pip install`. The fresh environment borrows this one's dependencies
(torch, numpy, ...) through a path entry, so only the build backend is fetched; mgsr itself comes only from the
wheel. Building, installing and one training step take over a minute on 2 busy cores (about 30 s of CPU): slow.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ..conftest import REPO


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding mgsr from a freshly built wheel; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(root / "dist")], cwd=root)
    wheel = next((root / "dist").glob("mgsr-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    own_site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
    # this environment's packages as a plain path entry: its .pth hooks (the editable mgsr) are not run
    Path(own_site.stdout.strip(), "borrowed.pth").write_text(site.getsitepackages()[0] + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=root,
    )
    return venv / "bin"


def test_package_data_covers_every_recipe_file():
    """What the wheel packs is pyproject's globs over recipes/ (setuptools' rules): a recipe in a new folder
    that no glob reaches would be missing from every installed mgsr; this catches it without a build."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folder = REPO / tool["package-dir"]["mgsr_recipes"]
    packed = {p for pattern in tool["package-data"]["mgsr_recipes"] for p in folder.glob(pattern)}
    assert packed == set(folder.rglob("*.toml"))


@pytest.mark.slow
def test_wheel_holds_the_recipes_and_trains_quickstart_by_name(installed, tmp_path):
    where = _run(
        [
            str(installed / "python"),
            "-c",
            "import mgsr, mgsr_recipes; print(mgsr.__file__); print(mgsr_recipes.__file__)",
        ],
        cwd=tmp_path,
    ).stdout.split()
    assert all(str(REPO) not in w and "site-packages" in w for w in where), where  # not the checkout
    listing = _run([str(installed / "mgsr"), "recipe", "list"], cwd=tmp_path).stdout
    assert "pirm_r3" in listing and "ablations/no_gan" in listing
    shown = _run([str(installed / "mgsr"), "recipe", "show", "pirm_r3"], cwd=tmp_path).stdout
    assert "[pretrain]" in shown
    _run(
        [
            str(installed / "mgsr"),
            "train",
            "quickstart",
            "--set",
            "training.steps=1",
            "--set",
            "training.batch_size=2",
            "-q",
        ],
        cwd=tmp_path,
    )
    assert (tmp_path / "runs" / "quickstart" / "generator.safetensors").is_file()
