"""The IEEE float32 region leaves every TF32 setting of the caller as it was, and every setting stays readable.

Since torch 2.9 the legacy flags and the ``fp32_precision`` table coexist: their getters raise where the two
disagree, and the table's entries inherit from ``<backend>.all`` and the generic entry.  "As it was" is
checked on what a user sees: every getter (a raise counts as an answer) now, and again after each of a
series of later changes, which tell an entry that inherits from one holding the same value.  The settings
are process-wide, so each history is taken in a subprocess of its own or after a reset (:func:`baseline`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mgsr.ops.precision import ieee_float32

REPO = Path(__file__).resolve().parents[2]
KEYS = [(b, "all") for b in ("generic", "cuda", "mkldnn")] + [
    (b, op) for b in ("cuda", "mkldnn") for op in ("conv", "rnn", "matmul")
]
#: later changes of a user's: which entries follow them depends on what is stored, not only on what reads back
LATER = [
    ("generic", "all", "ieee"),
    ("cuda", "all", "tf32"),
    ("mkldnn", "all", "bf16"),
    ("generic", "all", "tf32"),
    ("cuda", "all", "none"),
    ("mkldnn", "all", "none"),
    ("cuda", "conv", "ieee"),  # with rnn next: whether the legacy cuDNN flag is off
    ("cuda", "rnn", "ieee"),
]
LEGACY: dict[str, Callable[[], object]] = {
    "cudnn.allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
    "cuda.matmul.allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
    "float32_matmul_precision": torch.get_float32_matmul_precision,
}


def put(backend: str, op: str, value: str) -> None:
    torch._C._set_fp32_precision_setter(backend, op, value)


def baseline() -> None:
    """Every setting as torch starts, but cuDNN's conv and rnn stored as "tf32" (no setter makes them untouched)."""
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("highest")
    for backend, op in KEYS:
        put(backend, op, "tf32" if backend == "cuda" and op in ("conv", "rnn") else "none")


def readings() -> dict[str, object]:
    """What every getter answers now; ``"raises"`` where torch's mixed-API check refuses."""
    seen: dict[str, object] = {f"{b}.{op}": torch._C._get_fp32_precision_getter(b, op) for b, op in KEYS}
    for name, read in LEGACY.items():
        try:
            seen[name] = read()
        except RuntimeError:
            seen[name] = "raises"
    return seen


def history() -> list[dict[str, object]]:
    """:func:`readings` now and after each change of :data:`LATER` (which it makes)."""
    seen = [readings()]
    for backend, op, value in LATER:
        put(backend, op, value)
        seen.append(readings())
    return seen


def _cudnn_off() -> None:
    torch.backends.cudnn.allow_tf32 = False


def _cublas_on() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True


def _legacy_off_new_conv_tf32() -> None:
    torch.backends.cudnn.allow_tf32 = False
    put("cuda", "conv", "tf32")


def _medium_then_cuda_matmul_inherits() -> None:
    torch.set_float32_matmul_precision("medium")
    put("cuda", "matmul", "none")
    put("cuda", "all", "tf32")


SETUPS: dict[str, Callable[[], None]] = {
    "defaults": lambda: None,
    "matmul high": lambda: torch.set_float32_matmul_precision("high"),
    "matmul medium": lambda: torch.set_float32_matmul_precision("medium"),
    "cudnn.allow_tf32 off": _cudnn_off,
    "cuda.matmul.allow_tf32 on": _cublas_on,
    "cudnn.conv ieee": lambda: put("cuda", "conv", "ieee"),
    "cuda.matmul tf32": lambda: put("cuda", "matmul", "tf32"),
    "generic tf32": lambda: put("generic", "all", "tf32"),
    "cudnn ieee": lambda: put("cuda", "all", "ieee"),
    "mkldnn bf16": lambda: put("mkldnn", "all", "bf16"),
    "legacy off, conv tf32": _legacy_off_new_conv_tf32,
    "medium, cuda.matmul inherits tf32": _medium_then_cuda_matmul_inherits,
}


def report(mode: str) -> dict[str, object]:
    """Run in a fresh process: ``cases`` (every setup, with and without a region), ``pristine``, ``pristine-region``."""
    if mode == "pristine":
        return {"history": history()}
    if mode == "pristine-region":
        with ieee_float32():
            inside = readings()
        return {"inside": inside, "history": history()}
    cases: dict[str, object] = {}
    for name, setup in SETUPS.items():
        baseline()
        setup()
        plain = history()
        baseline()
        setup()
        with ieee_float32():
            inside = readings()
        cases[name] = {"plain": plain, "region": history(), "inside": inside}
    return cases


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    """The three reports, each from a process of its own, run side by side."""
    code = "import json, sys; from tests.ops.test_precision_settings import report; "
    code += "print(json.dumps(report(sys.argv[1])))"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    runs = {
        mode: subprocess.Popen(
            [sys.executable, "-c", code, mode], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for mode in ("cases", "pristine", "pristine-region")
    }
    out = {}
    for mode, run in runs.items():
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr.decode()
        out[mode] = json.loads(stdout)
    return out


def _ieee_and_readable(inside: dict[str, object]) -> None:
    assert "raises" not in inside.values(), inside
    # the entries the region writes; oneDNN's conv and rnn keep the caller's setting
    assert [inside[key] for key in ("cuda.conv", "cuda.rnn", "cuda.matmul", "mkldnn.matmul")] == ["ieee"] * 4
    assert (inside["cudnn.allow_tf32"], inside["cuda.matmul.allow_tf32"]) == (False, False)
    assert inside["float32_matmul_precision"] == "highest"


@pytest.mark.parametrize("case", list(SETUPS))
def test_every_setting_comes_back_as_it_was(reports, case):
    seen = reports["cases"][case]
    assert seen["region"] == seen["plain"]  # now, and after every later change
    _ieee_and_readable(seen["inside"])


def test_the_cases_cover_the_mixed_states_torch_refuses_to_read(reports):
    # a restore that "normalised" these states would make the raise go away: the comparison above would see it
    first = {case: seen["plain"][0] for case, seen in reports["cases"].items()}
    assert first["cudnn.conv ieee"]["cudnn.allow_tf32"] == "raises"
    assert first["cuda.matmul tf32"]["float32_matmul_precision"] == "raises"
    assert first["matmul medium"]["float32_matmul_precision"] == "medium"  # torch < 2.9's path made it "high"


def test_untouched_cudnn_entries_come_back_as_tf32(reports):
    pristine, region = reports["pristine"]["history"], reports["pristine-region"]["history"]
    _ieee_and_readable(reports["pristine-region"]["inside"])
    assert region[0] == pristine[0]  # everything reads as before
    # the one difference: torch's untouched conv and rnn come back stored as "tf32", exactly the state after
    # `torch.backends.cudnn.allow_tf32 = True`, so a later generic or cuDNN fp32_precision no longer reaches them
    assert region == reports["cases"]["defaults"]["plain"]
    differ = {key for old, new in zip(pristine, region, strict=True) for key in old if old[key] != new[key]}
    assert differ == {"cuda.conv", "cuda.rnn", "cudnn.allow_tf32"}


def test_pristine_state_matches_the_reset_the_other_tests_use(reports):
    assert reports["pristine"]["history"][0] == reports["cases"]["defaults"]["plain"][0]
