"""The torch releases: pyproject's lower bound is the one mgsr refuses below, in one line (a program gets an
ImportError, the CLI one error line); a failure inside torch's ONNX exporter is one line naming the versions."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from mgsr.cli import main
from mgsr.torch_versions import OLDEST, exporter_failure, release, too_old

from ..conftest import REPO

pytestmark = pytest.mark.compat  # cheap, and each check reads the torch under test (its exporter's error class)

LOWER_BOUND = f"{OLDEST[0]}.{OLDEST[1]}"
OLDER = f"{OLDEST[0]}.{OLDEST[1] - 1}.1"


def test_release_reads_major_and_minor():
    assert release("2.13.0+cpu") == (2, 13)
    assert release("2.15.0+cu132") == (2, 15)
    assert release("2.16.0.dev20260101") == (2, 16)
    assert release("2.4.1") == (2, 4)


def test_pyproject_lower_bound_is_the_oldest_release_run():
    """pyproject's ``torch>=`` and the refusal's bound are one number (OLDEST: the oldest the tests passed on)."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in dependencies if d.startswith("torch")] == [f"torch>={LOWER_BOUND}"]


def test_only_releases_older_than_the_bound_are_refused():
    assert too_old(torch.__version__) is None
    assert too_old(f"{LOWER_BOUND}.0") is None
    message = too_old(OLDER)
    assert message is not None and "\n" not in message
    assert OLDER in message and f"pip install 'torch>={LOWER_BOUND}'" in message


def _run_with_torch(version: str, tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a process whose torch says it is ``version`` (a sitecustomize sets it before anything)."""
    (tmp_path / "sitecustomize.py").write_text(f"import torch\ntorch.__version__ = {version!r}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)


@pytest.mark.parametrize("command", [["mgsr"], [sys.executable, "-m", "mgsr"]], ids=["script", "python -m"])
def test_an_older_torch_is_one_error_line_from_the_cli(tmp_path, command):
    if command == ["mgsr"]:
        command = [str(Path(sys.executable).with_name("mgsr"))]  # the console script of this environment
    done = _run_with_torch(OLDER, tmp_path, *command, "--version")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"mgsr: error: {too_old(OLDER)}"]


def test_an_older_torch_is_an_import_error_for_a_program(tmp_path):
    done = _run_with_torch(OLDER, tmp_path, sys.executable, "-c", "import mgsr")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"ImportError: {too_old(OLDER)}"
    assert _run_with_torch(f"{LOWER_BOUND}.0", tmp_path, sys.executable, "-c", "import mgsr").returncode == 0


def _failing_exporter(*args: object, **kwargs: object) -> None:
    """What torch 2.14's exporter raised for a shift of a symbolic size: a report, its cause underneath."""
    try:
        raise AttributeError("'int' object has no attribute 'dtype'")
    except AttributeError as cause:
        raise torch.onnx.OnnxExporterError("Failed to convert the exported program.\n\n## Details...") from cause


def test_an_exporter_failure_is_one_line_naming_the_versions(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.onnx, "export", _failing_exporter)
    out = tmp_path / "r3.onnx"
    assert main(["export", "pirm-r3", "-o", str(out), "--scale", "4", "--noise", "0"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mgsr: error: "), lines
    assert f"torch {torch.__version__}'s ONNX exporter failed" in lines[0]
    assert "(AttributeError: 'int' object has no attribute 'dtype')" in lines[0]
    assert f"torch {LOWER_BOUND} to " in lines[0]
    assert not out.exists() and not list(tmp_path.iterdir())  # no partial file, no temporary left


def test_the_innermost_cause_is_named_even_without_a_message():
    with pytest.raises(torch.onnx.OnnxExporterError) as caught:
        try:
            raise KeyError()
        except KeyError as cause:
            raise torch.onnx.OnnxExporterError("outer") from cause
    assert "(KeyError: (no message))" in exporter_failure(caught.value)
