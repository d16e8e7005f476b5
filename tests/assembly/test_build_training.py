"""The paper's discriminator and objective in the shipped recipes, and ``build(..., training=True)``."""

from __future__ import annotations

import tomllib

import pytest
import torch

import mgsr
from mgsr.errors import WeightsError
from mgsr.ops.imresize import s_down

from ..conftest import RECIPES


@pytest.mark.parametrize("name", ["pirm_r1.toml", "pirm_r2.toml", "pirm_r3.toml"])
def test_recipes_hold_the_papers_discriminator_and_eq7_weights(name):
    recipe = mgsr.load_recipe(RECIPES / name)
    d = recipe.discriminator
    assert (d.type, d.config.features, d.config.input.type, d.config.input.config.radius) == (
        "multiscale_recursive",
        48,
        "vn_sc",
        3,
    )
    assert [
        (p.type, p.config.layers, p.config.growth) for p in (d.config.analysis, d.config.pooling, d.config.synthesis)
    ] == [("dense", 4, 16)] * 3
    terms = [(s.type, s.config.weight, s.config.noise) for s in recipe.losses]
    assert terms == [
        ("gan", 0.001, (1.0,)),
        ("contextual", 0.1, (1.0,)),
        ("l1", 10.0, (0.0,)),
        ("cycle", 10.0, (0.0, 1.0)),
    ]
    assert recipe.losses[1].config.features.config.layer == "relu3_4"  # the reference CX code's "conv3_4"
    assert recipe.losses[1].config.centre == "batch"


def test_building_for_training_makes_the_discriminator_and_losses(tmp_path):
    data = tomllib.loads((RECIPES / "pirm_r3.toml").read_text())
    vgg = mgsr.default_registry().get("feature_extractor", "vgg19")
    weights = tmp_path / "vgg.pth"
    torch.save(vgg(vgg.Config(pretrained=False)).state_dict(), weights)  # stands in for the ImageNet file
    data["losses"][1]["features"]["weights"] = str(weights)
    built = mgsr.build(data, training=True)
    assert type(built.discriminator).name == "multiscale_recursive"
    assert [type(loss).name for loss in built.losses] == ["gan", "contextual", "l1", "cycle"]
    assert torch.equal(built.losses[1].features.features[0].weight, torch.load(weights)["features.0.weight"])
    # one generator + discriminator step of eq. 7 at L = 1 runs end to end
    x = torch.rand(1, 3, 16, 16)
    lr = s_down(x, 2)
    outputs = {w: built.generator(lr, 1, noise_amp=w) for w in (0.0, 1.0)}
    total = sum(loss(outputs, [x], discriminator=built.discriminator) for loss in built.losses)
    total.backward()
    assert torch.isfinite(total) and built.generator.analysis.conv_in.weight.grad is not None
    d_loss = built.losses[0].discriminator_loss(outputs, [x], discriminator=built.discriminator)
    assert torch.isfinite(d_loss)


def test_upscaling_builds_need_no_training_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    built = mgsr.build(RECIPES / "pirm_r3.toml")
    assert built.discriminator is None and built.losses == ()
    with pytest.raises(WeightsError, match="vgg19-dcbb9e9d.pth"):
        mgsr.build(RECIPES / "pirm_r3.toml", training=True)
