"""``mgsr recipe show``: a recipe fully resolved, every default filled in; ``mgsr recipe list``: the bundled ones."""

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


def list_bundled(args: argparse.Namespace) -> int:
    from mgsr.recipe.names import bundled_folder, bundled_recipes, summary

    recipes = bundled_recipes()
    width = max((len(name) for name in recipes), default=0)
    for name, path in recipes.items():
        print(f"{name:<{width}}  {summary(path)}")
    print(
        f"# {len(recipes)} bundled recipes in {bundled_folder()}: use a name with mgsr train / mgsr recipe show, "
        f'or base = "NAME" in your own recipe',
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="inspect recipes")
    rsub = p.add_subparsers(dest="recipe_command", required=True)
    show_parser = rsub.add_parser("show", help="print the fully resolved recipe (defaults filled in)")
    show_parser.add_argument("file", help="a recipe file or a bundled recipe name (mgsr recipe list)")
    show_parser.set_defaults(func=show)
    list_parser = rsub.add_parser("list", help="the bundled recipes, each with its first comment line")
    list_parser.set_defaults(func=list_bundled)
