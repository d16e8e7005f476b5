"""README's plugin section against the code: the kinds and hooks it lists are the registry's, and each hook it
names is a documented hookspec, so the page a plugin author reads cannot drift from what pluggy calls."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from mgsr import hookspecs
from mgsr.kinds import KINDS
from mgsr.registry import default_registry

README = Path(__file__).resolve().parents[2] / "README.md"


def _listed_kinds() -> dict[str, str]:
    """``kind (hook)`` pairs of README's "Kinds and hooks:" paragraph."""
    text = README.read_text()
    start = text.index("Kinds and hooks:")
    paragraph = text[start : text.index("\n\n", start)]
    return dict(re.findall(r"`(\w+)` \(`(mgsr_\w+)`\)", paragraph))


def test_readme_lists_every_kind_with_its_hook():
    assert _listed_kinds() == {kind.name: kind.hook_name for kind in KINDS}


def test_every_listed_hook_is_a_documented_hookspec_the_registry_asks():
    specs = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("mgsr_")}
    listed = set(_listed_kinds().values())
    assert listed == set(specs), f"hookspecs {sorted(set(specs) - listed)} are missing from README"
    for name in listed:
        assert inspect.getdoc(specs[name]), f"hookspec {name} has no docstring for plugin authors"
    registry = default_registry()
    for kind in KINDS:  # each hook collects at least the built-in components of its kind
        assert registry.names(kind.name), f"no {kind.name} answers {kind.hook_name}"
