"""The one script to run when a GPU is lent: the card, its CUDA-only tests, inference and training speed, as JSON.

    python benchmarks/gpu_check.py [--steps 200] [--budget-s 480] [--out gpu_check.json] [--recipe pirm_r3]
    python benchmarks/gpu_check.py --smoke    # CPU, under a minute: toy sizes, the CUDA-only parts skipped

Why one script: a card is lent for minutes, not hours, and a session that spends them installing, guessing
commands or reading tracebacks comes back with nothing.  This runs, offline and within ``--budget-s`` seconds
(8 minutes by default), in order:

1. the card (``torch.cuda.get_device_name``), torch's and CUDA's versions;
2. the CUDA-only tests: every test under ``tests/`` skipped with ``skipif(not torch.cuda.is_available())``,
   found by reading the test files (a new one is picked up without editing this list);
3. ``benchmarks/upscale_bench.py --precisions fp32,bf16,fp16`` on the card (time and grey levels off fp32);
4. ``mgsr train RECIPE`` (pirm_r3: batch 16, 128x128 patches, the paper's) for ``--steps`` steps at fp32 and
   bf16, eager and with ``training.compile``, each in a fresh process: steps/s and data wait per step from its
   ``metrics.jsonl`` (the first log interval, warm-up and compilation, left out), and peak memory (CUDA max
   allocated; on a CPU the process's resident peak).

Training runs the objective alone (``pretrain=none``, ``training.from_scratch``) on the bundled sample
photos, and the contextual loss's VGG-19 with random weights (as ``train_step_bench.py`` does: the same cost,
and the card has no network to fetch the ImageNet file).  A part that no longer fits in what is left of the
budget is skipped and the table says so; a part that overruns is stopped.  The last line reads
``gpu_check on DEVICE: N ok, N skipped, N failed in S s of B s -> OUT``; the exit status is 1 when a part failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
SMOKE_RECIPE = BENCHMARKS / "smoke.toml"
#: seconds kept back for the summary and the JSON
RESERVE_S = 5.0
#: first guesses of a part's seconds, before anything was measured on this machine
GUESS_S = {"tests": 120.0, "upscale": 60.0, "train": 120.0, "compile": 120.0}
PRECISION_LINE = re.compile(r"^\s+(fp32|bf16|fp16):\s+([\d.]+) s \(x([\d.]+) vs fp32\), max (\d+) grey levels")


class Budget:
    """Seconds left of ``--budget-s``: what decides whether the next part starts."""

    def __init__(self, seconds: float) -> None:
        self.total = seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the check began."""
        return time.perf_counter() - self.start

    def left(self) -> float:
        """Seconds a part may still take, the reserve for the summary kept back."""
        return self.total - self.elapsed() - RESERVE_S

    def refuse(self, need: float) -> str | None:
        """Why a part of about ``need`` seconds cannot start now (None: it fits)."""
        if need <= self.left():
            return None
        return f"needs ~{need:.0f} s, {max(self.left(), 0):.0f} s left of --budget-s {self.total:.0f}"


def run_process(command: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int | None, str, str]:
    """Run ``command`` from the repository root; (exit status or None when stopped at ``timeout``, stdout,
    stderr).  Its own process group, so that an overrun also stops its data-loader workers."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=max(timeout, 1.0))
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err


def device_label(device: torch.device) -> str:
    """The card's name, or the CPU model's: ``upscale_bench.device_name``, so both reports name it alike."""
    sys.path.insert(0, str(BENCHMARKS))
    from upscale_bench import device_name

    return device_name(device)


def cuda_only_tests() -> list[str]:
    """Node ids of the tests skipped without CUDA: ``skipif(not torch.cuda.is_available(), ...)`` on a test, a
    class or a module's ``pytestmark``."""
    found = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if "cuda.is_available" in text:
            found += [f"{path.relative_to(REPO)}{name}" for name in _cuda_skipped(ast.parse(text))]
    return found


