"""Recipes by name: the ones bundled with mgsr (``quickstart``, ``pirm_r3``, ``ablations/no_gan``, ...).

Why: a wheel-installed mgsr has no ``recipes/`` folder beside the user, so ``mgsr train pirm_r3``,
``mgsr recipe show pirm_r3`` and ``base = "pirm_r3"`` find the recipe through the installed package
``mgsr_recipes`` (the repository's ``recipes/``, mapped in pyproject; an editable install reads the folder
itself).  A file that exists always wins over a bundled name, so a user's own ``pirm_r3.toml`` is never
shadowed.
"""

from __future__ import annotations

import difflib
from importlib.resources import files
from pathlib import Path

from mgsr.errors import RecipeError

#: the import package the repository's recipes/ folder is installed as (pyproject.toml maps it)
BUNDLED_PACKAGE = "mgsr_recipes"
SUFFIX = ".toml"


def bundled_folder() -> Path:
    """The folder holding the bundled recipes (in site-packages, or the checkout's recipes/ when editable)."""
    try:
        folder = Path(str(files(BUNDLED_PACKAGE)))
    except ModuleNotFoundError:
        raise RecipeError(
            f"the bundled recipes (package {BUNDLED_PACKAGE}) are not installed; reinstall mgsr "
            "(pip install mgsr, or pip install -e . in a checkout) or give a recipe file path"
        ) from None
    return folder


def bundled_recipes() -> dict[str, Path]:
    """Every bundled recipe, name -> file; names are paths below the folder without .toml, top level first."""
    folder = bundled_folder()
    found = {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.rglob(f"*{SUFFIX}")}
    return {name: found[name] for name in sorted(found, key=lambda n: (n.count("/"), n))}


def summary(path: Path) -> str:
    """A recipe's first comment line (its one-line description), or '' when it opens with no comment."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and stripped.lstrip("#").strip():
            return stripped.lstrip("#").strip()
        if stripped and not stripped.startswith("#"):
            break
    return ""


def bundled_recipe(name: str) -> Path | None:
    """The bundled recipe called ``name`` (``.toml`` optional), or None."""
    key = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    return bundled_recipes().get(key.replace("\\", "/"))


def find_recipe(source: str | Path) -> Path:
    """The file a recipe argument names: an existing file as given, else the bundled recipe of that name.

    An unknown name is a :class:`RecipeError` that lists the bundled names (closest first when one is near).
    """
    path = Path(source)
    if path.is_file():
        return path
    bundled = bundled_recipe(str(source))
    if bundled is not None:
        return bundled
    if path.is_dir():
        raise RecipeError(f"recipe path is a directory, expected a .toml file or a bundled recipe name: {path}")
    raise RecipeError(f"recipe file not found: {source}, and no bundled recipe has that name{_known(str(source))}")


def find_base(base: str, recipe: Path) -> Path:
    """The file of ``base = "..."`` in ``recipe``: a file relative to the recipe, else a bundled recipe."""
    beside = recipe.parent / base
    if beside.is_file():
        return beside
    bundled = bundled_recipe(base)
    if bundled is None:
        raise RecipeError(
            f"{recipe}: base = {base!r} is neither a file beside it ({beside}) nor a bundled recipe{_known(base)}"
        )
    return bundled


def _known(name: str) -> str:
    """The bundled names for an error message, the closest one first when one is near."""
    names = list(bundled_recipes())
    close = difflib.get_close_matches(name.removesuffix(SUFFIX), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; bundled: {', '.join(names)} (mgsr recipe list describes them)"
