"""Bundled recipes by name: `mgsr train pirm_r3`, `mgsr recipe show NAME`, `base = "pirm_r3"`, `mgsr recipe list`."""

from __future__ import annotations

from pathlib import Path

import pytest

import mgsr
from mgsr.cli import main
from mgsr.errors import RecipeError
from mgsr.recipe.names import bundled_recipes, find_recipe
from mgsr.training.run import run_folder

from ..conftest import RECIPES


def test_every_file_in_recipes_is_bundled_under_its_name():
    on_disk = {p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.toml")}
    assert set(bundled_recipes()) == on_disk
    assert {"quickstart", "pirm_r3", "ablations/no_gan"} <= on_disk


@pytest.mark.parametrize("name", ["pirm_r3", "pirm_r3.toml", "ablations/no_gan"])
def test_a_name_loads_the_bundled_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder around, as after a wheel install
    by_name = mgsr.load_recipe(name)
    by_path = mgsr.load_recipe(RECIPES / f"{name.removesuffix('.toml')}.toml")
    assert by_name.digest() == by_path.digest()


def test_an_existing_file_wins_over_the_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("pirm_r3.toml").write_text('base = "pirm_r3"\n[model]\nfeatures = 24\n')
    assert mgsr.load_recipe("pirm_r3.toml").model.features == 24
    assert mgsr.load_recipe("pirm_r3").model.features == 48


def test_base_names_a_bundled_recipe(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "pirm_r3"\n[training]\nlr = 0.0002\n')
    recipe, r3 = mgsr.load_recipe(mine), mgsr.load_recipe(RECIPES / "pirm_r3.toml")
    assert recipe.training.lr == 0.0002 and recipe.losses == r3.losses
    mine.write_text('base = "pirm_r9"\n')
    with pytest.raises(RecipeError, match=r"mine.toml: base = 'pirm_r9' is neither.*did you mean 'pirm_r\d'"):
        mgsr.load_recipe(mine)


def test_unknown_name_lists_the_bundled_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=r"not found: quickstrat.*did you mean 'quickstart'.*ablations/no_gan"):
        find_recipe("quickstrat")
    assert main(["recipe", "show", "quickstrat"]) == RecipeError.exit_code
    assert "did you mean 'quickstart'" in capsys.readouterr().err


def test_recipe_list_names_each_with_its_first_comment_line(capsys):
    assert main(["recipe", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    assert list(rows) == list(bundled_recipes())
    first = (RECIPES / "pirm_r1.toml").read_text().splitlines()[0].lstrip("# ")
    assert rows["pirm_r1"] == first
    assert rows["ablations/no_gan"].startswith("Figure 8 ablation")


def test_run_folder_of_a_nested_name_is_its_last_part():
    assert run_folder("ablations/no_gan", None) == Path("runs") / "no_gan"
    assert run_folder("pirm_r3", None) == Path("runs") / "pirm_r3"