def _needs_cuda(decorator: ast.expr) -> bool:
    """Whether a decorator (or a ``pytestmark`` value) is ``skipif(not ...cuda.is_available())``."""
    return (
        isinstance(decorator, ast.Call)
        and ast.unparse(decorator.func).endswith("skipif")
        and bool(decorator.args)
        and re.fullmatch(r"not [\w.]*cuda\.is_available\(\)", ast.unparse(decorator.args[0])) is not None
    )


def _cuda_skipped(tree: ast.Module) -> list[str]:
    """``::name`` suffixes of the module's CUDA-only tests and classes; ``[""]`` when the whole module is."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(ast.unparse(t) == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            if any(_needs_cuda(v) for v in values):
                return [""]
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(_needs_cuda(d) for d in node.decorator_list):
            names.append(f"::{node.name}")
        elif isinstance(node, ast.ClassDef):
            names += [
                f"::{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef) and any(_needs_cuda(d) for d in item.decorator_list)
            ]
    return names


def check_tests(cuda: bool, budget: Budget) -> dict[str, Any]:
    """Run the CUDA-only tests on the card (on a CPU: list them, skipped)."""
    tests = cuda_only_tests()
    row: dict[str, Any] = {"part": "CUDA-only tests", "tests": tests}
    if not cuda:
        return {**row, "status": "skipped", "result": f"no CUDA device ({len(tests)} found)"}
    if not tests:
        return {**row, "status": "failed", "result": "no CUDA-only test found under tests/"}
    if why := budget.refuse(GUESS_S["tests"]):
        return {**row, "status": "skipped", "result": why}
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests]
    code, out, err = run_process(command, budget.left())
    last = out.strip().splitlines()[-1] if out.strip() else ""  # pytest's summary: "4 passed, 1 warning in 9s"
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last)}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no summary"
    if code is None:
        return {**row, "status": "failed", "result": f"stopped at the budget ({summary})", "tail": out[-3000:]}
    status = "ok" if code == 0 and not counts.get("skipped") else "failed"
    return {**row, "status": status, "result": summary, "tail": (out + err)[-3000:] if status != "ok" else ""}


def check_upscale(device: torch.device, smoke: bool, budget: Budget) -> list[dict[str, Any]]:
    """``upscale_bench.py --precisions fp32,bf16,fp16`` on ``device``: one row per precision."""
    if why := budget.refuse(GUESS_S["upscale"]):
        return [{"part": "upscale fp32/bf16/fp16", "status": "skipped", "result": why}]
    size = ["--smoke"] if smoke else ["--side", "512"]
    command = [sys.executable, str(BENCHMARKS / "upscale_bench.py"), *size, "--precisions", "fp32,bf16,fp16"]
    code, out, err = run_process([*command, "--device", device.type], budget.left())
    rows = []
    for line in out.splitlines():
        if match := PRECISION_LINE.match(line):
            precision, seconds, speed, grey = match.groups()
            rows.append(
                {
                    "part": f"upscale {precision}",
                    "status": "ok",
                    "result": f"{float(seconds):.3f} s (x{speed} vs fp32), max {grey} grey levels off fp32",
                    "seconds": float(seconds),
                    "max_grey_levels": int(grey),
                }
            )
    if code != 0 or len(rows) != 3:
        why = "stopped at the budget" if code is None else f"exit {code}"
        rows.append({"part": "upscale bench", "status": "failed", "result": why, "tail": (out + err)[-3000:]})
    return rows


def train_overrides(recipe: str, steps: int, precision: str, compiled: bool) -> list[str]:
    """``--set`` values: the objective alone for ``steps`` steps, no validation images, VGG-19 untrained."""
    from mgsr.recipe.tables import read_recipe_table

    log_every = max(1, steps // 10)
    overrides = [
        f"training.steps={steps}",
        "training.epochs=none",
        f"training.log_every={log_every}",
        f'training.precision="{precision}"',
        f"training.compile={str(compiled).lower()}",
        "training.from_scratch=true",
        "training.discriminator_warmup_steps=0",
        f"training.validate_every={steps + 1}",
        f"training.sample_every={steps + 1}",
        f"training.checkpoint_every={steps + 1}",
        "pretrain=none",
        "model.weights=none",
        "data.val=[]",
        "data.holdout=0",
    ]
    table = read_recipe_table(recipe_path(recipe))
    for index, loss in enumerate(table.get("losses", [])):
        if "features" in loss:  # random weights, the same cost: no download on an offline card
            overrides.append(f"losses.{index}.features.pretrained=false")
    return overrides


def recipe_path(recipe: str) -> str:
    """A bundled recipe's file (``pirm_r3``), or the path given."""
    from mgsr.recipe.names import find_recipe

    return str(find_recipe(recipe))


