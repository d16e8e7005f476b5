"""Does training make a W knob?  Trains a recipe, tracks W = 0 and W = 1 per validation, then judges the knob on
held-out photos the run never saw against the targets below.

    nice -n 15 python benchmarks/knob_bench.py [--recipe recipes/knob_cpu.toml] [--steps N]
        [--validate-every N] [--set key=value ...] [--out runs/knob] [--heldout DIR] [--scale 4]
    python benchmarks/knob_bench.py --run runs/knob_cpu      # judge a finished run, no training
    python benchmarks/knob_bench.py --smoke    # seconds: benchmarks/smoke.toml, 4 steps (checks it runs)

Runs ``mgsr train``'s own entry point (:func:`mgsr.training.run.train`); with
``--validate-every`` it also checkpoints at every validation (the recipe's own
schedule otherwise: knob_cpu.toml checkpoints at each of its validations).  ``--steps`` lengthens or
shortens the objective stage (its learning-rate decay stretched over the run, as
a user lengthening a recipe would); without it the recipe's length is kept.

Per validation step of the objective it prints, on the recipe's validation images:
PSNR-Y at W = 0 and of bicubic, NIQE at W = 0 and W = 1, and the period-2 share
(Nyquist-line share of the Y spectrum) of the W = 1 output over the HR's, the worst image.

Then the knob on the held-out photos (``--heldout``, default the reference photos
astronaut, chelsea and coffee: ``$MGSR_REFERENCE/images``), PIRM-SR protocol at
``--scale``, W = 0, 0.25, 0.5, 0.75, 1 (seed 0; W = 1 also with seeds 1 and 2 for
the draw's noise), and the targets:

* RMSE(W = 0) below bicubic's;
* NIQE(W = 1) <= NIQE(W = 0) - 1.0;
* RMSE(W = 1) <= 1.3 x RMSE(W = 0) (the lower NIQE is detail, not noise);
* no period-2 grid: the worst image's share <= 2x its HR's at W = 0 and W = 1, phase spread <= 1 %;
* NIQE falls and RMSE rises monotonically along W, within the draw's noise.

Last line: ``knob: <figures> -> targets met`` (or ``-> missed: ...``, exit 1).  ``--smoke``
checks that the bench runs (4 steps of a toy model judge nothing, and say so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import mgsr
from mgsr.evaluation.knob import KnobReport, measure_knob
from mgsr.evaluation.upscalers import model_upscaler
from mgsr.training.checkpoint import checkpoint_name
from mgsr.training.data import resolve_folder, scan_images, validation_set
from mgsr.training.run import train
from mgsr.training.validation import validation_images

ROOT = Path(__file__).resolve().parent.parent
SMOKE_RECIPE = ROOT / "benchmarks" / "smoke.toml"
DEFAULT_RECIPE = ROOT / "recipes" / "knob_cpu.toml"
REFERENCE = Path(os.environ.get("MGSR_REFERENCE", ROOT.parent / "shared" / "reference"))

#: the targets: NIQE gap at most, RMSE ratio at most, period-2 ratio at most, phase spread at most
NIQE_GAP, RMSE_RATIO, PERIOD2, PHASE_SPREAD = -1.0, 1.3, 2.0, 0.01


def cpu_name() -> str:
    """The CPU's model name as ``lscpu`` gives it (figures are only comparable on one CPU)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def knob_overrides(steps: int | None, validate_every: int | None, extra: list[str]) -> list[str]:
    """The bench's recipe overrides: the length (decay over the run) when asked, a checkpoint at every validation."""
    own = []
    if steps is not None:
        own += [f"training.steps={steps}", f"training.lr_decay_steps={steps}"]
    if validate_every is not None:  # the per-validation rows read a checkpoint of every validated step
        own += [
            f"training.validate_every={validate_every}",
            f"training.checkpoint_every={validate_every}",
            f"training.keep_checkpoints={(steps or 10_000) // validate_every + 2}",
        ]
    return [*own, *extra]


@torch.no_grad()
def period2_rows(run: Path, recipe: mgsr.Recipe, steps: list[int]) -> dict[int, dict[str, float]]:
    """Per validation step: worst-image period-2 share ratio of W = 1 (and W = 0) to HR, and the shares, on the
    validation images as the trainer's validation prepares them (HR cropped to a multiple of the scale, MATLAB
    bicubic uint8 LR)."""
    registry = mgsr.default_registry()
    metric = registry.get("metric", "period2")
    period2 = metric(metric.Config())
    scale = 1 << max(recipe.training.scales)
    if not recipe.data.val:
        raise SystemExit("knob_bench: the recipe has no validation images (data.val)")
    data = recipe.data
    found = scan_images([resolve_folder(f) for f in data.val], min_side=scale, megapixels=data.target_megapixels)
    images = validation_images(validation_set(found.usable, data.val_crop, data.target_megapixels), scale)
    hr_share = [period2.score(image.hr) for image in images]
    rows = {}
    for step in steps:
        checkpoint = run / "checkpoints" / checkpoint_name(step)
        if not checkpoint.is_file():
            continue
        generator = mgsr.load_generator(checkpoint, registry)
        upscale = model_upscaler(generator, scale, seed=0)
        row: dict[str, float] = {"share_hr": max(hr_share)}
        for w in (0.0, 1.0):
            shares = [period2.score(upscale(image.lr, w)) for image in images]
            row[f"share_w{w:g}"] = max(shares)
            row[f"ratio_w{w:g}"] = max(s / h for s, h in zip(shares, hr_share, strict=True))
        rows[step] = row
    return rows


