"""README's Layout block against the package: every folder and root module is listed, under the heading of the
layer the layer test puts it in, and every path it names exists, so the map a newcomer reads cannot drift."""

from __future__ import annotations

import re

from .test_layout import LAYERS, PACKAGES, ROOT, _layer

MGSR = PACKAGES["mgsr"]


def _layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("```", text.index("## Layout\n"))
    return text[start + 3 : text.index("```", start + 3)]


def _entries() -> list[tuple[str, str]]:
    """(layer heading, path) for each ``mgsr/...`` entry at the start of a line, under the latest ``-- layer``."""
    heading, found = "", []
    for line in _layout_block().splitlines():
        if line.startswith("-- "):
            heading = line[3:].split(":")[0].split()[0].rstrip("/")
        if first := re.match(r"mgsr/[\w/.]+(?:, [\w/.]+)*", line):  # "mgsr/nn.py, ops/", "mgsr/weights/, samples/"
            for part in first[0].split(", "):
                found.append((heading, part if part.startswith("mgsr/") else "mgsr/" + part))
    return found


def _module(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/").replace("/", ".")


def test_every_listed_path_exists_under_its_layer_heading():
    names = [name for name, _ in LAYERS]
    for heading, path in _entries():
        assert (ROOT / path).exists(), f"README's Layout names {path}, which does not exist"
        if path in ("mgsr/__init__.py", "mgsr/__main__.py"):
            continue
        layer = _layer(_module(path))
        assert layer is not None and heading == names[layer], f"{path} is listed under '{heading}', not its layer"


def test_every_folder_and_root_module_is_listed():
    listed = {path.rstrip("/") for _, path in _entries()}
    block = _layout_block()
    for child in sorted(MGSR.iterdir()):
        if child.name.startswith(("_", ".")) and child.name not in ("__init__.py", "__main__.py"):
            continue
        if child.is_dir() and (child / "__init__.py").exists() or child.suffix == ".py":
            relative = f"mgsr/{child.name}"
            assert relative in listed or re.search(rf"\b{re.escape(child.name)}\b", block), (
                f"{relative} is missing from README's Layout"
            )


def test_the_headings_follow_the_layers_in_order():
    headings = [
        line[3:].split(":")[0].split()[0].rstrip("/") for line in _layout_block().splitlines() if line.startswith("-- ")
    ]
    assert headings == [name for name, _ in LAYERS]
