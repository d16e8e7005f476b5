"""Third-party plugins found through the ``mgsr`` entry-point group, without installing anything."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import torch

import mgsr
from mgsr.errors import RecipeError
from mgsr.registry import default_registry

from ..conftest import REPO

EXAMPLE = REPO / "docs" / "examples" / "mgsr-acme-blocks" / "src" / "mgsr_acme_blocks"


def make_dist(root: Path, dist: str, entry_points: str, version: str = "0.1") -> None:
    """A ``*.dist-info`` folder as pip would leave it: METADATA and entry_points.txt."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[mgsr]\n" + entry_points + "\n")


@pytest.fixture
def acme(tmp_path, monkeypatch):
    """The example plugin in docs/examples on sys.path, declared by a temporary dist-info."""
    shutil.copytree(EXAMPLE, tmp_path / "mgsr_acme_blocks")
    make_dist(tmp_path, "mgsr-acme-blocks", "acme-blocks = mgsr_acme_blocks.plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MGSR_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("MGSR_DISABLED_PLUGINS", raising=False)
    return tmp_path


def recipe_using(block: str, tmp_path: Path) -> Path:
    path = tmp_path / "third_party.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [model]
            features = 8
            [model.analysis]
            type = "{block}"
            depth = 1
            [model.upscaling]
            type = "dense"
            layers = 1
            growth = 4
            [model.downscaling]
            type = "{block}"
            [model.synthesis]
            type = "{block}"
            [model.classic_upscaler]
            type = "learned_bicubic"
            [model.noise]
            type = "gaussian"
            """
        )
    )
    return path


def test_third_party_block_builds_and_runs(acme):
    registry = default_registry()
    provider = registry.providers("filter_block", "acme_residual")[0].plugin
    assert (provider.name, provider.distribution, provider.version) == ("acme-blocks", "mgsr-acme-blocks", "0.1")
    built = mgsr.build(recipe_using("acme_residual", acme), registry)
    outs = built.generator(torch.rand(1, 3, 5, 6), 2, noise_amp=1.0)
    assert outs[-1].shape == (1, 3, 20, 24)
    assert type(built.generator.analysis.block).__name__ == "ResidualBlock"


def test_plugins_command_lists_the_third_party(acme, capsys):
    from mgsr.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "acme-blocks" in out and "mgsr-acme-blocks 0.1" in out and "filter_block:acme_residual" in out


def test_disabled_plugins_and_autoload_switch(acme, monkeypatch):
    monkeypatch.setenv("MGSR_DISABLED_PLUGINS", "acme-blocks")
    assert "acme_residual" not in default_registry().names("filter_block")
    monkeypatch.delenv("MGSR_DISABLED_PLUGINS")
    monkeypatch.setenv("MGSR_DISABLE_PLUGIN_AUTOLOAD", "1")
    names = default_registry().names("filter_block")
    assert "acme_residual" not in names and "dense" in names


def test_duplicate_from_a_distribution_names_both_and_the_recipe(acme, tmp_path):
    (tmp_path / "mgsr_clash.py").write_text(
        "from mgsr import hookimpl\n"
        "from mgsr_acme_blocks.blocks import ResidualBlock\n"
        "class Clash(ResidualBlock):\n    name = 'acme_residual'\n"
        "@hookimpl\ndef mgsr_filter_blocks():\n    return [Clash]\n"
    )
    make_dist(tmp_path, "mgsr-clash", "clash = mgsr_clash", version="2.0")
    recipe = recipe_using("acme_residual", tmp_path)
    with pytest.raises(RecipeError) as info:
        mgsr.load_recipe(recipe)
    message = str(info.value)
    assert str(recipe) in message
    assert "plugin 'acme-blocks'" in message and "plugin 'clash'" in message and "mgsr-clash 2.0" in message
    assert "MGSR_DISABLED_PLUGINS=" in message and "@ $.model.analysis" in message


def test_broken_plugin_is_named_and_fatal_only_when_used(acme, tmp_path):
    (tmp_path / "mgsr_broken.py").write_text("import a_module_that_does_not_exist\n")
    make_dist(tmp_path, "mgsr-broken", "broken = mgsr_broken", version="0.3")
    registry = default_registry()
    assert [b.info.name for b in registry.broken] == ["broken"]
    # A recipe that does not need it still builds ...
    mgsr.build(recipe_using("acme_residual", tmp_path), registry)
    # ... one that names a component it may have provided gets the import failure in its error.
    with pytest.raises(RecipeError) as info:
        mgsr.load_recipe(recipe_using("broken_block", tmp_path), registry)
    message = str(info.value)
    assert "unknown filter_block 'broken_block'" in message
    assert "mgsr-broken 0.3" in message and "a_module_that_does_not_exist" in message


def test_misspelled_hook_in_an_entry_point_plugin_fails_loudly(acme, tmp_path):
    (tmp_path / "mgsr_typo.py").write_text(
        "from mgsr import hookimpl\n@hookimpl\ndef mgsr_filterblocks():\n    return []\n"
    )
    make_dist(tmp_path, "mgsr-typo", "typo = mgsr_typo")
    from mgsr.errors import PluginError

    with pytest.raises(PluginError, match="mgsr_filterblocks"):
        default_registry()
