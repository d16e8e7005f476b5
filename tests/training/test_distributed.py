"""Data-parallel training under torchrun with gloo on CPU: same result as one process, resumable 2 -> 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

from mgsr.training.run import train

from ..helpers import assert_same_state, final_state, tiny_recipe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(recipe, out, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "mgsr",
        "train",
        str(recipe),
        "--out",
        str(out),
        "--device",
        "cpu",
        "-q",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_two_ranks_equal_one_process_and_resume_on_one(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=4, checkpoint_every=2)
    # two gloo ranks, global batch 4 (2 per rank), stopped at step 2 ...
    result = torchrun(recipe, tmp_path / "ddp", "--set", "training.steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    single2 = tmp_path / "single2"
    train(recipe, out=str(single2), overrides=["training.steps=2"], device="cpu", progress=False)
    ddp_state = final_state(tmp_path / "ddp")
    assert_same_state(final_state(single2), ddp_state, exact=False)
    # rank 0 wrote the only copies: one checkpoint per save, one metrics line per logged step
    steps = [line for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines() if "loss/total" in line]
    assert len(steps) == 2
    # ... then resumed by a single process (world size 2 -> 1) to step 4: same as 4 single-process steps
    train(recipe, out=str(tmp_path / "ddp"), resume="auto", device="cpu", progress=False)
    train(recipe, out=str(tmp_path / "single4"), device="cpu", progress=False)
    assert_same_state(final_state(tmp_path / "single4"), final_state(tmp_path / "ddp"), exact=False)
    torch.use_deterministic_algorithms(False)


def test_batch_that_does_not_divide_fails_naming_the_rank(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=2, batch_size=3)
    result = torchrun(recipe, tmp_path / "bad")
    assert result.returncode != 0
    assert "rank 0 of 2 failed" in result.stderr or "rank 1 of 2 failed" in result.stderr
    assert "must divide evenly over 2 processes" in result.stderr
