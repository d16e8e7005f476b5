"""mgsr train: exact resume, interruption, NaN stop, refusals, the run folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mgsr
from mgsr.errors import RecipeError, TrainingError, WeightsError
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint
from mgsr.training.run import train

from ..conftest import REPO
from ..helpers import assert_same_state, final_state, make_images, tiny_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.compat
def test_resume_is_exact(tmp_path):
    recipe = tiny_recipe(tmp_path)
    train(recipe, out=str(tmp_path / "straight"), progress=False)
    train(recipe, out=str(tmp_path / "resumed"), overrides=["training.steps=2"], progress=False)
    train(recipe, out=str(tmp_path / "resumed"), resume="auto", progress=False)
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "resumed"))


@pytest.mark.compat
def test_run_folder_contents_and_upscale_from_it(tmp_path):
    run = tmp_path / "run"
    exported = train(tiny_recipe(tmp_path), out=str(run), overrides=["data.val_crop=128"], progress=False)
    assert exported == run / "generator.safetensors"
    assert mgsr.load_recipe(run / "recipe.toml").training.steps == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss/total" in r] == [1, 2, 3, 4]
    assert {k: v for k, v in records[0].items() if not k.startswith("watch/")} == {
        "step": 0,
        "data/images": 5,
        "data/skipped": 0,
        "stage": "train",
    }
    validation = [r for r in records if "val/psnr_w0" in r]
    assert [r["step"] for r in validation] == [2, 4]
    expected = {f"val/{m}_{w}" for m in ("rmse", "psnr", "ssim", "niqe", "l1") for w in ("w0", "w1", "bicubic")}
    assert all(expected <= set(r) for r in validation)
    assert sorted(p.name for p in (run / "samples").iterdir())[-1] == "step-000000004.png"
    model = mgsr.load_generator(run)
    assert model.features == 8 and model.card.default_noise == 1.0
    from_checkpoint = mgsr.load_generator(list_checkpoints(run / "checkpoints")[-1])  # --model step-*.pt works too
    for key, tensor in model.state_dict().items():
        assert torch.equal(from_checkpoint.state_dict()[key], tensor)
    from mgsr.cli import main

    src = REPO / "mgsr" / "samples" / "grace_hopper.png"
    assert main(["upscale", str(src), "-o", str(tmp_path / "sr.png"), "--model", str(run), "-q"]) == 0


def test_existing_run_needs_resume_and_foreign_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    train(tiny_recipe(tmp_path, steps=2), out=str(run), progress=False)
    with pytest.raises(TrainingError, match="--resume auto"):
        train(tiny_recipe(tmp_path, steps=2), out=str(run), progress=False)
    with pytest.raises(WeightsError, match=r"does not fit this architecture \(.*shape mismatches"):
        train(
            tiny_recipe(tmp_path, steps=4), out=str(run), resume="auto", overrides=["model.features=12"], progress=False
        )


def test_nan_stops_naming_step_and_term(tmp_path):
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path, steps=6, checkpoint_every=1)
    # a learning rate this large overflows the weights within a few steps: a real, not an injected, NaN
    with pytest.raises(TrainingError, match=r"step \d+: loss term '\w+' at L=\d is (nan|inf)") as info:
        train(recipe, out=str(run), overrides=["training.lr=1e30", "training.discriminator_lr=1e30"], progress=False)
    saved = list_checkpoints(run / "checkpoints")
    failed_step = int(str(info.value).split("step ")[1].split(":")[0])
    assert len(saved) == failed_step - 1  # every good step was kept (checkpoint_every = 1) ...
    assert all(load_checkpoint(p)["step"] < failed_step for p in saved)  # ... and the failed one never saved


def test_sigterm_saves_and_resume_completes_identically(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=400, checkpoint_every=1000, validate_every=1000, sample_every=1000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mgsr", "train", str(recipe), "--out", str(tmp_path / "run"), "-q"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume auto" in err
    stopped = final_state(tmp_path / "run")["step"]
    assert 3 <= stopped < 400
    # finish both the interrupted run and a straight one at the same step count, then compare
    train(recipe, out=str(tmp_path / "run"), resume="auto", overrides=[f"training.steps={stopped + 2}"], progress=False)
    train(recipe, out=str(tmp_path / "straight"), overrides=[f"training.steps={stopped + 2}"], progress=False)
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "run"))


def test_bad_training_setups_are_clear(tmp_path):
    with pytest.raises(TrainingError, match="no training data"):
        train(tiny_recipe(tmp_path), out=str(tmp_path / "r1"), overrides=["data.train=[]"], progress=False)
    with pytest.raises(TrainingError, match="divisible by 4"):
        train(tiny_recipe(tmp_path), out=str(tmp_path / "r2"), overrides=["data.patch_size=18"], progress=False)
    with pytest.raises(TrainingError, match="global batch"):
        from mgsr.runtime.distributed import Context
        from mgsr.training.run import stage_trainer

        built = mgsr.build(tiny_recipe(tmp_path), training=True)
        stage_trainer(built, tmp_path / "r3", ctx=Context(rank=0, world_size=3))


def test_images_skipped_by_the_scan_are_counted_in_the_log(tmp_path):
    data = make_images(tmp_path / "data", [(40, 40), (8, 8)])  # the second is smaller than a patch
    (data / "text.png").write_text("not an image")
    with pytest.warns(UserWarning):
        train(tiny_recipe(tmp_path, steps=1), data=[str(data)], out=str(tmp_path / "run"), progress=False)
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert {k: v for k, v in first.items() if not k.startswith("watch/")} == {
        "step": 0,
        "data/images": 1,
        "data/skipped": 2,
        "stage": "train",
    }


def test_resume_with_a_changed_recipe_warns_and_follows_it(tmp_path):
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path, steps=2)
    train(recipe, out=str(run), progress=False)
    with pytest.warns(UserWarning, match=r"recipe differs .*training\.lr"):
        train(
            recipe,
            out=str(run),
            resume="auto",
            overrides=["training.steps=3", "training.lr=0.5", "training.batch_size=2"],
            progress=False,
        )
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "lr" in line][-1]
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
