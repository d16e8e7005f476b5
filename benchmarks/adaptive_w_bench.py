"""Do adaptive W maps beat one global W at equal RMSE on photos they were not fitted on?

    nice -n 15 python benchmarks/adaptive_w_bench.py [--fit DIR] [--test DIR] [--model pirm-r3] [--scale 4]
        [--budgets 9.1,9.4,9.8] [--rules 150] [--figure docs/adaptive_w.png] [--smoke]

Fits the adaptive rule on ``--fit`` as ``mgsr calibrate --adaptive`` does (:mod:`mgsr.evaluation.adaptive_fit`:
a grid of global-W passes, then the named shapes and ``--rules`` random rules scored from that grid) for each
RMSE budget, then on ``--test`` runs each fitted rule for real and compares it with the global W at the same
held-out RMSE.  That comparison is dense where it matters: the held-out set is upscaled at the grid's global
W, and at the W the grid says matches each map's held-out RMSE, and the global frontier is read between the
nearest real points (a sparse global curve flatters any map, because pirm-r3's curve is not straight across
its cliff).  Budgets default to the fitting set's RMSE at global W = 0.0075, 0.01 and 0.0125.
Defaults: fit on ten public-domain photos of scikit-image's data (astronaut, chelsea and coffee left out;
crops of at most 392x392; ``pip install "mgsr[bench]"``), or on ``mgsr/samples/train`` without
scikit-image; test on ``../shared/reference/images`` (astronaut, chelsea, coffee).  Prints the estimate's
error on the held-out set, and the seconds of an adaptive upscale against a plain one (``mgsr.upscale``).
``--smoke`` runs a tiny version in seconds.  Last line: ``adaptive vs global at equal RMSE: mean NIQE gain G
over K budgets``.
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
from mgsr.evaluation.adaptive_fit import RANDOM_RULES, candidate_shapes, fit_for_budget, measure_curves
from mgsr.evaluation.adaptive_grid import DEFAULT_GRID, global_points, measure_grid, set_scores
from mgsr.evaluation.protocol import get_protocol
from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler
from mgsr.inference.adaptive import AdaptiveRule, adaptive_map
from mgsr.io.files import image_files

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIT = ROOT / "mgsr" / "samples" / "train"
DEFAULT_TEST = ROOT.parent / "shared" / "reference" / "images"
#: global W whose fitting-set RMSE are the default budgets: pirm-r3's cliff
BUDGET_W = (0.0075, 0.01, 0.0125)
#: the grid of --smoke: three passes
SMOKE_GRID = (0.0, 0.0075, 0.015)


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
    """A tiny fitting crop and a tiny held-out crop from shipped images (104x104 HR: one 96x96 NIQE block after
    the 4-pixel shave)."""
    fit, test = tmp / "fit", tmp / "test"
    fit.mkdir(), test.mkdir()
    samples = ROOT / "mgsr" / "samples"
    for folder, names in ((fit, ("train/retina.png",)), (test, ("val/grace_hopper_face.png",))):
        for name in names:
            Image.open(samples / name).convert("RGB").crop((0, 0, 104, 104)).save(folder / Path(name).name)
    return fit, test


def cropped(folder: Path, side: int, into: Path) -> Path:
    """Centre crops of ``side`` x ``side`` of every image of ``folder`` (smaller ones kept whole) in ``into``."""
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


#: side, in output pixels, of the crop each row of the figure zooms into, and the zoom: at full size the two
#: results look alike (the budgets lie at the start of R3's cliff), at 3-4x the grain and the clean edges show
FIGURE_CROP = 64
FIGURE_ZOOM = 4


def busiest_difference(a: np.ndarray, b: np.ndarray, side: int) -> tuple[int, int]:
    """(top, left) of the ``side`` x ``side`` window where ``a`` and ``b`` differ most (mean absolute
    difference, on a grid of side/4 steps): where the two maps' results can be told apart at all."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for top in range(0, max(1, diff.shape[0] - side + 1), step):
        for left in range(0, max(1, diff.shape[1] - side + 1), step):
            score = float(diff[top : top + side, left : left + side].mean())
            if score > best:
                best, where = score, (top, left)
    return where


def _zoomed(image: np.ndarray, top: int, left: int, side: int, zoom: int) -> np.ndarray:
    """The crop enlarged by pixel repetition (no resampling: the grain is shown as it is)."""
    crop = image[top : top + side, left : left + side]
    return np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)


def _context(image: np.ndarray, top: int, left: int, side: int, height: int) -> np.ndarray:
    """The whole result reduced to ``height`` rows, with a red box where the crop is."""
    from PIL import ImageDraw

    small = Image.fromarray(image)
    ratio = height / image.shape[0]
    small = small.resize((max(1, round(image.shape[1] * ratio)), height), Image.BICUBIC)
    box = [round(left * ratio), round(top * ratio), round((left + side) * ratio), round((top + side) * ratio)]
    ImageDraw.Draw(small).rectangle(box, outline=(255, 0, 0), width=2)
    return np.asarray(small)


