"""``mgsr data prepare``: decode and resize a training set once, into a store the patch stream memory-maps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``mgsr data`` and its sub-commands to the parser."""
    p = sub.add_parser("data", help="prepare training data")
    dsub = p.add_subparsers(dest="data_command", required=True)
    prep = dsub.add_parser(
        "prepare",
        help="decode and resize training images once into a store (for --data / data.train)",
        description="Decode every image of the SRC folders once (in parallel), resize it as a recipe's "
        "data.target_megapixels asks (MATLAB bicubic, as training does), and write a store folder "
        "the training stream reads without decoding. Re-running updates only new or changed files; two "
        "commands into one store take turns on DIR.lock beside it.",
    )
    prep.add_argument("sources", nargs="+", metavar="SRC", help="image folders (searched recursively)")
    prep.add_argument("-o", "--output", required=True, metavar="DIR", help="the store folder (new, empty or a store)")
    prep.add_argument(
        "--target-megapixels",
        type=float,
        default=None,
        metavar="MP",
        help="resize each image to this many megapixels (the paper's recipes: 0.29); default: keep "
        "sizes. Must equal the recipe's data.target_megapixels",
    )
    prep.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="decoding processes (default: all cores; 0: in this process)",
    )
    prep.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    prep.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from mgsr.errors import MgsrError
    from mgsr.training.prepared import store_lock
    from mgsr.training.store import check_preparation, prepare

    if args.target_megapixels is not None and args.target_megapixels <= 0:
        raise MgsrError(f"--target-megapixels must be positive, got {args.target_megapixels}")
    if args.workers is not None and args.workers < 0:
        raise MgsrError(f"--workers must be 0 or more, got {args.workers}")
    check_preparation(args.sources, Path(args.output), args.target_megapixels)  # refused: no lock file left
    with store_lock(Path(args.output)):  # two commands into one store take turns
        report = prepare(
            args.sources,
            args.output,
            target_megapixels=args.target_megapixels,
            workers=args.workers,
            progress=not args.quiet,
        )
    for source, reason in report.skipped:
        print(f"mgsr: skipped {source}: {reason}", file=sys.stderr)
    print(
        f"{args.output}: {len(report.store.images)} images ({report.decoded} decoded now, {report.reused} kept), "
        f"{len(report.skipped)} skipped; train with --data {args.output}"
    )
    return 0