def train_child(spec: dict[str, Any]) -> dict[str, Any]:
    """In the child process: ``mgsr train`` as the command runs it, then the process's peak memory.

    A fresh process per run, so that the peak and the compiled graphs belong to that run alone.
    """
    from mgsr.training.run import train

    cuda = torch.device(spec["device"]).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(
        spec["recipe"],
        data=spec["data"],
        out=spec["out"],
        overrides=spec["overrides"],
        device=spec["device"],
        progress=False,
    )
    if cuda:
        return {"wall_s": time.perf_counter() - start, "peak_mib": torch.cuda.max_memory_allocated() / 2**20}
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return {"wall_s": time.perf_counter() - start, "peak_mib": peak_kib / 1024}


def step_figures(metrics: Path) -> dict[str, float] | None:
    """Steps/s and data wait per step from a run's ``metrics.jsonl``, its first log interval (warm-up and
    compilation) left out unless it is the only one; None when no interval was logged."""
    intervals = []
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # the line a stopped run was writing
                continue
            if isinstance(record, dict) and "time/step_s" in record:
                intervals.append(record)
    if not intervals:
        return None
    timed = intervals[1:] or intervals
    step_s = sum(r["time/step_s"] for r in timed) / len(timed)
    return {
        "steps_per_s": 1 / step_s if step_s > 0 else float("inf"),
        "data_wait_s": sum(r["time/data_wait_s"] for r in timed) / len(timed),
        "steps_logged": float(intervals[-1]["step"]),
    }


def train_run(args: argparse.Namespace, device: torch.device, precision: str, compiled: bool, timeout: float) -> dict:
    """One training run in a fresh process, its figures read from the run's log (also when it was stopped)."""
    with tempfile.TemporaryDirectory(prefix="mgsr-gpu-check-") as folder:
        run = Path(folder) / "run"
        spec = {
            "recipe": args.recipe,
            "data": ["samples:train"],
            "out": str(run),
            "device": device.type,
            "overrides": train_overrides(args.recipe, args.steps, precision, compiled),
        }
        start = time.perf_counter()
        command = [sys.executable, __file__, "--child-train", json.dumps(spec)]
        code, out, err = run_process(command, timeout, dict(os.environ, MGSR_OFFLINE="1"))
        wall = time.perf_counter() - start
        figures = step_figures(run / "metrics.jsonl")
    row: dict[str, Any] = {"precision": precision, "compiled": compiled, "steps": args.steps, "wall_s": wall}
    if figures:
        row.update(figures)
        row["result"] = f"{figures['steps_per_s']:.3g} steps/s, data wait {1000 * figures['data_wait_s']:.3g} ms/step"
    if code == 0:
        peak = json.loads(out.strip().splitlines()[-1])["peak_mib"]
        kind = "CUDA max allocated" if device.type == "cuda" else "resident peak"
        row.update(status="ok" if figures else "failed", peak_mib=peak, peak_kind=kind)
        row["result"] = f"{row.get('result', 'no step logged')}, peak {peak:.0f} MiB ({kind}), {wall:.0f} s"
        return row
    why = f"stopped at the budget after {wall:.0f} s" if code is None else f"exit {code}"
    partial = f" ({row['result']} before it)" if figures else ""
    return {**row, "status": "failed", "result": why + partial, "tail": err[-3000:]}


