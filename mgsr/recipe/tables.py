"""Recipe files as raw TOML tables, before structuring: ``base`` recipes merged in, ``--set`` overrides applied.

Why apart from :mod:`mgsr.recipe`: reading and editing the raw table knows nothing of components or the
schema; the schema module structures what these functions produce.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mgsr.errors import RecipeError
from mgsr.recipe.names import find_base, find_recipe


def apply_overrides(
    data: Mapping[str, Any], overrides: list[str] | tuple[str, ...], where: str = "recipe"
) -> dict[str, Any]:
    """``--set key.path=value`` on a parsed recipe: values are TOML (``3``, ``0.1``, ``true``, ``[1, 2]``),
    anything that does not parse as TOML is a string.  ``losses.2.weight`` indexes a list of tables.
    ``key=none`` removes the key, so its default applies (TOML has no null).
    """
    result: dict[str, Any] = json.loads(json.dumps(data))  # a deep, plain copy: the loaded table is never mutated
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {item!r}: expected key.path=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node: Any = result
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            path = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise RecipeError(
                        f"--set {key}: {path} is not an index of the {len(node)}-item list in the {where}"
                    )
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise RecipeError(f"--set {key}: {path} is a value, not a table, in the {where}")
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise RecipeError(f"--set {key}: {last} is not an index of the {len(node)}-item list")
            node[int(last)] = value
        elif raw.strip() == "none":
            node.pop(last, None)
        else:
            node[last] = value
    return result


def read_recipe_table(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw TOML table of a recipe file or bundled recipe name, with its ``base`` recipes merged in; file
    errors as RecipeError.

    ``base = "other.toml"`` (relative to this file, else a bundled name such as ``"pirm_r3"``) starts from
    that recipe: tables
    merge key by key, everything else (values, arrays such as ``[[losses]]``) is
    replaced, and a component table whose ``type`` changes is replaced whole.
    """
    path = find_recipe(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except IsADirectoryError:
        raise RecipeError(f"recipe path is a directory, expected a .toml file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise RecipeError(f"{path}: 'base' must be a file name string, got {base!r}")
    base_path = find_base(base, path).resolve()
    if base_path in _seen:
        raise RecipeError(f"{path}: 'base' chain loops back to {base_path}")
    return _merge(read_recipe_table(base_path, (*_seen, path.resolve())), data)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        same_component = not (
            isinstance(value, dict) and "type" in value and isinstance(old, dict) and old.get("type") != value["type"]
        )
        if isinstance(value, dict) and isinstance(old, dict) and same_component:
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two recipe tables differ (what a resumed run changed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            k
            for key in sorted(set(old) | set(new))
            for k in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]
