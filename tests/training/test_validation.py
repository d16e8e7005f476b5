"""Training's validation is `mgsr eval`: same numbers for the same checkpoint and images; epochs; validate_scale."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from mgsr.assembly.loading import load_generator
from mgsr.cli import main
from mgsr.errors import RecipeError
from mgsr.recipe import TrainingSpec, load_recipe
from mgsr.training.run import train
from mgsr.training.schedule import resolve_schedule, steps_per_epoch, validation_scale

from ..helpers import smooth_rgb, tiny_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_validation_numbers_are_mgsr_eval_numbers(tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    # whole images, sizes not a multiple of 4 (the protocol crops from the top-left), large enough for NIQE
    for name, (h, w) in {"a": (122, 131), "b": (117, 150)}.items():
        Image.fromarray(smooth_rgb(h, w)).save(val / f"{name}.png")
    run = tmp_path / "run"
    train(
        tiny_recipe(tmp_path, steps=2, validate_every=2),
        out=str(run),
        progress=False,
        overrides=[f"data.val=[{json.dumps(str(val))}]", "data.val_crop=none"],
    )
    logged = [r for r in _records(run) if "val/rmse_w0" in r][-1]
    assert logged["step"] == 2
    for w in (0, 1):
        out = tmp_path / f"eval_w{w}.json"
        assert (
            main(
                [
                    "eval",
                    "--model",
                    str(run),
                    "--hr",
                    str(val),
                    "--scale",
                    "4",
                    "--noise",
                    str(w),
                    "--metric",
                    "l1",
                    "--json",
                    str(out),
                ]
            )
            == 0
        )
        aggregate = json.loads(out.read_text())["aggregate"]
        assert set(aggregate) >= {"rmse", "psnr", "ssim", "niqe", "l1"}
        for metric, value in aggregate.items():
            assert logged[f"val/{metric}_w{w}"] == pytest.approx(value, rel=1e-9, abs=0), (metric, w)
    assert (
        main(
            [
                "eval",
                "--model",
                "bicubic",
                "--hr",
                str(val),
                "--scale",
                "4",
                "--metric",
                "l1",
                "--json",
                str(tmp_path / "bicubic.json"),
            ]
        )
        == 0
    )
    bicubic = json.loads((tmp_path / "bicubic.json").read_text())["aggregate"]
    assert logged["val/psnr_bicubic"] == pytest.approx(bicubic["psnr"], rel=1e-9, abs=0)
    assert logged["val/l1_w0"] != logged["val/l1_w1"]  # W = 1 is really drawn
    # the run's card carries its curve, measured on the same images at the end, so --detail works with the run
    card = load_generator(str(run)).card
    assert card.curve is not None and card.curve.noise[0] == 0 and card.curve.noise[-1] == card.default_noise
    assert len(card.curve.noise) >= 8 and card.curve.images == ("a", "b")
    assert card.curve.rmse[0] == pytest.approx(logged["val/rmse_w0"], rel=1e-9)  # the final G is step 2's
    assert card.curve.niqe[-1] == pytest.approx(logged["val/niqe_w1"], rel=1e-9)
    src = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(24, 24)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "d.png"), "--model", str(run), "--detail", "0.5"]) == 0


def test_epochs_set_steps_and_validation_after_each_epoch(tmp_path):
    # the tiny recipe's 5 training images, batch 4: an epoch is ceil(5 / 4) = 2 steps
    run = tmp_path / "run"
    train(
        tiny_recipe(tmp_path, steps=0, epochs=3, validate_every_epochs=1, validate_every=100),
        out=str(run),
        progress=False,
    )
    records = _records(run)
    assert [r["step"] for r in records if "loss/total" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "val/l1_w0" in r] == [2, 4, 6]


def test_schedule_arithmetic():
    assert steps_per_epoch(4271, 16) == 267 and steps_per_epoch(16, 16) == 1 and steps_per_epoch(17, 16) == 2
    spec = resolve_schedule(TrainingSpec(epochs=100, validate_every_epochs=2, batch_size=16), 4271)
    assert (spec.steps, spec.validate_every, spec.epochs, spec.validate_every_epochs) == (26700, 534, None, None)
    plain = TrainingSpec(steps=10, validate_every=3)
    assert resolve_schedule(plain, 5) is plain


def test_steps_and_epochs_together_are_refused(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=4)
    with pytest.raises(RecipeError, match=r"training.steps = 4 and training.epochs = 2 are both set"):
        load_recipe(recipe, overrides=["training.epochs=2"])
    assert load_recipe(recipe, overrides=["training.epochs=2", "training.steps=0"]).training.epochs == 2


def test_validate_scale_default_and_refusal(tmp_path):
    assert validation_scale(TrainingSpec(scales=(1, 2, 3))) == 4  # the paper's recipes: 4x, as PIRM-SR scores
    assert validation_scale(TrainingSpec(scales=(1,))) == 2
    assert validation_scale(TrainingSpec(scales=(1, 3))) == 8
    assert validation_scale(TrainingSpec(scales=(1, 2, 3), validate_scale=8)) == 8
    with pytest.raises(RecipeError, match="validate_scale = 8 is not a trained scale"):
        load_recipe(tiny_recipe(tmp_path), overrides=["training.validate_scale=8"])


def test_ablation_recipes_follow_figure_8():
    from ..conftest import RECIPES

    ablations = sorted((RECIPES / "ablations").glob("*.toml"))
    assert len(ablations) == 7
    for path in ablations:
        recipe = load_recipe(path)
        assert (recipe.training.epochs, recipe.training.validate_every_epochs, recipe.training.steps) == (100, 1, 0)
        assert recipe.pretrain is not None and recipe.pretrain.steps > 0, path  # the L1 pre-training (section 6.1)
        if path.stem != "full":  # the others start from full.toml's pre-training instead of repeating it
            assert "--set model.weights=runs/full/pretrain" in path.read_text(), path
    no_noise = load_recipe(RECIPES / "ablations" / "no_noise.toml")
    assert [(s.type, s.config.weight, s.config.noise) for s in no_noise.losses][-1] == ("cycle", 20.0, (0.0,))