def check_training(args: argparse.Namespace, device: torch.device, budget: Budget) -> list[dict[str, Any]]:
    """The recipe at fp32 and bf16, eager then compiled; a run that no longer fits is skipped."""
    walls: dict[bool, float] = {}  # seconds the last run of each kind took, the next one's estimate
    rows = []
    name = Path(args.recipe).stem
    for compiled in (False, True):
        for precision in ("fp32", "bf16"):
            row: dict[str, Any] = {"part": f"train {name} {precision} {'compiled' if compiled else 'eager'}"}
            eager = walls.get(False, GUESS_S["train"])
            need = walls.get(True, eager + GUESS_S["compile"]) if compiled else eager
            if compiled and args.smoke:
                row.update(status="skipped", result="--smoke: torch.compile on a CPU needs a C++ compiler and minutes")
            elif why := budget.refuse(need):
                row.update(status="skipped", result=why)
            else:
                row.update(train_run(args, device, precision, compiled, budget.left()))
                walls[compiled] = row["wall_s"]
            rows.append(report_row(row))
    return rows


def report_row(row: dict[str, Any]) -> dict[str, Any]:
    """Print a part's row as it finishes (a run stopped from outside still shows what was done); return it."""
    print(f"  {row['part']:<30} {row['status']:<8} {row['result']}", flush=True)
    if row["status"] == "failed" and row.get("tail"):
        print("    " + row["tail"].strip().replace("\n", "\n    "), flush=True)
    return row


def header(device: torch.device) -> dict[str, Any]:
    """The machine: the card (or the CPU), torch, CUDA and the card's memory; printed first."""
    info: dict[str, Any] = {"device": device_label(device), "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        info["memory_gib"] = torch.cuda.get_device_properties(device).total_memory / 2**30
        print(
            f"gpu_check: {info['device']}, {info['memory_gib']:.0f} GiB; "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}"
        )
    else:
        print(f"gpu_check: no card, CPU {info['device']}; torch {torch.__version__}")
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per run (default 200)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds for everything (default 480)")
    parser.add_argument("--out", default="gpu_check.json", help="the report as JSON (default gpu_check.json)")
    parser.add_argument("--recipe", default="pirm_r3", help="the recipe trained (default pirm_r3, the paper's batch)")
    parser.add_argument("--smoke", action="store_true", help="CPU, toy recipe, 4 steps: checks that it runs")
    parser.add_argument("--child-train", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train is not None:
        print(json.dumps(train_child(json.loads(args.child_train))))
        return 0
    if args.smoke:
        args.steps, args.recipe = 4, str(SMOKE_RECIPE)
    elif not torch.cuda.is_available():
        parser.error("no CUDA device: this script is for a lent card (--smoke checks it on a CPU)")
    device = torch.device("cpu" if args.smoke else "cuda")
    budget = Budget(args.budget_s)
    report = header(device)
    rows = [report_row(check_tests(device.type == "cuda", budget))]
    rows += [report_row(row) for row in check_upscale(device, args.smoke, budget)]
    rows += check_training(args, device, budget)
    return summarise(report, rows, args, budget)


def summarise(report: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace, budget: Budget) -> int:
    """The one table, the JSON file and the last line; 1 when a part failed."""
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    report.update(budget_s=args.budget_s, elapsed_s=budget.elapsed(), smoke=args.smoke, steps=args.steps, parts=rows)
    print(f"\n{'part':<32}{'status':<9}result   ({report['device']})")
    for row in rows:
        print(f"{row['part']:<32}{row['status']:<9}{row['result']}")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"gpu_check on {report['device']}: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed "
        f"in {budget.elapsed():.0f} s of {args.budget_s:.0f} s -> {args.out}"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
