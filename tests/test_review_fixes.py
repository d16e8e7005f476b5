"""Edge cases found in review: stale checkpoints, undecodable data, changed recipes, bad values, file modes."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from mgsr.cli import main
from mgsr.errors import RecipeError, WeightsError
from mgsr.errors import TrainingError
from mgsr.training.run import train

from .test_data import make_images
from .test_training import tiny_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def test_saving_never_prunes_later_checkpoints_or_the_new_one(tmp_path):
    for step in (4, 5, 6):
        save_checkpoint(tmp_path, step, {}, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000000006.pt"]
    save_checkpoint(tmp_path, 2, {}, keep=1)  # e.g. a continuation from an older checkpoint
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000000002.pt", "step-000000006.pt"]


def test_resuming_from_an_older_checkpoint_is_refused_while_later_ones_exist(tmp_path):
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path, steps=4, checkpoint_every=1)
    train(recipe, out=str(run), progress=False)
    older = list_checkpoints(run / "checkpoints")[0]
    with pytest.raises(WeightsError, match="later checkpoints .*step-000000004.pt"):
        train(recipe, out=str(run), resume=str(older), progress=False)
    assert len(list_checkpoints(run / "checkpoints")) == 4  # nothing deleted


def test_undecodable_training_image_is_skipped_with_a_warning(tmp_path):
    data = make_images(tmp_path / "data", [(40, 40), (40, 40)])
    half = data / "img1.png"
    half.write_bytes(half.read_bytes()[:200])  # valid header, truncated data
    with pytest.warns(UserWarning, match="img1.png"):
        train(tiny_recipe(tmp_path, steps=2), data=[str(data)], out=str(tmp_path / "run"), progress=False)
    assert (tmp_path / "run" / "generator.safetensors").exists()


def test_images_skipped_by_the_scan_are_counted_in_the_log(tmp_path):
    data = make_images(tmp_path / "data", [(40, 40), (8, 8)])  # the second is smaller than a patch
    (data / "text.png").write_text("not an image")
    with pytest.warns(UserWarning):
        train(tiny_recipe(tmp_path, steps=1), data=[str(data)], out=str(tmp_path / "run"), progress=False)
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first == {"step": 0, "data/images": 1, "data/skipped": 2}


def test_resume_with_a_changed_recipe_warns_and_follows_it(tmp_path):
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path, steps=2)
    train(recipe, out=str(run), progress=False)
    with pytest.warns(UserWarning, match=r"recipe differs .*training\.lr"):
        train(recipe, out=str(run), resume="auto", overrides=["training.steps=3", "training.lr=0.5",
                                                              "training.batch_size=2"], progress=False)
    last = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "lr" in l][-1]
    assert last["step"] == 3 and last["lr"] == pytest.approx(0.5 / (1 + 3 / 1000) ** 0.5)
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["samples_seen"] == 2 * 4 + 2


@pytest.mark.parametrize("scales", ["[]", "[0]", "[-1]", "[1, 1]"])
def test_bad_scales_are_recipe_errors(tmp_path, scales):
    with pytest.raises(RecipeError, match="distinct level counts"):
        train(tiny_recipe(tmp_path), out=str(tmp_path / "r"), overrides=[f"training.scales={scales}"], progress=False)


def test_no_loss_at_the_trained_scales(tmp_path):
    overrides = ["training.scales=[1]"] + [f"losses.{i}.scales=[2]" for i in range(3)]
    with pytest.raises(TrainingError, match="no loss counts"):
        train(tiny_recipe(tmp_path), out=str(tmp_path / "r"), overrides=overrides, progress=False)


def test_non_finite_noise_is_refused(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    for bad in ("nan", "inf", "0.5,-1"):
        assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--noise", bad, "-q"]) != 0
    assert "finite and >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_outputs_get_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        src = tmp_path / "in.png"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
        assert main(["upscale", str(src), "-o", str(tmp_path / "o.jpg"), "--format", "jpeg", "-q",
                     "--scale", "2"]) == 0
        save_checkpoint(tmp_path / "ck", 1, {})
    finally:
        os.umask(old)
    for path in (tmp_path / "o.jpg", tmp_path / "ck" / "step-000000001.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_corrupt_checkpoint_message_is_short_and_safe(tmp_path, capsys):
    bad = tmp_path / "step-000000001.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--model", str(bad), "-q"]) == 4
    err = capsys.readouterr().err
    assert "step-000000001.pt" in err and "weights_only` set to `False" not in err and len(err.splitlines()) == 1


def test_malformed_model_card_is_a_weights_error(tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from mgsr.model.weights import bundled_path

    with safe_open(str(bundled_path("pirm-r3")), "pt") as fh:
        meta = dict(fh.metadata())
    meta["mgsr.card"] = json.dumps({"default_noise": "high"})
    target = tmp_path / "edited.safetensors"
    save_file(load_file(str(bundled_path("pirm-r3"))), str(target), metadata=meta)
    with pytest.raises(WeightsError, match="model card is invalid"):
        mgsr.load_generator(target)


def test_cmyk_pil_image_comes_back_cmyk():
    im = Image.new("CMYK", (6, 5), (10, 20, 30, 40))
    out = mgsr.upscale(im, scale=2, noise=0.0)
    assert out.mode == "CMYK" and out.size == (12, 10)
