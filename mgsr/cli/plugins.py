"""``mgsr plugins``: every plugin with its distribution, version and components; broken ones and clashes."""

from __future__ import annotations

import argparse

from mgsr.registry import default_registry, iter_components


def run(args: argparse.Namespace) -> int:
    registry = default_registry()
    by_plugin: dict[str, list[str]] = {}
    for kind, name, provided in iter_components(registry):
        by_plugin.setdefault(provided.plugin.name, []).append(f"{kind}:{name}")
    width = max((len(info.name) for info in registry.plugins), default=0)
    for info in registry.plugins:
        dist = f"{info.distribution} {info.version}" if info.distribution else "(not installed as a distribution)"
        comps = ", ".join(by_plugin.get(info.name, [])) or "(no components)"
        print(f"{info.name:<{width}}  {dist:<20} {comps}")
    for broken in registry.broken:
        print(f"BROKEN {broken.info.describe()}: {broken.error}")
    for kind, name, providers in registry.duplicates():
        who = ", ".join(p.plugin.name for p in providers)
        print(f"CONFLICT {kind} '{name}' provided by {who}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, their distributions and components")
    p.set_defaults(func=run)
