"""Functions a reader can hold in their head: none in mgsr/, plugins/, benchmarks/ or docs/ runs over 60 lines.

A function's length is counted from its ``def`` line to its last line, closures included, without its
docstring: a docstring says why, and a limit that charged for it would push explanations out of the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the package, its plugins, and the scripts whose figures README quotes (they are read and changed as often)
PACKAGES = {
    "mgsr": ROOT / "mgsr",
    "mgsr_plugins": ROOT / "plugins",
    "benchmarks": ROOT / "benchmarks",
    "docs": ROOT / "docs",
}
LIMIT = 60

#: functions kept longer than LIMIT, by qualified name, with the reason
ALLOWED: dict[str, str] = {}


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the end, less the docstring's."""
    assert node.end_lineno is not None
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        assert first.end_lineno is not None
        lines -= first.end_lineno - first.lineno + 1
    return lines


def _functions(tree: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
    """(qualified name, length) of every function under ``tree``: methods and closures included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}.{node.name}", _length(node)
            yield from _functions(node, f"{prefix}.{node.name}")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}.{node.name}")
        else:
            yield from _functions(node, prefix)


def _module_name(package: str, base: Path, path: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_functions() -> dict[str, int]:
    found = {}
    for package, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            module = _module_name(package, base, path)
            found.update(_functions(ast.parse(path.read_text()), module))
    return found


def test_no_function_is_longer_than_the_limit():
    long = {name: n for name, n in _all_functions().items() if n > LIMIT and name not in ALLOWED}
    assert not long, (
        f"functions over {LIMIT} lines (docstrings not counted): {long}; split them into parts whose names "
        f"say what they do, or add one to ALLOWED in {Path(__file__).name} with the reason"
    )


def test_every_allowed_function_exists_and_is_still_long():
    """An entry outlives its reason once the function is split or renamed: then it must go."""
    functions = _all_functions()
    stale = {name: functions.get(name) for name in ALLOWED if functions.get(name, 0) <= LIMIT}
    assert not stale, f"remove from ALLOWED (gone, or now within {LIMIT} lines): {stale}"


def test_the_count_sees_closures_and_methods_and_skips_the_docstring():
    source = (
        "class C:\n"
        "    def m(self):\n"
        '        """Two\n        lines."""\n'
        "        def inner():\n"
        "            return 1\n"
        "        return inner()\n"
    )
    assert dict(_functions(ast.parse(source), "pkg.mod")) == {"pkg.mod.C.m": 4, "pkg.mod.C.m.inner": 2}
