"""``mgsr eval``, ``mgsr sweep`` and ``mgsr calibrate``: the evaluation sub-commands.

Each prints a table and writes results that carry the protocol's name and
parameters; problems with inputs are one-line errors naming the file.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgsr.cli.curve import DEFAULT_OUTPUT as CURVE_OUTPUT
from mgsr.cli.curve import add_arguments as add_curve_arguments
from mgsr.cli.options import (
    add_device,
    check_calibration_model,
    names_a_folder,
    refuse_folder_output,
    refuse_writing_over_inputs,
)
from mgsr.errors import EvaluationError
from mgsr.evaluation.protocol import PROTOCOLS, get_protocol
from mgsr.inference.outsize import LEVEL_SCALES
from mgsr.version import __version__

if TYPE_CHECKING:
    from mgsr.evaluation.tradeoff import SweepPoint
    from mgsr.evaluation.upscalers import SetEvaluator

DEFAULT_PROTOCOL = "pirm2018"
DEFAULT_SWEEP = "0:1:21"
CALIBRATION_OUTPUT = "calib.json"
#: the metrics mgsr ships beyond the protocol's (rmse, psnr, ssim, niqe), named in ``--metric``'s help; a
#: constant because the help must not load every plugin (seconds) to print itself; a test keeps it in step
BUILTIN_EXTRA_METRICS = ("cx", "l1", "lpips", "period2")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _version() -> str:
    return __version__


def _registry():
    from mgsr.registry import default_registry

    return default_registry()


def _model_evaluator(args: argparse.Namespace) -> tuple[SetEvaluator, float | None]:
    """The set evaluator for ``--model`` and ``--hr``, and the W to use when ``--noise`` is not given."""
    from mgsr.evaluation.upscalers import BICUBIC, SetEvaluator, make_upscaler
    from mgsr.runtime.devices import announce_device, resolve_device

    protocol = get_protocol(args.protocol)
    device = resolve_device(args.device)
    if args.model != BICUBIC and not args.quiet:  # bicubic runs no network: no device to report
        announce_device(args.device, device)
    upscale, default_noise = make_upscaler(args.model, args.scale, protocol.seed, device)
    return SetEvaluator.create(upscale, args.hr, args.scale, protocol, _registry(), args.metric), default_noise


def _score_outputs(args: argparse.Namespace):
    """Score the images of ``--sr``, against ``--hr`` when given."""
    from mgsr.evaluation.scoring import paired_images, score_set, unpaired_images

    protocol = get_protocol(args.protocol)
    metrics = protocol.metric_instances(_registry(), with_reference=args.hr is not None, extra=args.metric)
    items = unpaired_images(args.sr) if args.hr is None else paired_images(args.sr, args.hr, args.scale)
    return score_set(items, metrics, protocol.describe(metrics))


def _cmd_eval(args: argparse.Namespace) -> int:
    from mgsr.evaluation.scoring import write_json

    if (args.sr is None) == (args.model is None):
        raise EvaluationError("give either --sr DIR (score existing outputs) or --model M --hr DIR (upscale, score)")
    refuse_writing_over_inputs(
        [args.json], EvaluationError, model=args.model, noise=args.noise, folders=[args.hr, args.sr]
    )
    context: dict[str, Any] = {"mgsr_version": _version(), "scale": args.scale}
    if args.sr is not None:
        if args.noise is not None:
            raise EvaluationError("--noise applies to --model only")
        evaluation = _score_outputs(args)
        context.update(sr=str(args.sr), hr=None if args.hr is None else str(args.hr))
    else:
        if args.hr is None:
            raise EvaluationError("--model needs --hr DIR: the high-resolution images to downscale and compare with")
        noise = _eval_noise(args.noise) if args.noise is not None else None  # checked before any work
        check_calibration_model(args.noise, args.model)
        evaluator, default_noise = _model_evaluator(args)
        noise = default_noise if noise is None else noise
        evaluation = evaluator.evaluate(noise)
        context.update(model=args.model, noise=getattr(noise, "to_dict", lambda: noise)(), hr=str(args.hr))
    print(evaluation.table())
    if args.json:
        write_json(args.json, evaluation.to_dict(**context))
        print(f"wrote {args.json}")
    return 0


def _eval_noise(value: str) -> Any:
    """``mgsr eval --noise``: a W, or a calibration file (a global W or an adaptive rule)."""
    if value.lower().endswith(".json"):
        from mgsr.evaluation.adaptive_fit import load_calibration

        return load_calibration(value)
    from mgsr.model.amplitude import check_amplitude

    try:
        w = float(value)
    except ValueError:
        raise EvaluationError(f"--noise {value!r}: give a number or a calibration .json file") from None
    return check_amplitude(w, f"--noise {value!r}", EvaluationError)


def _cmd_calibrate_adaptive(args: argparse.Namespace) -> int:
    """``mgsr calibrate --adaptive``: fit an adaptive W map's rule to ``--max-rmse`` and save it."""
    import time

    import attrs

    from mgsr.evaluation.adaptive_fit import candidate_shapes, check_budget_at_w0, fit_for_budget, measure_curves
    from mgsr.evaluation.adaptive_grid import measure_grid
    from mgsr.evaluation.calibration_model import fitted_model
    from mgsr.inference.core import levels_for

    evaluator, _ = _model_evaluator(args)
    start = time.perf_counter()
    evaluator = check_budget_at_w0(evaluator, args.max_rmse)  # one pass, reused by the grid: fail before it
    grid = measure_grid(evaluator, args.scale, progress=None if args.quiet else _progress)
    curves = measure_curves(grid, candidate_shapes(levels_for(args.scale), [im.lr for im in grid]))
    result = fit_for_budget(evaluator.evaluate, curves, args.max_rmse, 0.0)
    result = attrs.evolve(result, seconds=time.perf_counter() - start)  # the grid, the search and the checks
    result.save(
        args.output,
        **fitted_model(args.model),
        protocol=evaluator.protocol,
        hr=str(args.hr),
        scale=args.scale,
        mgsr_version=_version(),
    )
    rmse, niqe = result.measured or result.predicted
    print(
        f"{args.model}: adaptive map '{result.name}' (W per level {', '.join(f'{w:.4g}' for w in result.rule.levels)}"
        f" at map value 1) gives RMSE {rmse:.4f} <= {args.max_rmse:g}, NIQE {niqe:.4f} on "
        f"{len(evaluator.images)} images ({args.protocol}), fitted in {result.seconds:.0f} s; wrote {args.output}"
    )
    return 0


