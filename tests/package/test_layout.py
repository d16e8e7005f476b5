"""The package's shape: imports only downward through the layers (function-local imports included), no import
cycles, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"mgsr": ROOT / "mgsr", "mgsr_plugins": ROOT / "plugins"}


def _module_name(package: str, base: Path, path: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(pkg, base, p): p for pkg, base in PACKAGES.items() for p in base.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "mgsr":  # the package root only re-exports
                found.add(target)
    return found


#: the layers, lowest first; a module may import its own layer and the ones below, never one above
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "contract",
        (
            "mgsr.errors",
            "mgsr.specs",
            "mgsr.hookspecs",
            "mgsr.interfaces",
            "mgsr.kinds",
            "mgsr.registry",
            "mgsr.recipe",
            "mgsr.recipe_tables",
            "mgsr.recipe_names",
            "mgsr.number_formats",
            "mgsr.version",
            "mgsr.torch_versions",
        ),
    ),
    (
        "toolkit",
        (
            "mgsr.ops",
            "mgsr.io",
            "mgsr.nn",
            "mgsr.hub",
            "mgsr.devices",
            "mgsr.distributed",
            "mgsr.samples",
            "mgsr.weights",
            "mgsr.niqe_model",
        ),
    ),
    ("plugins", ("mgsr_plugins",)),
    ("model", ("mgsr.model", "mgsr.build")),
    ("inference", ("mgsr.inference",)),
    ("evaluation", ("mgsr.evaluation",)),
    ("training", ("mgsr.training",)),
    ("applications", ("mgsr.serve", "mgsr.cli", "mgsr.spandrel", "mgsr.comfyui", "mgsr.__main__")),
)


def _layer(module: str) -> int | None:
    """The index in LAYERS of ``module`` (the longest matching prefix wins), None when it is in none."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def test_every_module_has_a_layer_and_imports_only_downward():
    modules = _modules()
    upward = []
    for name, path in sorted(modules.items()):
        if name == "mgsr":  # the package root re-exports the public API from every layer
            continue
        layer = _layer(name)
        assert layer is not None, f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}"
        for target in sorted(_imports(name, path, set(modules))):
            if (above := _layer(target)) is not None and above > layer:
                upward.append(f"{name} ({LAYERS[layer][0]}) imports {target} ({LAYERS[above][0]})")
    assert not upward, "imports that run up a layer:\n  " + "\n  ".join(upward)


def test_the_layer_check_sees_a_function_local_upward_import(tmp_path):
    """The check above can fail: a toolkit module importing training inside a function is found."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from mgsr.training.run import train\n    return train\n")
    found = _imports("mgsr.ops.probe", module, set(_modules()))
    assert "mgsr.training.run" in found and _layer("mgsr.training.run") > _layer("mgsr.ops.probe")


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items() if name != "mgsr"}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_modules_stay_small():
    # ~400 lines of hand-wrapped code; ruff format writes long calls one argument per line (~7 % more lines)
    big = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 440}
    assert not big, f"modules over ~440 lines: {big}"


def test_plugins_use_only_the_public_toolkit():
    public = ("mgsr.interfaces", "mgsr.nn", "mgsr.ops", "mgsr.hub", "mgsr.errors", "mgsr.specs")
    modules = _modules()
    for name, path in modules.items():
        if not name.startswith("mgsr_plugins"):
            continue
        for target in _imports(name, path, set(modules)):
            assert target.startswith(public), f"{name} imports {target}; plugins may use only {public}"