def validation_rows(run: Path) -> list[dict[str, float]]:
    """The objective stage's validation records of ``run`` with the period-2 shares of its checkpoints."""
    recipe = mgsr.load_recipe(run / "recipe.toml")
    logged: dict[int, dict[str, float]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "val/psnr_w0" in record and record.get("stage", "train") == "train":
            logged[record["step"]] = record
    shares = period2_rows(run, recipe, sorted(logged))
    nan = float("nan")
    return [
        {
            "step": step,
            "psnr_y": v["val/psnr_w0"],
            "psnr_y_bicubic": v["val/psnr_bicubic"],
            "niqe_w0": v.get("val/niqe_w0", nan),
            "niqe_w1": v.get("val/niqe_w1", nan),
            **shares[step],
        }
        for step, v in sorted(logged.items())
        if step in shares
    ]


def print_rows(rows: list[dict[str, float]]) -> None:
    print("step  PSNR-Y W=0  bicubic  NIQE W=0  NIQE W=1  p2 W=1    p2 HR     W=1/HR  W=0/HR")
    for r in rows:
        print(
            f"{r['step']:5d}  {r['psnr_y']:10.2f}  {r['psnr_y_bicubic']:7.2f}  {r['niqe_w0']:8.2f}  "
            f"{r['niqe_w1']:8.2f}  {r['share_w1']:.2e}  {r['share_hr']:.2e}  {r['ratio_w1']:6.1f}  {r['ratio_w0']:6.1f}"
        )


def missed_targets(report: KnobReport) -> list[str]:
    """The targets ``report`` misses, each named with its figure (empty: all met)."""
    w0, w1 = report.at(0.0), report.at(1.0)
    missed = []
    if not w0.rmse < report.bicubic_rmse:
        missed.append(f"RMSE(W=0) {w0.rmse:.3f} not below bicubic {report.bicubic_rmse:.3f}")
    if not report.niqe_gap <= NIQE_GAP:
        missed.append(f"NIQE gap {report.niqe_gap:+.2f} > {NIQE_GAP}")
    if not report.rmse_ratio <= RMSE_RATIO:
        missed.append(f"RMSE ratio {report.rmse_ratio:.3f} > {RMSE_RATIO}")
    for point in (w0, w1):
        if not point.period2_ratio <= PERIOD2:
            missed.append(f"period-2 at W={point.w:g} {point.period2_ratio:.2f}x > {PERIOD2}x")
    if report.phase_spread is not None and not report.phase_spread <= PHASE_SPREAD:
        missed.append(f"phase spread {report.phase_spread:.2%} > {PHASE_SPREAD:.0%}")
    if not report.monotone:
        missed.append(f"curve not monotone within the draw's noise ({report.draw_noise:.2f} NIQE)")
    return missed


def figures(report: KnobReport) -> str:
    w0, w1 = report.at(0.0), report.at(1.0)
    spread = "n/a" if report.phase_spread is None else f"{report.phase_spread:.2%}"
    return (
        f"RMSE(W=0) {w0.rmse:.3f} vs bicubic {report.bicubic_rmse:.3f}, NIQE W=1 - W=0 {report.niqe_gap:+.2f}, "
        f"RMSE W=1/W=0 {report.rmse_ratio:.3f}, period-2 W=0 {w0.period2_ratio:.2f}x W=1 {w1.period2_ratio:.2f}x, "
        f"phase spread {spread}, monotone {'yes' if report.monotone else 'no'}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    parser.add_argument("--steps", type=int, help="objective steps (default: the recipe's)")
    parser.add_argument("--validate-every", type=int, help="default: the recipe's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="run folder to keep (default: a temporary one)")
    parser.add_argument("--run", help="judge this finished run folder instead of training one")
    parser.add_argument("--heldout", default=str(REFERENCE / "images"), help="held-out HR photos (never trained on)")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"seconds: {SMOKE_RECIPE.name} (toy-size quickstart), 4 steps, validation at 2 and 4",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.recipe, args.steps, args.validate_every = str(SMOKE_RECIPE), 4, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") is None:
        torch.set_num_threads(1)  # a quality benchmark, not a speed one: leave the other cores alone
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} torch thread(s)")
    with tempfile.TemporaryDirectory(prefix="knob-bench-") as tmp:
        minutes = float("nan")
        if args.run:
            run = Path(args.run)
        else:
            run = Path(args.out) if args.out else Path(tmp) / "run"
            start = time.perf_counter()
            train(args.recipe, out=str(run), overrides=knob_overrides(args.steps, args.validate_every, args.set))
            minutes = (time.perf_counter() - start) / 60
            print(f"{args.recipe}, overrides {args.set or 'none'}: trained in {minutes:.1f} min")
        print_rows(validation_rows(run))
        generator = mgsr.load_generator(run)
        report = measure_knob(generator, args.heldout, scale=args.scale)
    print(f"held-out {args.heldout} at {args.scale}x (PIRM-SR protocol; W = 1 NIQE over seeds {report.niqe_draws})")
    print(report.table())
    missed = missed_targets(report)
    verdict = "targets met" if not missed else "missed: " + "; ".join(missed)
    if args.smoke:
        verdict = "smoke run: targets not judged"
    print(f"knob: {figures(report)}, {minutes:.1f} min -> {verdict}")
    return 0 if args.smoke or not missed else 1


if __name__ == "__main__":
    sys.exit(main())
