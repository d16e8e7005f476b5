"""Do adaptive W maps beat one global W at equal RMSE on photos they were not fitted on?

    nice -n 15 python benchmarks/adaptive_w_bench.py [--fit DIR] [--test DIR] [--model pirm-r3] [--scale 4]
        [--budgets 9.1,9.4,9.8] [--figure docs/adaptive_w.png] [--smoke]

Fits the adaptive rule (:mod:`mgsr.evaluation.adaptive_fit`, what ``mgsr calibrate --adaptive`` runs) on
``--fit`` for each RMSE budget, then on ``--test`` scores each fitted rule and a dense global-W sweep (PIRM
protocol, seed 0), and reads the global frontier's NIQE at the adaptive map's held-out RMSE by linear
interpolation between neighbouring W.  Budgets default to the fitting set's RMSE at global W = 0.0075,
0.015 and 0.03 (the span of pirm-r3's cliff).  Defaults: fit on ``mgsr/samples/train`` (shipped), test on
the public photos of ``../shared/reference/images`` (astronaut, chelsea, coffee).  Also times an adaptive
upscale against a plain one (``mgsr.upscale``, whole image).  ``--smoke`` runs a tiny version in seconds.
Last line: ``adaptive vs global at equal RMSE: mean NIQE gain G over K budgets``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mgsr
from mgsr.evaluation.adaptive_fit import BASE_AMPLITUDES, candidate_shapes, fit_for_budget, measure_curves
from mgsr.evaluation.protocol import get_protocol
from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler
from mgsr.inference.adaptive import AdaptiveRule, adaptive_map

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIT = ROOT / "mgsr" / "samples" / "train"
DEFAULT_TEST = ROOT.parent / "shared" / "reference" / "images"
#: the held-out global sweep: dense across pirm-r3's cliff (W = 0 .. 0.045)
GLOBAL_SWEEP = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03, 0.045)


def frontier_niqe(sweep: list[tuple[float, float, float]], rmse: float) -> float:
    """NIQE of the global-W frontier at ``rmse``: linear between the Pareto points of the sweep (W, RMSE, NIQE)
    around it (a W beaten on both RMSE and NIQE by another is not on the frontier); NaN outside its range."""
    ordered = sorted(sweep, key=lambda p: (p[1], p[2]))
    pareto = [p for i, p in enumerate(ordered) if all(q[2] > p[2] for q in ordered[:i])]
    r = np.array([p[1] for p in pareto])
    if not r[0] <= rmse <= r[-1]:
        return float("nan")
    return float(np.interp(rmse, r, [p[2] for p in pareto]))


def smoke_folders(tmp: Path) -> tuple[Path, Path]:
    """A tiny fitting crop and a tiny held-out crop (104x104 HR: one 96x96 NIQE block after the 4-pixel shave) from shipped images."""
    fit, test = tmp / "fit", tmp / "test"
    fit.mkdir(), test.mkdir()
    samples = ROOT / "mgsr" / "samples"
    for folder, names in ((fit, ("train/retina.png",)), (test, ("val/grace_hopper_face.png",))):
        for name in names:
            Image.open(samples / name).convert("RGB").crop((0, 0, 104, 104)).save(folder / Path(name).name)
    return fit, test


def cropped(folder: Path, side: int, into: Path) -> Path:
    """Centre crops of ``side`` x ``side`` of every image of ``folder`` (smaller ones kept whole) in ``into``."""
    from mgsr.io.files import image_files

    into.mkdir()
    for path in image_files(folder):
        im = Image.open(path).convert("RGB")
        left, top = max(0, (im.width - side) // 2), max(0, (im.height - side) // 2)
        im.crop((left, top, min(im.width, left + side), min(im.height, top + side))).save(into / f"{path.stem}.png")
    return into


def cost(model: str, rule: AdaptiveRule, image: Path, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of a plain and of an adaptive ``mgsr.upscale`` of ``image``'s 4x downscale."""
    generator = mgsr.load_generator(model)
    picture = Image.open(image).convert("RGB")
    lr = picture.resize((picture.width // 4, picture.height // 4), Image.BICUBIC)
    times = {}
    mgsr.upscale(lr, model=generator, noise=rule, tile=None, backend="torch")  # warm-up: first calls are slower
    for label, noise in (("plain", float(np.mean(rule.levels))), ("adaptive", rule)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            mgsr.upscale(lr, model=generator, noise=noise, tile=None, backend="torch")
            best = min(best, time.perf_counter() - start)
        times[label] = best
    return times["plain"], times["adaptive"]


def figure(path: Path, model: str, scale: int, images: list[Path], rule: AdaptiveRule, global_w: float) -> None:
    """Per held-out image a row: global W | adaptive map | the map (white = the levels' W, black = 0)."""
    from PIL import ImageDraw

    from mgsr.evaluation.protocol import crop_to_multiple, make_lr
    from mgsr.evaluation.scoring import read_uint8

    upscale, _ = make_upscaler(model, scale, 0)
    rows = []
    for image in images:
        hr = crop_to_multiple(read_uint8(image), scale)
        lr = make_lr(hr, scale)
        a, b = upscale(lr, global_w), upscale(lr, rule)
        m = adaptive_map(rule, lr.astype(np.float32) / 255)
        m = np.asarray(Image.fromarray((m * 255).round().astype(np.uint8)).resize(a.shape[1::-1], Image.NEAREST))
        gap = np.full((a.shape[0], 8, 3), 255, np.uint8)
        rows.append(np.concatenate([a, gap, b, gap, np.repeat(m[..., None], 3, 2)], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    picture = Image.fromarray(np.concatenate([np.full((16, width, 3), 255, np.uint8), *rows], 0))
    draw, panel = ImageDraw.Draw(picture), rows[0].shape[1] // 3
    for k, label in enumerate(
        (f"global W = {global_w:.4g}", "adaptive map, same set RMSE", "map: white = W, black = 0")
    ):
        draw.text((k * panel + 4, 2), label, fill=(0, 0, 0))
    picture.save(path)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", default=str(DEFAULT_FIT), help="HR images to fit on (default: %(default)s)")
    parser.add_argument("--test", default=str(DEFAULT_TEST), help="held-out HR images (default: %(default)s)")
    parser.add_argument("--model", default="pirm-r3")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--budgets", default=None, help="RMSE budgets A,B,C (default: from the fitting set)")
    parser.add_argument("--figure", default=None, help="write the before/after figure of the middle budget here")
    parser.add_argument("--shapes", default=None, help="search only these map shapes, e.g. global,flat-relative")
    parser.add_argument("--sweep", default=None, help="held-out global W values A,B,C (default: 10 from 0 to 0.045)")
    parser.add_argument("--crop", type=int, default=0, help="use centre crops of this side (0: whole images)")
    parser.add_argument("--smoke", action="store_true", help="tiny images, two shapes, two budgets: seconds")
    args = parser.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") is None:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    tmp = Path(tempfile.mkdtemp(prefix="adaptive-bench-"))
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path) -> float:
    fit_dir, test_dir = smoke_folders(tmp) if args.smoke else (Path(args.fit), Path(args.test))
    if not test_dir.is_dir():
        raise SystemExit(f"adaptive_w_bench: {test_dir}: no such folder; give held-out HR images with --test DIR")
    if args.crop:
        fit_dir, test_dir = (
            cropped(fit_dir, args.crop, tmp / "fit_crops"),
            cropped(test_dir, args.crop, tmp / "test_crops"),
        )
    protocol = get_protocol("pirm2018")
    upscale, _ = make_upscaler(args.model, args.scale, protocol.seed)
    registry = mgsr.default_registry()
    fit = SetEvaluator.create(upscale, fit_dir, args.scale, protocol, registry)
    test = SetEvaluator.create(upscale, test_dir, args.scale, protocol, registry)
    lrs = [im.lr for im in fit.images]
    levels = args.scale.bit_length() - 1
    shapes = candidate_shapes(levels, lrs)
    base = BASE_AMPLITUDES
    if args.shapes:
        shapes = [s for s in shapes if s[0] in args.shapes.split(",")]
        if not shapes or shapes[0][0] != "global":
            raise SystemExit("adaptive_w_bench: --shapes must include global (the budgets come from it)")
    if args.smoke:
        shapes, base = [shapes[0], shapes[2]], base[::2]
    say = lambda m: print(f"  {m}", flush=True)  # noqa: E731
    print(
        f"fit: {fit_dir} ({len(fit.images)} images), held out: {test_dir} ({len(test.images)} images), "
        f"{args.model} x{args.scale}",
        flush=True,
    )
    start = time.perf_counter()
    curves = measure_curves(fit.evaluate, shapes, lrs, base, progress=say)
    fit_seconds = time.perf_counter() - start
    glob = curves[0]
    budgets = (
        [float(b) for b in args.budgets.split(",")]
        if args.budgets
        else [r for r in glob.rmse[1:] if r > glob.rmse[0]][: 2 if args.smoke else 3]
    )
    fits = [fit_for_budget(fit.evaluate, curves, b, fit_seconds, verify=False) for b in budgets]
    print(
        f"fitting: {fit_seconds:.0f} s for {len(shapes)} shapes x {len(base)} amplitudes + W=0 "
        f"({sum(im.hr.shape[0] * im.hr.shape[1] for im in fit.images) / 1e6:.2f} Mpx of HR)",
        flush=True,
    )
    sweep = []
    for w in (
        GLOBAL_SWEEP[::3] if args.smoke else [float(v) for v in args.sweep.split(",")] if args.sweep else GLOBAL_SWEEP
    ):
        agg = test.evaluate(w).aggregate
        sweep.append((w, agg["rmse"], agg["niqe"]))
        say(f"held-out global W={w:g}: RMSE {agg['rmse']:.4f}, NIQE {agg['niqe']:.4f}")
    print(
        f"{'budget':>7} {'shape':>16} {'fit RMSE':>8} {'fit NIQE':>8} | {'test RMSE':>9} {'NIQE':>6} "
        f"{'global NIQE':>11} {'gain':>6}"
    )
    gains = []
    held = []
    for f in fits:
        agg = test.evaluate(f.rule).aggregate
        g_niqe = frontier_niqe(sweep, agg["rmse"])
        gains.append(g_niqe - agg["niqe"])
        held.append((f, agg["rmse"]))
        print(
            f"{f.max_rmse:7.3f} {f.name:>16} {f.predicted[0]:8.3f} {f.predicted[1]:8.3f} | {agg['rmse']:9.3f} "
            f"{agg['niqe']:6.3f} {g_niqe:11.3f} {gains[-1]:6.3f}   levels {[round(w, 4) for w in f.rule.levels]}",
            flush=True,
        )
    smallest = min(test_dir.iterdir(), key=lambda p: p.stat().st_size)
    plain, adaptive = cost(args.model, fits[-1].rule, smallest, 1 if args.smoke else 3)
    print(f"cost on {smallest.name}: plain {plain:.2f} s, adaptive {adaptive:.2f} s ({adaptive / plain:.3f}x)")
    if args.figure:
        f, rmse = held[len(held) // 2]
        r = [p[1] for p in sweep]
        w = float(np.interp(rmse, r, [p[0] for p in sweep]))
        figure(Path(args.figure), args.model, args.scale, sorted(test_dir.iterdir()), f.rule, w)
        print(f"wrote {args.figure}: global W={w:.4g} | adaptive ({f.name}) | map, at held-out RMSE {rmse:.3f}")
    valid = [g for g in gains if np.isfinite(g)]
    mean = float(np.mean(valid)) if valid else float("nan")
    print(f"adaptive vs global at equal RMSE: mean NIQE gain {mean:.3f} over {len(valid)} budgets")
    return mean


if __name__ == "__main__":
    main()
