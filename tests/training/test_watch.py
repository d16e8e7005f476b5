"""Watching a run: held-out validation, validation resized like training, period-2 / phase alarms, summary."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.assembly.build import build
from mgsr.assembly.loading import load_generator
from mgsr.errors import DataError
from mgsr.evaluation.knob import phase_spread
from mgsr.recipe import load_recipe
from mgsr.registry import default_registry
from mgsr.training.data import resolve_folder, scan_images, validation_set
from mgsr.training.holdout import choose_holdout, holdout_count
from mgsr.training.run import stage_trainer, train
from mgsr.training.store import open_store, prepare
from mgsr.training.training_images import load_rgb_uint8, target_size
from mgsr.training.validation import Validator
from mgsr.training.validation_watch import ValidationWatch
from mgsr.training.watch import PHASE_SPREAD_LIMIT, alarms

from ..helpers import final_state, smooth_rgb, tiny_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _photos(folder, count, start=0, size=(40, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(smooth_rgb(*size)).save(folder / f"p{i:02d}.png")
    return folder


def _no_val(folder, *extra):
    return [f"data.train=[{json.dumps(str(folder))}]", "data.val=[]", "data.val_crop=none", *extra]


def _trainer(tmp_path, overrides, run="run"):
    registry = default_registry()
    recipe = load_recipe(tiny_recipe(tmp_path), registry, overrides=overrides)
    return stage_trainer(build(recipe, registry, training=True), tmp_path / run, progress=False)


def test_holdout_count_limits():
    assert [holdout_count(10, n) for n in (1, 9, 10, 35, 1000)] == [0, 0, 1, 3, 10]
    assert holdout_count(0, 1000) == 0


def test_holdout_is_chosen_recorded_excluded_and_reused_on_resume(tmp_path, capsys):
    data = _photos(tmp_path / "train", 20)
    run = tmp_path / "run"
    train(tiny_recipe(tmp_path, steps=2), out=str(run), overrides=_no_val(data), progress=False)
    held = json.loads((run / "holdout.json").read_text())["sources"]
    assert len(held) == 2 and held == choose_holdout(sorted(data.iterdir()), 10, 3)
    err = capsys.readouterr().err
    assert f"validating on 2 held-out training images (listed in {run / 'holdout.json'})" in err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["data/images"] == 18
    assert any("val/psnr_w0" in r for r in records)

    _photos(data, 15, start=20)  # a grown set would be split otherwise; the resumed run keeps its list
    resumed = _trainer(tmp_path, _no_val(data, "training.steps=4"))
    assert [str(p.resolve()) for p in resumed.data.held_out] == held
    assert not set(held) & {str(p.resolve()) for p in resumed.data.images}
    assert len(resumed.data) == 33

    (data / held[0].rsplit("/", 1)[1]).unlink()
    with pytest.raises(DataError, match="holds out .* no longer lists; put it back, or delete"):
        _trainer(tmp_path, _no_val(data))


def test_holdout_from_a_prepared_store_names_the_sources(tmp_path):
    raw = _photos(tmp_path / "raw", 10)
    store = tmp_path / "store"
    prepare([raw], store, workers=0, progress=False)
    trainer = _trainer(tmp_path, _no_val(store))
    (image,) = trainer.data.held_out
    assert image.source == choose_holdout(sorted(raw.iterdir()), 10, 3)[0]
    assert image not in trainer.data.images and len(trainer.data) == 9
    assert trainer.validation.validator.images[0].name == image.source.rsplit("/", 1)[1].removesuffix(".png")


def test_validation_images_are_resized_like_the_training_images(tmp_path):
    val = _photos(tmp_path / "val", 1, size=(90, 120))
    megapixels = 0.003
    ((name, pixels),) = validation_set(scan_images([val], 4, megapixels).usable, None, megapixels)
    assert pixels.shape[:2] == target_size(90, 120, megapixels) == (47, 63)
    np.testing.assert_array_equal(pixels, load_rgb_uint8(val / "p00.png", megapixels))
    store = tmp_path / "store"
    prepare([val], store, target_megapixels=megapixels, workers=0, progress=False)
    np.testing.assert_array_equal(
        validation_set(scan_images([store], 4, megapixels).usable, None, megapixels)[0][1],
        open_store(store).images[0].array(),
    )
    trainer = _trainer(
        tmp_path, [f"data.val=[{json.dumps(str(val))}]", "data.val_crop=none", f"data.target_megapixels={megapixels}"]
    )
    assert trainer.validation.validator.images[0].hr.shape[:2] == (44, 60)  # 47x63 cropped to a multiple of 4


def test_phase_spread_and_period2_ratio_warn_for_split_phases(tmp_path):
    data = _photos(tmp_path / "train", 10, size=(64, 64))
    trainer = _trainer(tmp_path, _no_val(data))
    upscaler = trainer.generator.classic_upscaler
    torch.testing.assert_close(upscaler.phase_gains(), torch.ones(3, 4))  # bicubic: every phase passes DC as is
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean bicubic start raises no alarm
        clean = trainer.validate()
    assert clean["val/phase_spread"] < 1e-6
    with torch.no_grad():
        upscaler.weight[:, :, 0::2, 0::2] *= 1.02  # one phase 2 % brighter
    with pytest.warns(UserWarning) as caught:
        split = trainer.validate()
    assert split["val/phase_spread"] == pytest.approx(0.02 / 1.005, rel=1e-4)
    assert split["val/phase_spread"] > PHASE_SPREAD_LIMIT
    assert split["val/period2_ratio_w0"] > 2 > clean["val/period2_ratio_w0"]
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("step 0: val/phase_spread = 0.0199") for m in messages), messages
    assert any(m.startswith("step 0: val/period2_ratio_w0 = ") for m in messages), messages


def test_alarms_name_step_and_number():
    assert alarms(7, {"val/period2_ratio_w1": 1.5, "val/phase_spread": 0.004}) == []
    (line,) = alarms(7, {"val/period2_ratio_w1": 3.25, "val/phase_spread": 0.004})
    assert line.startswith("step 7: val/period2_ratio_w1 = 3.25")
    # a stage that trains only W = 0 (the L1 pre-training) is not warned about its untrained W = 1 ...
    assert alarms(7, {"val/period2_ratio_w1": 3.25}, trained_w={0.0}) == []
    # ... but about its W = 0, and a stage that trains W = 1 is
    assert len(alarms(7, {"val/period2_ratio_w0": 3.25, "val/period2_ratio_w1": 3.25}, trained_w={0.0})) == 1
    assert len(alarms(7, {"val/period2_ratio_w1": 3.25}, trained_w={0.0, 1.0})) == 1
    assert phase_spread(torch.tensor([[1.0, 1.0, 1.0, 1.1], [1.0, 1.0, 1.0, 1.0]])) == pytest.approx(0.1 / 1.025)
    assert phase_spread(None) is None


def test_step_times_are_logged_and_the_run_ends_with_a_summary(tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_recipe(tmp_path), out=str(run), progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if "time/step_s" in r]
    assert [r["step"] for r in timed] == [1, 2, 3, 4]
    assert all(0 <= r["time/data_wait_s"] < r["time/step_s"] for r in timed)
    err = capsys.readouterr().err
    summary = err[err.index(f"mgsr: stage 'train' of {run} ended at step 4 on cpu (") :]
    assert "s/step over the 4 steps of this session; waiting for data" in summary
    last = [r for r in records if "val/psnr_w0" in r][-1]
    assert f"{last['val/psnr_w0']:.2f}" in summary.splitlines()[4]  # the 'last' row
    assert any(line.strip().startswith("best PSNR w0") for line in summary.splitlines())
    assert len(summary.splitlines()) <= 8


def _validator(folder):
    """Validation at 4x on 192x192 crops of the images in ``folder``, as a recipe with val_crop = 192 scores."""
    found = scan_images([resolve_folder(folder)], min_side=4)
    return Validator(validation_set(found.usable, 192, None), 4, default_registry())


@pytest.mark.parametrize("name", ["pirm-r1", "pirm-r2", "pirm-r3"])
def test_released_models_pass_silently_where_a_fixed_limit_fires(name):
    """On the quickstart's validation textures the released W = 1 holds up to 12x the HR's period-2 share: a
    fine-tune is compared with its own start and stays silent."""
    model = load_generator(name)
    watch = ValidationWatch(_validator("samples:val"), "last", {0.0, 1.0})
    limits = watch.start(model, own_start=True)
    assert set(limits) == {"watch/period2_limit_w0", "watch/period2_limit_w1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = watch.validate(0, model)
    assert alarms(0, clean)  # where the fixed 2x limit fires on each


@pytest.mark.parametrize("phases", [(0, 1), (1, 0)])
def test_a_phase_split_of_one_percent_is_caught_as_a_grid_on_photos(phases, reference):
    model = load_generator("pirm-r3")
    watch = ValidationWatch(_validator(str(reference / "images")), "last", {0.0, 1.0})
    watch.start(model, own_start=True)
    brighter, darker = phases
    with torch.no_grad():  # a +-1 % split: one phase 1 % brighter, another 1 % darker
        model.classic_upscaler.weight[:, :, brighter::2, brighter::2] *= 1.01
        model.classic_upscaler.weight[:, :, darker::2, brighter::2] *= 0.99
    with pytest.warns(UserWarning) as caught:
        watch.validate(1, model)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("step 1: val/period2_ratio_w0") for m in messages), messages


def test_a_run_from_scratch_is_held_to_the_released_models_grid_and_keeps_its_limits(tmp_path):
    trainer = _trainer(tmp_path, ["data.val_crop=96"])
    reference = ValidationWatch(trainer.validation.validator, "last", {0.0, 1.0})
    reference.start(load_generator("pirm-r3"), own_start=True)
    assert trainer.validation.start(trainer.generator, own_start=False) == {
        k.replace("val/period2_ratio_", "watch/period2_limit_"): v for k, v in reference.limits.items()
    }
    checker = torch.ones(1, 1, 96 * 4, 96 * 4)
    checker[..., 0::2, 0::2] = checker[..., 1::2, 1::2] = -1.0

    def grid(_module, _inputs, outputs):  # a grid on every scale's output, as a trained one shows
        return [y + 0.03 * checker[..., : y.shape[-2], : y.shape[-1]] for y in outputs]

    hook = trainer.generator.register_forward_hook(grid)
    with pytest.warns(UserWarning, match="period2_ratio_w1 = "):
        trainer.validate()
    hook.remove()
    run = tmp_path / "run2"
    train(tiny_recipe(tmp_path, steps=2), out=str(run), overrides=["data.val_crop=96"], progress=False)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    kept = final_state(run)["watch"]["limits"]
    assert kept and {k.replace("val/period2_ratio_", "watch/period2_limit_"): v for k, v in kept.items()} == {
        k: v for k, v in first.items() if k.startswith("watch/")
    }
