"""The package's shape: imports only downward through the layers (function-local imports included), no import
cycles, small modules."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"mgsr": ROOT / "mgsr", "mgsr_plugins": ROOT / "plugins"}


def _module_name(package: str, base: Path, path: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(packages: dict[str, Path] = PACKAGES) -> dict[str, Path]:
    return {_module_name(pkg, base, p): p for pkg, base in packages.items() for p in base.rglob("*.py")}


def _face(packages: dict[str, Path] = PACKAGES) -> dict[str, str]:
    """The package root's lazy names -> their home modules (``HOMES`` in mgsr/__init__.py, read without
    importing it), so ``from mgsr import upscale`` counts as an import of mgsr.inference.pictures."""
    tree = ast.parse((packages["mgsr"] / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "HOMES":
            return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError("mgsr/__init__.py has no HOMES table: the layer check cannot see through the face")


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``: annotations only, never run, so not a dependency."""
    hidden = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(inner) for branch in node.body for inner in ast.walk(branch)}
    return hidden


def _targets(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import node (or an ``mgsr.<name>`` attribute read) reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parent + ([base] if base else []))
        return [f"{base}.{alias.name}" for alias in node.names] + [base]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "mgsr":
        return [f"mgsr.{node.attr}"]  # ``import mgsr`` then ``mgsr.upscale(...)``
    return []


def _imports(name: str, path: Path, known: set[str], face: dict[str, str] | None = None) -> set[str]:
    """Modules of ours that ``path`` imports anywhere (module level or inside functions, directly or through the
    package root's lazy names), leaving out imports made only for type checkers."""
    face = _face() if face is None else face
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    hidden = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        for target in _targets(node, package):
            head, _, rest = target.partition(".")
            if head == "mgsr" and rest.split(".")[0] in face:
                target = face[rest.split(".")[0]]
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "mgsr":
                found.add(target)
    return found


#: the layers, lowest first; a module may import its own layer and the ones below, never one above
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # what plugins and recipes are written against: the package root's modules and the recipe schema
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
            "mgsr.number_formats",
            "mgsr.version",
            "mgsr.torch_versions",
        ),
    ),
    # shared tools: tensor maths, building blocks, files and downloads, where a job runs, bundled data
    (
        "toolkit",
        ("mgsr.ops", "mgsr.nn", "mgsr.io", "mgsr.runtime", "mgsr.samples", "mgsr.weights", "mgsr.niqe_model"),
    ),
    ("plugins", ("mgsr_plugins",)),
    ("model", ("mgsr.model",)),
    # a recipe or a weights file turned into modules: the registry's plugins put into the model
    ("assembly", ("mgsr.assembly",)),
    ("inference", ("mgsr.inference",)),
    ("evaluation", ("mgsr.evaluation",)),
    ("training", ("mgsr.training",)),
    ("applications", ("mgsr.serve", "mgsr.cli", "mgsr.integrations", "mgsr.__main__")),
)


def _layer(module: str) -> int | None:
    """The index in LAYERS of ``module`` (the longest matching prefix wins), None when it is in none."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def _upward_imports(packages: dict[str, Path] = PACKAGES) -> list[str]:
    """Every import that runs up a layer, as ``module (layer) imports target (layer)`` lines."""
    modules = _modules(packages)
    face = _face(packages)
    upward = []
    for name, path in sorted(modules.items()):
        if name == "mgsr":  # the package root: a lazy face over every layer (its names are resolved above)
            continue
        layer = _layer(name)
        assert layer is not None, f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}"
        for target in sorted(_imports(name, path, set(modules), face)):
            if (above := _layer(target)) is not None and above > layer:
                upward.append(f"{name} ({LAYERS[layer][0]}) imports {target} ({LAYERS[above][0]})")
    return upward


def test_every_module_has_a_layer_and_imports_only_downward():
    upward = _upward_imports()
    assert not upward, "imports that run up a layer:\n  " + "\n  ".join(upward)


#: violations planted in a copy of the package, each of which the check above must report
PLANTED = {
    "ops/_planted_face.py": "def f():\n    from mgsr import upscale\n    return upscale\n",
    "io/_planted_attribute.py": "import mgsr\n\n\ndef f():\n    return mgsr.pretrained\n",
    "model/_planted_assembly.py": "from mgsr.assembly.build import build_generator\n",
    "nn_planted.py": "def f():\n    from mgsr.training.run import train\n    return train\n",
}


def test_the_layer_check_fails_on_planted_upward_imports(tmp_path):
    """The check can fail: in a copy of the package, a function-local import through the root's lazy face, an
    ``mgsr.<name>`` read, the model importing the assembly and a toolkit-level module importing training are
    each reported; an upward import made only for type checkers is not."""
    copy = tmp_path / "mgsr"
    shutil.copytree(PACKAGES["mgsr"], copy, ignore=shutil.ignore_patterns("*.safetensors", "*.png", "*.npz"))
    for relative, text in PLANTED.items():
        (copy / relative).write_text(text)
    (copy / "ops" / "_typing_only.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from mgsr.inference.core import upscale_tensor\n"
    )
    layers = dict(LAYERS)
    layers["toolkit"] = (*layers["toolkit"], "mgsr.nn_planted")
    original = LAYERS
    globals()["LAYERS"] = tuple(layers.items())
    try:
        found = "\n".join(_upward_imports({"mgsr": copy, "mgsr_plugins": PACKAGES["mgsr_plugins"]}))
    finally:
        globals()["LAYERS"] = original
    for planted in ("mgsr.ops._planted_face", "mgsr.io._planted_attribute", "mgsr.model._planted_assembly"):
        assert f"{planted} (" in found, f"the planted {planted} was not reported:\n{found}"
    assert "mgsr.nn_planted (toolkit) imports mgsr.training.run (training)" in found
    assert "_typing_only" not in found


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
    public = ("mgsr.interfaces", "mgsr.hookspecs", "mgsr.nn", "mgsr.ops", "mgsr.io.hub", "mgsr.errors", "mgsr.specs")
    modules = _modules()
    for name, path in modules.items():
        if not name.startswith("mgsr_plugins"):
            continue
        for target in _imports(name, path, set(modules)):
            if target == "mgsr.io":  # ``from mgsr.io import hub``: the folder's __init__ is only its docstring
                continue
            assert target.startswith(public), f"{name} imports {target}; plugins may use only {public}"


def test_the_package_face_is_lazy_and_typed_as_its_homes():
    """``from mgsr import hookimpl`` (every plugin's first line) loads the contract only, every public name
    resolves to the object its home defines, and what type checkers see is the same table."""
    code = (
        "import sys\nfrom mgsr import hookimpl\n"
        "print(sorted(m for m in sys.modules if m.startswith(('mgsr.model', 'mgsr.inference', 'mgsr.assembly.build'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", f"from mgsr import hookimpl loaded {loaded}"
    import mgsr

    homes = _face()
    assert mgsr.__all__ == sorted(homes)
    for name, home in homes.items():
        assert getattr(mgsr, name) is getattr(importlib.import_module(home), name), name
    tree = ast.parse((PACKAGES["mgsr"] / "__init__.py").read_text())
    typed = {
        alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and id(node) in _type_checking_only(tree)
        for alias in node.names
    }
    assert typed == homes