#: ``mgsr sweep --noise calib.json``: multiples of the calibrated amplitude swept along the map's path
ADAPTIVE_SWEEP_FACTORS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)


def _adaptive_sweep(path: str, evaluator: Any, context: dict[str, Any]) -> tuple[Any, list[float]]:
    """(evaluate, W values) sweeping a calibration file: an adaptive map at multiples of its fitted W (the
    W column is then the last level's W at map value 1, the rule recorded in the CSV), a global W alone."""
    from mgsr.evaluation.adaptive_fit import load_calibration
    from mgsr.inference.adaptive import AdaptiveRule

    setting = load_calibration(path)
    if not isinstance(setting, AdaptiveRule):
        return evaluator.evaluate, [setting]
    top = setting.levels[-1] or 1.0
    context["adaptive"] = {"calibration": path, "rule": setting.to_dict(), "noise_column": "last level's W at map 1"}
    return (lambda w: evaluator.evaluate(setting.scaled(w / top))), [top * f for f in ADAPTIVE_SWEEP_FACTORS]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from mgsr.evaluation.tradeoff import parse_noise_values, plot_sweep, score_each_noise, write_sweep_csv

    prefix = Path(args.output)
    if names_a_folder(args.output):  # -o results/: inside it, not results.csv beside it
        prefix = prefix / "sweep"
    csv_path, png_path = prefix.with_name(prefix.name + ".csv"), prefix.with_name(prefix.name + ".png")
    refuse_writing_over_inputs(
        [csv_path, png_path], EvaluationError, model=args.model, noise=args.noise, folders=[args.hr]
    )
    if args.detail is not None and args.noise is not None:
        raise EvaluationError("give --noise or --detail, not both: --detail sweeps t, each t chooses its W")
    try:  # as mgsr upscale makes its output folder: before the work, so a bad place fails in seconds
        csv_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvaluationError(f"{csv_path.parent}: cannot create the output folder ({exc.strerror or exc})") from None
    noise = args.noise or DEFAULT_SWEEP
    calibration = args.detail is None and noise.lower().endswith(".json")
    noises = None if args.detail is not None or calibration else parse_noise_values(noise)  # before any work
    if calibration:
        check_calibration_model(noise, args.model)
    evaluator, _ = _model_evaluator(args)
    context = {"mgsr_version": _version(), "model": args.model, "hr": str(args.hr), "scale": args.scale}
    if args.detail is not None:
        points = _detail_points(args, evaluator)
    else:
        evaluate, noises = (
            _adaptive_sweep(noise, evaluator, context) if noises is None else (evaluator.evaluate, noises)
        )
        points = score_each_noise(evaluate, noises, progress=None if args.quiet else _progress)
    write_sweep_csv(csv_path, points, context)
    title = f"{args.model}: RMSE vs NIQE over W ({args.protocol}, {len(evaluator.images)} images, x{args.scale})"
    plot_sweep(png_path, points, title)
    metrics = points[0].evaluation.metrics
    print(("" if args.detail is None else f"{'detail':>8}") + f"{'W':>10}" + "".join(f"{m:>11}" for m in metrics))
    for p in points:
        print(
            ("" if p.detail is None else f"{p.detail:>8.4g}")
            + f"{p.noise:>10.4g}"
            + "".join(f"{p.evaluation.aggregate[m]:>11.4f}" for m in metrics)
        )
    for note in points[0].evaluation.notes:
        print(f"note: {note}")
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _detail_points(args: argparse.Namespace, evaluator: SetEvaluator) -> list[SweepPoint]:
    """``mgsr sweep --detail``: each t through the model's curve to its W, scored; the points carry both."""
    import attrs

    from mgsr.assembly.loading import MODELS
    from mgsr.evaluation.tradeoff import parse_noise_values, score_each_noise
    from mgsr.model.detail import noise_for_detail

    details = parse_noise_values(args.detail, "--detail")
    card = MODELS.get(args.model).card
    noises = [noise_for_detail(card, t) for t in details]  # monotone: the order of W is the order of t
    points = score_each_noise(evaluator.evaluate, sorted(set(noises)), progress=None if args.quiet else _progress)
    by_noise = {p.noise: p for p in points}
    return [attrs.evolve(by_noise[w], detail=t) for t, w in zip(details, noises, strict=True)]


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from mgsr.evaluation.calibration_model import fitted_model
    from mgsr.evaluation.tradeoff import calibrate
    from mgsr.model.amplitude import check_amplitude

    refuse_folder_output(args.output, Path(CURVE_OUTPUT if args.curve else CALIBRATION_OUTPUT).name)
    written = Path(args.output or (CURVE_OUTPUT if args.curve else CALIBRATION_OUTPUT))
    refuse_writing_over_inputs(
        [written, written.with_suffix(".png")] if args.curve else [written],
        EvaluationError,
        model=args.model,
        folders=[args.hr],
    )
    if args.curve:
        from mgsr.cli.curve import run_curve

        return run_curve(args, *_model_evaluator(args), _progress)
    if args.max_rmse is None:
        raise EvaluationError("give --max-rmse B (the RMSE budget), or --curve to measure the whole curve")
    args.output = args.output or CALIBRATION_OUTPUT
    if args.adaptive:
        return _cmd_calibrate_adaptive(args)

    try:
        low, high = (float(v) for v in args.range.split(":"))
    except ValueError:
        low = high = math.nan
    if not 0 <= low < high:
        raise EvaluationError(f"--range {args.range!r}: expected LOW:HIGH with 0 <= LOW < HIGH, e.g. 0:1")
    check_amplitude(high, f"--range {args.range!r}", EvaluationError)
    evaluator, _ = _model_evaluator(args)
    protocol: dict[str, Any] = {}

    def rmse_at(w: float) -> float:
        evaluation = evaluator.evaluate(w)
        protocol.update(evaluation.protocol)
        if not args.quiet:
            _progress(f"W={w:.6g}: RMSE {evaluation.aggregate['rmse']:.4f}")
        return evaluation.aggregate["rmse"]

    result = calibrate(rmse_at, args.max_rmse, low, high, args.tolerance)
    result.save(
        args.output,
        **fitted_model(args.model),
        protocol=protocol,
        hr=str(args.hr),
        scale=args.scale,
        tolerance=args.tolerance,
        mgsr_version=_version(),
    )
    for warning in result.warnings:
        print(f"mgsr: warning: {warning}", file=sys.stderr)
    print(
        f"{args.model}: W = {result.noise:.6g} gives RMSE {result.rmse:.4f} <= {args.max_rmse:g} "
        f"on {len(evaluator.images)} images ({args.protocol}); wrote {args.output}"
    )
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        choices=sorted(PROTOCOLS),
        help="evaluation conventions, recorded in the results (default: %(default)s)",
    )
    p.add_argument(
        "--scale",
        type=int,
        default=4,
        choices=LEVEL_SCALES,
        help="upscaling factor; HR images are cropped to a multiple of it (default: %(default)s)",
    )
    add_device(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no device line and no progress lines on stderr")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help=f"also report this metric beyond the protocol's: {', '.join(BUILTIN_EXTRA_METRICS)} or a "
        "plugin's (`mgsr plugins` lists them) (repeatable; recorded in results)",
    )


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="pirm-r1, pirm-r2, pirm-r3 or a .safetensors file / run folder")
    p.add_argument("--hr", required=True, help="folder of high-resolution images; LR inputs are made from them")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval``, ``sweep`` and ``calibrate`` to the ``mgsr`` command line."""
    p = subparsers.add_parser(
        "eval",
        help="score outputs (--sr) or a model (--model) under an evaluation protocol",
        description="Score existing outputs (--sr DIR [--hr DIR]; no-reference metrics only without --hr) or "
        "a model (--model M --hr DIR): LR inputs made by MATLAB bicubic downscaling, upscaled, quantised, scored.",
    )
    p.add_argument("--sr", default=None, help="folder of outputs to score (names match --hr, _x4 suffix allowed)")
    p.add_argument("--hr", default=None, help="folder of high-resolution reference images")
    p.add_argument("--model", default=None, help="upscale with this model (or 'bicubic' for the baseline)")
    p.add_argument(
        "--noise",
        default=None,
        help="noise amplitude W for --model, or a calibration .json (global or --adaptive) (default: the model's W)",
    )
    p.add_argument("--json", default=None, help="also write per-image and set scores to this JSON file")
    _add_common(p)
    p.set_defaults(func=_cmd_eval)

    p = subparsers.add_parser("sweep", help="the perception-distortion path of W: CSV and PNG of RMSE vs NIQE")
    _add_model(p)
    p.add_argument(
        "--noise",
        default=None,
        help=f"START:STOP:COUNT, a list A,B,C, or a calibration .json (an adaptive map swept at 0-4x "
        f"its fitted W) (default: {DEFAULT_SWEEP})",
    )
    p.add_argument(
        "--detail",
        default=None,
        help="instead of --noise, sweep the detail t in [0, 1] (e.g. 0:1:11): each t is mapped "
        "to its W through the model's curve; the CSV has both",
    )
    p.add_argument(
        "-o",
        "--output",
        default="sweep",
        help="writes OUTPUT.csv and OUTPUT.png; a folder (or a name ending in /): sweep.csv and sweep.png in it "
        "(default: %(default)s)",
    )
    _add_common(p)
    p.set_defaults(func=_cmd_sweep)

    p = subparsers.add_parser("calibrate", help="the largest W whose RMSE on a set stays within a budget")
    _add_model(p)
    p.add_argument("--max-rmse", type=float, default=None, help="RMSE budget, e.g. 11.5 (PIRM-SR region 1)")
    p.add_argument("--range", default="0:1", help="bracket LOW:HIGH of W to search (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="width of the final bracket (default: %(default)s)")
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="fit an adaptive W map (W per pixel from the input's local statistics) instead of one W: "
        "the map shape and amplitude with the lowest set NIQE within --max-rmse",
    )
    p.add_argument(
        "-o", "--output", default=None, help="calibration record (default: calib.json; curve.json with --curve)"
    )
    add_curve_arguments(p)
    _add_common(p)
    p.set_defaults(func=_cmd_calibrate)
