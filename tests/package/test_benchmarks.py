"""Every benchmark still runs: ``benchmarks/*.py --smoke`` in a fresh interpreter, exit 0, its usual last line.

Benchmarks are not run at size in CI, so without this they rot silently when the package moves underneath
them.  The list of scripts is read from the folder: a new benchmark without ``--smoke`` (or without its last
line below) fails here.  About 50 s of CPU in all, most of it importing torch in each process; the runs go two
at a time, each on one thread, so on CI's two cores the module takes about half that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from ..conftest import REFERENCE, REPO

BENCHMARKS = REPO / "benchmarks"
NUM = r"-?\d+(?:\.\d+)?"  # a finite number as the reports print it: nan or inf does not match
#: the last report line of each run, by script and extra arguments after --smoke
LAST_LINE = {
    ("adaptive_w_bench.py",): rf"adaptive vs global at equal RMSE: mean NIQE gain {NUM} over [1-9] budgets",
    ("data_bench.py",): rf"patches/s per worker: raw {NUM}, prepared {NUM}",
    ("gpu_check.py",): rf"gpu_check on .+: \d+ ok, \d+ skipped, 0 failed in {NUM} s of {NUM} s -> gpu_check\.json",
    ("finetune_bench.py",): rf"finetune: pages PSNR-Y\(W=0\) \+?{NUM} dB, .* -> smoke run: targets not judged",
    ("knob_bench.py",): rf"knob: RMSE\(W=0\) {NUM} vs bicubic {NUM}, NIQE W=1 - W=0 \+?{NUM}, .* -> smoke run: .*",
    ("memory_bench.py",): rf"measured peak increase of the job: +{NUM} MiB \({NUM} x the sum, {NUM} s\)",
    ("pirm_table.py",): rf"pirm-r3 +1( +{NUM}){{5}}",
    ("train_step_bench.py",): rf"bf16 / fp32 = {NUM}x",
    ("upscale_bench.py",): rf"Mpx per CPU-second from {NUM} to {NUM} Mpx: min/max = {NUM} \(flat within {NUM} %\)",
    ("upscale_bench.py", "--vs-release"): rf"speed-up vs release: {NUM} \(32->128\)",
}
RUNS = sorted({(path.name,) for path in BENCHMARKS.glob("*.py")} | set(LAST_LINE))


def smoke(run: tuple[str, ...], folder: Path) -> subprocess.CompletedProcess:
    """``benchmarks/SCRIPT --smoke EXTRA...`` in ``folder`` (its working and cache folder), one torch thread."""
    script, *extra = run
    env = dict(os.environ, OMP_NUM_THREADS="1", MGSR_CACHE=str(folder / "cache"), MGSR_REFERENCE=str(REFERENCE))
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", *extra],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory) -> dict[tuple[str, ...], Future]:
    """The runs this session selected, started two at a time as the module begins (each test waits for its own)."""
    selected = [
        item.callspec.params["run"]
        for item in request.session.items
        if item.originalname == "test_smoke_run_ends_with_its_report_line"
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            run: pool.submit(smoke, run, tmp_path_factory.mktemp("bench"))
            for run in selected
            if run in LAST_LINE and (BENCHMARKS / run[0]).is_file()
        }


@pytest.mark.parametrize("run", RUNS, ids=" ".join)
def test_smoke_run_ends_with_its_report_line(run, smoke_runs):
    script, *extra = run
    assert run in LAST_LINE, f"benchmarks/{script}: add the last line its --smoke run prints to LAST_LINE here"
    assert (BENCHMARKS / script).is_file(), f"LAST_LINE names benchmarks/{script}, which is gone"
    done = smoke_runs[run].result()
    assert done.returncode == 0, f"{script} --smoke {' '.join(extra)} failed:\n{done.stderr[-3000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"{script} --smoke printed nothing; stderr:\n{done.stderr[-2000:]}"
    assert re.fullmatch(LAST_LINE[run], lines[-1].strip()), done.stdout[-2000:]
