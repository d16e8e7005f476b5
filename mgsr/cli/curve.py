"""``mgsr calibrate --curve``: measure a model's perception-distortion curve, record it, put it in the card.

The curve is what ``--detail`` maps through (:mod:`mgsr.model.detail`).  Measuring costs ~20 passes over the
set, minutes on a CPU, so a training run does not do it at its end; after training, run this on the run
folder with ``--write-card`` and the run's ``generator.safetensors`` carries its curve from then on.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mgsr.errors import EvaluationError

if TYPE_CHECKING:
    from mgsr.evaluation.upscalers import SetEvaluator
    from mgsr.model.card import ModelCard, PDCurve

DEFAULT_OUTPUT = "curve.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--curve`` options of ``mgsr calibrate``."""
    p.add_argument(
        "--curve",
        action="store_true",
        help="measure the model's RMSE and NIQE against W (a grid refined where the curve moves) "
        f"and write it to OUTPUT (default {DEFAULT_OUTPUT}) and OUTPUT's .png; no --max-rmse",
    )
    p.add_argument(
        "--top",
        type=float,
        default=None,
        help="with --curve: the curve's last W, detail t = 1 (default: the model's recorded W)",
    )
    p.add_argument(
        "--points",
        type=int,
        default=10,
        help="with --curve: W values of the first, geometric grid (default: %(default)s)",
    )
    p.add_argument(
        "--max-points",
        type=int,
        default=24,
        help="with --curve: most W values evaluated, refinement included (default: %(default)s)",
    )
    p.add_argument(
        "--image-set",
        default=None,
        help="with --curve: what the --hr images are and where to get them (recorded in the card)",
    )
    p.add_argument(
        "--write-card",
        action="store_true",
        help="with --curve: also store the curve in the model's weights file (its card), e.g. a "
        "training run's generator.safetensors, so --detail works with it",
    )


def _command(args: argparse.Namespace, top: float) -> str:
    words = [
        "mgsr",
        "calibrate",
        "--curve",
        "--model",
        args.model,
        "--hr",
        str(args.hr),
        "--scale",
        str(args.scale),
        "--protocol",
        args.protocol,
        "--top",
        f"{top:g}",
        "--points",
        str(args.points),
        "--max-points",
        str(args.max_points),
    ]
    return shlex.join(words)


def run_curve(
    args: argparse.Namespace, evaluator: SetEvaluator, default_noise: float | None, progress: Callable[[str], None]
) -> int:
    """Measure, save ``OUTPUT`` (JSON) and its plot, and with ``--write-card`` update the weights file."""
    import attrs  # here, not at the top: ``mgsr --help`` should not load the evaluation stack

    from mgsr.assembly.loading import load_generator
    from mgsr.evaluation.curve import curve_of, measure_curve, plot_curves
    from mgsr.evaluation.scoring import write_json

    top = _top_of_curve(args, default_noise)
    points = measure_curve(
        evaluator.evaluate,
        top,
        count=args.points,
        max_points=args.max_points,
        progress=None if args.quiet else progress,
    )
    image_set = args.image_set or f"the {len(evaluator.images)} images of {args.hr}"
    curve = curve_of(
        points,
        image_set=image_set,
        images=[im.name for im in evaluator.images],
        scale=args.scale,
        command=_command(args, top),
    )
    output = Path(args.output or DEFAULT_OUTPUT)
    write_json(output, {"model": args.model, "curve": curve.to_dict()})
    card = load_generator(args.model).card
    if card is None:
        raise EvaluationError(f"--model {args.model}: its weights carry no card to attach the curve to")
    card = attrs.evolve(card, curve=curve)
    plot_curves(
        output.with_suffix(".png"),
        {card.name: card},
        f"{card.name}: perception-distortion curve ({len(curve.images)} images, x{args.scale})",
    )
    _print_table(curve)
    print(f"wrote {output} and {output.with_suffix('.png')}")
    if args.write_card:
        _write_into_card(args.model, card, output)
    return 0


def _top_of_curve(args: argparse.Namespace, default_noise: float | None) -> float:
    """The curve's last W (``--top``, else the model's recorded W), once the options are known to fit together."""
    if args.max_rmse is not None:
        raise EvaluationError("--curve measures the whole curve; drop --max-rmse (or drop --curve to calibrate)")
    if default_noise is None:
        raise EvaluationError(f"--model {args.model} has no noise amplitude, so no curve; give a G-MGBP model")
    if args.points < 2 or args.max_points < args.points + 1:
        raise EvaluationError(
            f"--points must be >= 2 and --max-points > --points, got {args.points}, {args.max_points}"
        )
    from mgsr.model.amplitude import check_amplitude

    return default_noise if args.top is None else check_amplitude(args.top, f"--top {args.top:g}", EvaluationError)


def _print_table(curve: PDCurve) -> None:
    """The measured points with the detail t each one is at, one row per W."""
    from mgsr.model.detail import arc_progress

    share = arc_progress(curve.rmse, curve.niqe)
    print(f"{'W':>10}{'RMSE':>9}{'NIQE':>9}{'detail':>8}")
    for w, r, n, t in zip(curve.noise, curve.rmse, curve.niqe, share, strict=True):
        print(f"{w:>10.5g}{r:>9.4f}{n:>9.4f}{t:>8.3f}")


def _write_into_card(model: str, card: ModelCard, output: Path) -> None:
    """Store ``card`` (now with its curve) in ``model``'s .safetensors file, so ``--detail`` works with it."""
    from mgsr.assembly.loading import MODELS
    from mgsr.model.weights import resolve_weights_path, write_card

    weights = resolve_weights_path(model)
    if weights.suffix != ".safetensors":
        raise EvaluationError(
            f"--write-card: {weights} is not a .safetensors weights file; give the run "
            "folder or its generator.safetensors "
            f"(the curve is saved in {output} all the same)"
        )
    path = write_card(weights, card)
    MODELS.clear()  # a cached copy would still have the old card
    print(f"wrote the curve into the card of {path}", file=sys.stderr)
