"""Seconds per training step of a recipe at its own batch and patch size (not run in CI).

    python benchmarks/train_step_bench.py recipes/pirm_r3.toml [--steps 2] [--set key=value ...]

Random HR patches stand in for data (the step's cost does not depend on the
pixels).  The contextual loss's VGG-19 is used with random weights when the
ImageNet file is not installed (same cost).  Reports the mean over ``--steps``
after one warm-up step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import mgsr
from mgsr.recipe import apply_overrides, load_recipe, read_recipe_table
from mgsr.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    table = apply_overrides(read_recipe_table(args.recipe), args.set + ["data.train=['samples:train']", "data.val=[]"])
    for loss in table.get("losses", []):
        if "features" in loss:
            loss["features"]["pretrained"] = False
    recipe = load_recipe(table)
    built = mgsr.build(recipe, training=True)
    trainer = Trainer(built, Path("/tmp/mgsr-bench-run"), device=args.device, progress=False)
    spec = recipe.training
    hr = torch.rand(spec.batch_size, 3, recipe.data.patch_size, recipe.data.patch_size)
    trainer.train_step(hr)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        trainer.train_step(hr)
        times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in built.generator.parameters())
    print(f"{args.recipe}: batch {spec.batch_size}, patch {recipe.data.patch_size}, scales {list(spec.scales)}, "
          f"generator {params:,} parameters, {torch.get_num_threads()} threads: "
          f"{sum(times) / len(times):.2f} s/step (mean of {len(times)})")


if __name__ == "__main__":
    main()
