"""``mgsr train``: a recipe, data and a run folder in; a trained generator out (resumable)."""

from __future__ import annotations

import argparse

from mgsr.cli.options import add_device


def run(args: argparse.Namespace) -> int:
    from mgsr.training.run import train

    if args.dry_run:
        return _plan(args)
    path = train(
        args.recipe,
        data=args.data,
        out=args.out,
        resume=args.resume,
        overrides=args.set,
        device=args.device,
        progress=not args.quiet,
    )
    print(f"trained generator: {path}  (use it with: mgsr upscale IMAGE -o OUT --model {path.parent})")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from mgsr.registry import default_registry
    from mgsr.training.plan import dry_run
    from mgsr.training.run import run_folder, training_recipe

    registry = default_registry()
    recipe = training_recipe(args.recipe, args.data, args.set, registry)
    lines = dry_run(
        recipe,
        run_folder(args.recipe, args.out),
        resume=args.resume,
        device=args.device,
        where=f"recipe {args.recipe}",
        registry=registry,
    )
    print("\n".join(lines))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train G-MGBP from a TOML recipe (resumable)")
    p.add_argument(
        "recipe", help="a recipe file, or a bundled recipe's name, e.g. quickstart or pirm_r3 (mgsr recipe list)"
    )
    p.add_argument(
        "--data",
        action="append",
        default=None,
        metavar="DIR",
        help="training image folder or store from `mgsr data prepare` (repeatable); replaces data.train of the recipe",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="RUN_DIR",
        help="run folder (default runs/<recipe name>: runs/no_gan for ablations/no_gan)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue from the newest complete checkpoint of the run folder (auto) or from PATH",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set training.steps=100; KEY=none restores the default (repeatable)",
    )
    add_device(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (device, stages, data and its stores, validation, files to download, where "
        "--resume continues, seconds per step measured on 3 steps per stage) without training",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no device line")
    p.set_defaults(func=run)
