"""``mgsr recipe show``: a recipe fully resolved, every default filled in."""

from __future__ import annotations

import argparse
import sys

import tomli_w

from mgsr.recipe import load_recipe


def show(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.file)
    print(f"# resolved recipe {args.file} (sha256 {recipe.digest()[:16]})")
    sys.stdout.write(tomli_w.dumps(recipe.to_dict()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="inspect recipes")
    rsub = p.add_subparsers(dest="recipe_command", required=True)
    show_parser = rsub.add_parser("show", help="print the fully resolved recipe (defaults filled in)")
    show_parser.add_argument("file")
    show_parser.set_defaults(func=show)
