"""Recipes: strict structuring, path-qualified errors with the file name, round trips."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import mgsr
from mgsr.errors import RecipeError

from ..conftest import RECIPES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def r3_text() -> str:
    return (RECIPES / "pirm_r3.toml").read_text()


def expect_error(tmp_path: Path, text: str, *fragments: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        mgsr.load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("name", ["pirm_r1.toml", "pirm_r2.toml", "pirm_r3.toml"])
def test_shipped_recipes_load_and_roundtrip(name):
    recipe = mgsr.load_recipe(RECIPES / name)
    assert mgsr.load_recipe(recipe.to_dict()) == recipe
    assert recipe.model.features == 48 and recipe.model.mu == 2
    assert [
        recipe.model.analysis.config.layers,
        recipe.model.upscaling.config.layers,
        recipe.model.downscaling.config.layers,
        recipe.model.synthesis.config.layers,
    ] == [3, 3, 4, 3]


def test_digest_follows_content():
    r1, r3 = mgsr.load_recipe(RECIPES / "pirm_r1.toml"), mgsr.load_recipe(RECIPES / "pirm_r3.toml")
    assert r1.digest() != r3.digest()
    assert mgsr.load_recipe(r3.to_dict()).digest() == r3.digest()


def test_unknown_type_suggests_and_names_the_path(tmp_path):
    text = r3_text().replace('[model.synthesis]\ntype = "dense"', '[model.synthesis]\ntype = "dence"')
    expect_error(tmp_path, text, "unknown filter_block 'dence' (did you mean 'dense'?)", "@ $.model.synthesis")


def test_extra_key_at_top_and_inside_a_component(tmp_path):
    expect_error(tmp_path, r3_text() + "\n[extra]\na = 1\n", "extra")
    text = r3_text().replace(
        "growth = 16\nbottleneck = 4\n\n[model.downscaling]",
        "growth = 16\nbottleneck = 4\ngrowht = 3\n\n[model.downscaling]",
    )
    expect_error(tmp_path, text, "growht", "$.model.upscaling")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("features = 48", 'features = "48"', "expected an integer, got str"),
        ("features = 48", "features = 48.0", "expected an integer, got float"),
        ("features = 48", "features = true", "expected an integer, got a boolean"),
        ("trainable = true", 'trainable = "false"', "expected true or false, got str"),
        ("scales = [1, 2, 3]", 'scales = "123"', "expected a list, got str"),
        ("lr = 0.001", 'lr = "1e-3"', "expected a number, got str"),
    ],
)
def test_wrong_scalar_types_are_refused(tmp_path, old, new, fragment):
    assert old in r3_text()
    expect_error(tmp_path, r3_text().replace(old, new), fragment)


def test_validator_errors_carry_the_path(tmp_path):
    text = r3_text().replace("layers = 4", "layers = 0")
    expect_error(tmp_path, text, "'layers' must be > 0: 0", "$.model.downscaling")


def test_missing_type_and_missing_section(tmp_path):
    expect_error(
        tmp_path, r3_text().replace('[model.noise]\ntype = "gaussian"', "[model.noise]"), "missing 'type'", "gaussian"
    )
    expect_error(tmp_path, r3_text().replace('[model.noise]\ntype = "gaussian"', ""), "$.model.noise")


def test_unknown_discriminator_is_not_silently_accepted(tmp_path):
    text = r3_text().replace(
        '[discriminator]\ntype = "multiscale_recursive"', '[discriminator]\ntype = "multiscale_recursiv"'
    )
    expect_error(
        tmp_path,
        text,
        "unknown discriminator 'multiscale_recursiv' (did you mean 'multiscale_recursive'?)",
        "$.discriminator",
    )


def test_bad_files(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        mgsr.load_recipe(tmp_path / "nope.toml")
    with pytest.raises(RecipeError, match="directory"):
        mgsr.load_recipe(tmp_path)
    expect_error(tmp_path, "[model\nfeatures = 4", "not valid TOML")


def test_resolved_recipe_fills_defaults():
    data = mgsr.load_recipe(RECIPES / "pirm_r3.toml").to_dict()
    assert data["model"]["analysis"]["kernel_size"] == 3
    assert data["model"]["noise"] == {"type": "gaussian", "std": 1.0}
    tomllib.loads(__import__("tomli_w").dumps(data))
