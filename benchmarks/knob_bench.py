"""Does training keep the W knob sane?  Trains a recipe and tracks W = 0 and W = 1 per validation step.

    nice -n 15 python benchmarks/knob_bench.py [--recipe recipes/quickstart.toml] [--steps 1500]
        [--validate-every 100] [--set key=value ...] [--out runs/knob]
    python benchmarks/knob_bench.py --smoke    # seconds: benchmarks/smoke.toml, 4 steps (checks it runs)

Runs ``mgsr train``'s own entry point (:func:`mgsr.training.run.train`) with the
learning-rate decay stretched over the run (``lr_decay_steps = steps``, as a
user lengthening the quickstart would) and a checkpoint at every validation.
Then per validation step it prints, on the recipe's validation images:

* PSNR-Y at W = 0 and of bicubic, NIQE at W = 0 and W = 1 (what training logs);
* the ``period2`` metric (share of the Y spectrum on the Nyquist row and column,
  DC excluded) of the W = 1 output and of the HR image, and their ratio, the
  worst over the images: a period-2 grid shows as a ratio >> 1.

W = 1 is drawn with seed 0, as training's validation does.  Last line:
``period-2 share W=1/HR: R (worst step), NIQE W=1 - W=0: D (last step)``.
``--set`` overrides apply after the bench's own (so they can change those too).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

import mgsr
from mgsr.evaluation.upscalers import model_upscaler
from mgsr.training.checkpoint import checkpoint_name
from mgsr.training.data import resolve_folder, scan_images, validation_set
from mgsr.training.run import train
from mgsr.training.validation import validation_images

ROOT = Path(__file__).resolve().parent.parent
SMOKE_RECIPE = ROOT / "benchmarks" / "smoke.toml"


def knob_overrides(steps: int, validate_every: int, extra: list[str]) -> list[str]:
    """The bench's recipe overrides: length, decay over the run, a checkpoint at every validation."""
    return [
        f"training.steps={steps}",
        f"training.lr_decay_steps={steps}",
        f"training.validate_every={validate_every}",
        f"training.checkpoint_every={validate_every}",
        f"training.keep_checkpoints={steps // validate_every + 2}",
        *extra,
    ]


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
        generator = mgsr.load_generator(run / "checkpoints" / checkpoint_name(step), registry)
        upscale = model_upscaler(generator, scale, seed=0)
        row: dict[str, float] = {"share_hr": max(hr_share)}
        for w in (0.0, 1.0):
            shares = [period2.score(upscale(image.lr, w)) for image in images]
            row[f"share_w{w:g}"] = max(shares)
            row[f"ratio_w{w:g}"] = max(s / h for s, h in zip(shares, hr_share, strict=True))
        rows[step] = row
    return rows


def run_knob_bench(
    recipe_path: str, steps: int, validate_every: int, overrides: list[str], out: str | None = None
) -> list[dict[str, float]]:
    """Train and measure; one row per validation step (step, PSNR-Y, bicubic, NIQE W=0/1, period-2 shares)."""
    overrides = knob_overrides(steps, validate_every, overrides)
    with tempfile.TemporaryDirectory(prefix="knob-bench-") as tmp:
        run = Path(out) if out else Path(tmp) / "run"
        train(recipe_path, out=str(run), overrides=overrides, progress=False)
        recipe = mgsr.load_recipe(run / "recipe.toml")
        logged: dict[int, dict[str, float]] = {}
        for line in (run / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "val/psnr_w0" in record:
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
    ]


def summary(rows: list[dict[str, float]]) -> tuple[float, float]:
    """R: the worst period-2 share ratio W=1/HR over the steps; D: NIQE W=1 - W=0 at the last step."""
    return max(r["ratio_w1"] for r in rows), rows[-1]["niqe_w1"] - rows[-1]["niqe_w0"]


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "quickstart.toml"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="run folder to keep (default: a temporary one)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"seconds: {SMOKE_RECIPE.name} (toy-size quickstart), 4 steps, validation at 2 and 4",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.recipe, args.steps, args.validate_every = str(SMOKE_RECIPE), 4, 2
    if os.environ.get("OMP_NUM_THREADS") is None:
        torch.set_num_threads(1)  # a quality benchmark, not a speed one: leave the other cores alone
    rows = run_knob_bench(args.recipe, args.steps, args.validate_every, args.set, args.out)
    print(f"{args.recipe}, {args.steps} steps, overrides {args.set or 'none'}")
    print("step  PSNR-Y W=0  bicubic  NIQE W=0  NIQE W=1  p2 W=1    p2 HR     W=1/HR  W=0/HR")
    for r in rows:
        print(
            f"{r['step']:5d}  {r['psnr_y']:10.2f}  {r['psnr_y_bicubic']:7.2f}  {r['niqe_w0']:8.2f}  "
            f"{r['niqe_w1']:8.2f}  {r['share_w1']:.2e}  {r['share_hr']:.2e}  {r['ratio_w1']:6.1f}  {r['ratio_w0']:6.1f}"
        )
    worst, gap = summary(rows)
    print(f"period-2 share W=1/HR: {worst:.2f} (worst step), NIQE W=1 - W=0: {gap:.2f} (last step)")
    return rows


if __name__ == "__main__":
    main()