def _figure_row(hr: np.ndarray, a: np.ndarray, b: np.ndarray, w_map: np.ndarray) -> np.ndarray:
    """Context | HR | global W | adaptive | map, the last four the same crop zoomed ``FIGURE_ZOOM`` times."""
    side, zoom = min(FIGURE_CROP, *a.shape[:2]), FIGURE_ZOOM
    top, left = busiest_difference(a, b, side)
    grey = np.repeat((w_map * 255).round().astype(np.uint8)[..., None], 3, 2)
    panels = [_context(a, top, left, side, side * zoom)]
    panels += [_zoomed(x, top, left, side, zoom) for x in (hr, a, b, grey)]
    gap = np.full((side * zoom, 8, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], 1)


def figure(
    path: Path, model: str, scale: int, images: list[Path], rule: AdaptiveRule, global_w: float, name: str = "adaptive"
) -> None:
    """Per held-out image a row: where the crop is | HR | global W | adaptive map | the map (white = the
    levels' W, black = 0), the four zoomed at the window where the two results differ most."""
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
        rows.append(_figure_row(hr, a, b, m.astype(np.float32) / 255))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (width - r.shape[1], 0), (0, 0)), constant_values=255) for r in rows]
    picture = Image.fromarray(np.concatenate([np.full((16, width, 3), 255, np.uint8), *rows], 0))
    draw = ImageDraw.Draw(picture)
    panel = FIGURE_CROP * FIGURE_ZOOM + 8
    labels = ("HR", f"global W = {global_w:.3g}", f"{name}, same set RMSE", "its map: white = W, black = 0")
    draw.text((4, 2), f"where ({FIGURE_ZOOM}x zoom on the right)", fill=(0, 0, 0))
    for k, label in enumerate(labels):
        draw.text((width - (4 - k) * panel + 12, 2), label, fill=(0, 0, 0))
    picture.save(path)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", default=None, help="HR images to fit on (default: scikit-image's photos, see above)")
    parser.add_argument("--test", default=str(DEFAULT_TEST), help="held-out HR images (default: %(default)s)")
    parser.add_argument("--model", default="pirm-r3")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--budgets", default=None, help="RMSE budgets A,B,C (default: from the fitting set)")
    parser.add_argument("--figure", default=None, help="write the before/after figure of the middle budget here")
    parser.add_argument(
        "--checked", type=int, default=2, help="best-estimated maps checked by real passes (default: %(default)s)"
    )
    parser.add_argument("--rules", type=int, default=RANDOM_RULES, help="random rules searched (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=0, help="use centre crops of this side (0: whole images)")
    parser.add_argument("--smoke", action="store_true", help="tiny images, six shapes, two budgets: seconds")
    args = parser.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") is None:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    tmp = Path(tempfile.mkdtemp(prefix="adaptive-bench-"))
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def skimage_photos(into: Path) -> Path | None:
    """Ten of scikit-image's bundled photos (CC0 / public domain; grey ones as RGB), centre crops of at most
    392x392 (548 for the motorcycle), in ``into``; ``None`` without scikit-image."""
    try:
        import skimage.data as data
    except ImportError:
        return None
    into.mkdir()
    photos = {
        "motorcycle": (data.stereo_motorcycle()[0], 548),
        "rocket": (data.rocket(), 392),
        "hubble": (data.hubble_deep_field(), 392),
        "ihc": (data.immunohistochemistry(), 392),
        "camera": (data.camera(), 392),
        "coins": (data.coins(), 392),
        "moon": (data.moon(), 392),
        "page": (data.page(), 392),
        "text": (data.text(), 392),
        "retina": (data.retina(), 392),
    }
    for name, (pixels, side) in photos.items():
        im = Image.fromarray(np.asarray(pixels)).convert("RGB")
        left, top = max(0, (im.width - side) // 2), max(0, (im.height - side) // 2)
        im.crop((left, top, min(im.width, left + side), min(im.height, top + side))).save(into / f"{name}.png")
    return into


def _folders(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    if args.smoke:
        fit_dir, test_dir = smoke_folders(tmp)
    else:
        fit_dir = Path(args.fit) if args.fit else skimage_photos(tmp / "skimage") or DEFAULT_FIT
        test_dir = Path(args.test)
    for folder, flag in ((fit_dir, "--fit"), (test_dir, "--test")):
        if not folder.is_dir():
            raise SystemExit(f"adaptive_w_bench: {folder}: no such folder; give HR images with {flag} DIR")
    if args.crop:
        fit_dir, test_dir = (
            cropped(fit_dir, args.crop, tmp / "fit_crops"),
            cropped(test_dir, args.crop, tmp / "test_crops"),
        )
    return fit_dir, test_dir


def _fit(args: argparse.Namespace, fit: SetEvaluator, say) -> tuple[list, float]:
    """The fitted rule per budget (checked on the fitting set only by the estimate) and the fit's seconds."""
    levels = args.scale.bit_length() - 1
    start = time.perf_counter()
    grid = measure_grid(fit, args.scale, SMOKE_GRID if args.smoke else DEFAULT_GRID, progress=say)
    grid_seconds = time.perf_counter() - start
    shapes = candidate_shapes(levels, [im.lr for im in grid], random_rules=2 if args.smoke else args.rules)
    curves = measure_curves(grid, shapes)
    seconds = time.perf_counter() - start
    points = global_points(grid)
    budgets = (
        [float(b) for b in args.budgets.split(",")]
        if args.budgets
        else [r for w, r, _ in points if w in BUDGET_W][: 2 if args.smoke else None]
    )
    print(
        f"fitting: {seconds:.0f} s = grid {grid_seconds:.0f} s ({len(points)} global W on "
        f"{sum(im.hr.shape[0] * im.hr.shape[1] for im in fit.images) / 1e6:.2f} Mpx of HR) + search "
        f"{seconds - grid_seconds:.0f} s ({len(shapes)} shapes x {len(curves[0].factors) - 1} amplitudes)",
        flush=True,
    )
    checked = 1 if args.smoke else args.checked
    start = time.perf_counter()
    fits = [fit_for_budget(fit.evaluate, curves, b, seconds, checked=checked) for b in budgets]
    print(
        f"checking: {time.perf_counter() - start:.0f} s of real passes on the fitting set (the global map and "
        f"the {checked} best-estimated maps per budget)",
        flush=True,
    )
    return fits, seconds


def _held_out_frontier(test: SetEvaluator, grid: list, targets: list[float], say) -> list[tuple[float, float, float]]:
    """The held-out global points: the grid's, plus a real pass at the W that the grid puts at each target RMSE."""
    points = global_points(grid)
    extra = []
    for target in targets:
        w = float(np.interp(target, [p[1] for p in points], [p[0] for p in points]))
        agg = test.evaluate(w).aggregate
        extra.append((w, agg["rmse"], agg["niqe"]))
        say(f"held-out global W={w:.5g}: RMSE {agg['rmse']:.4f}, NIQE {agg['niqe']:.4f}")
    return points + extra


def _run(args: argparse.Namespace, tmp: Path) -> float:
    fit_dir, test_dir = _folders(args, tmp)
    protocol = get_protocol("pirm2018")
    upscale, _ = make_upscaler(args.model, args.scale, protocol.seed)
    registry = mgsr.default_registry()
    fit = SetEvaluator.create(upscale, fit_dir, args.scale, protocol, registry)
    test = SetEvaluator.create(upscale, test_dir, args.scale, protocol, registry)
    say = lambda m: print(f"  {m}", flush=True)  # noqa: E731
    print(
        f"fit: {fit_dir} ({len(fit.images)} images), held out: {test_dir} ({len(test.images)} images), "
        f"{args.model} x{args.scale}",
        flush=True,
    )
    fits, _ = _fit(args, fit, say)
    test_grid = measure_grid(test, args.scale, SMOKE_GRID if args.smoke else DEFAULT_GRID)
    held = []
    for f in fits:
        agg = test.evaluate(f.rule).aggregate
        maps = [f.rule.levels[-1] * adaptive_map(f.rule, im.lr.astype(np.float32) / 255) for im in test_grid]
        held.append((f, agg["rmse"], agg["niqe"], set_scores(test_grid, maps)))
    sweep = _held_out_frontier(test, test_grid, [h[1] for h in held], say)
    print(
        f"{'budget':>7} {'shape':>14} {'fit RMSE':>8} {'fit NIQE':>8} | {'test RMSE':>9} {'NIQE':>6} "
        f"{'(estimate)':>10} {'global NIQE':>11} {'gain':>6}"
    )
    gains = []
    for f, rmse, niqe, estimate in held:
        gains.append(frontier_niqe(sweep, rmse) - niqe)
        fitted = f.measured or f.predicted
        print(
            f"{f.max_rmse:7.3f} {f.name:>14} {fitted[0]:8.3f} {fitted[1]:8.3f}"
            f" | {rmse:9.3f} {niqe:6.3f} "
            f"{estimate[1]:10.3f} {frontier_niqe(sweep, rmse):11.3f} {gains[-1]:6.3f}   rule {f.rule.to_dict()}",
            flush=True,
        )
    smallest = min(image_files(test_dir), key=lambda p: p.stat().st_size)
    plain, adaptive = cost(args.model, fits[-1].rule, smallest, 1 if args.smoke else 3)
    print(f"cost on {smallest.name}: plain {plain:.2f} s, adaptive {adaptive:.2f} s ({adaptive / plain:.3f}x)")
    if args.figure:
        f, rmse = held[len(held) // 2][:2]
        w = float(np.interp(rmse, [p[1] for p in global_points(test_grid)], [p[0] for p in global_points(test_grid)]))
        figure(Path(args.figure), args.model, args.scale, sorted(image_files(test_dir)), f.rule, w, f.name)
        print(f"wrote {args.figure}: global W={w:.4g} | adaptive ({f.name}) | map, at held-out RMSE {rmse:.3f}")
    valid = [g for g in gains if np.isfinite(g)]
    mean = float(np.mean(valid)) if valid else float("nan")
    print(f"adaptive vs global at equal RMSE: mean NIQE gain {mean:.3f} over {len(valid)} budgets")
    return mean


if __name__ == "__main__":
    main()
