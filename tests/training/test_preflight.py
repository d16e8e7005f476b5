"""Fail fast: what a run needs is checked before its first step (and `--dry-run` says the same), and a
resumed objective reads its weights from the checkpoint, not from RUN/pretrain."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mgsr.assembly.loading import load_generator
from mgsr.cli import main
from mgsr.errors import TrainingError
from mgsr.training.checkpoint import checkpoint_name, list_checkpoints
from mgsr.training.run import train
from mgsr.training.validation import Validator

from ..conftest import RECIPES
from ..helpers import make_images, tiny_paper_recipe, tiny_recipe
from ..http_helpers import serve_fake_vgg19
from .test_stages import records, staged_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def test_an_empty_data_folder_is_refused_by_name_before_any_work(tmp_path, capsys):
    readme = " ".join((RECIPES.parent / "README.md").read_text().split())
    assert "an empty folder is an error" in readme  # the promise this test holds the trainer to
    raw = make_images(tmp_path / "raw", [(40, 40)] * 3)
    (tmp_path / "emptydir").mkdir()
    run = tmp_path / "run"
    args = ["train", str(tiny_recipe(tmp_path)), "--data", str(raw), "--data", str(tmp_path / "emptydir")]
    assert main([*args, "--out", str(run)]) != 0
    err = capsys.readouterr().err
    assert f"data.train folder {tmp_path / 'emptydir'} holds no images" in err
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    assert main([*args, "--out", str(run), "--dry-run"]) == 0  # the plan says the same
    assert f"problem     data.train folder {tmp_path / 'emptydir'} holds no images" in capsys.readouterr().out


def test_a_missing_validation_folder_and_too_little_disk_are_named(tmp_path):
    with pytest.raises(TrainingError) as caught:
        train(
            tiny_recipe(tmp_path, keep_checkpoints=10**12),  # checkpoints no disk holds
            out=str(tmp_path / "run"),
            progress=False,
            overrides=[f"data.val=[{json.dumps(str(tmp_path / 'nowhere'))}]"],
        )
    message = str(caught.value)
    assert "data.val" in message and "nowhere" in message
    assert "not enough disk" in message and "training.keep_checkpoints" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_unwritable_run_folder_is_refused(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")  # a run folder inside a file: no one can create it
    with pytest.raises(TrainingError, match="cannot be written"):
        train(tiny_recipe(tmp_path), out=str(tmp_path / "a_file" / "run"), progress=False)


def test_the_disk_line_is_in_the_plan(tmp_path, capsys):
    assert main(["train", str(tiny_recipe(tmp_path)), "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "disk        " in out and "GB free at" in out and "problem" not in out


def test_the_objective_resumes_after_the_pretraining_folder_was_deleted(tmp_path):
    recipe = staged_recipe(tmp_path, steps=4, validate_every=10, sample_every=10)
    run = tmp_path / "run"
    train(recipe, out=str(run), progress=False, overrides=["training.steps=2"])
    shutil.rmtree(run / "pretrain")  # the checkpoint holds the objective's weights
    train(recipe, out=str(run), progress=False, resume="auto")
    assert [r["step"] for r in records(run) if r.get("stage") == "train" and "loss/total" in r][-1] == 4


def test_the_pretraining_card_has_no_curve_and_a_failed_curve_keeps_the_export(tmp_path, monkeypatch):
    recipe = staged_recipe(tmp_path, steps=1, validate_every=10, sample_every=10)
    run = tmp_path / "run"
    train(recipe, out=str(run), progress=False, overrides=["data.val_crop=128"])
    assert load_generator(run / "pretrain").card.curve is None  # its W = 1 was never trained: nothing to measure
    assert load_generator(run).card.curve is not None

    def out_of_memory(*_args, **_kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Validator, "curve", out_of_memory)
    with pytest.warns(UserWarning, match="no perception-distortion curve: CUDA out of memory"):
        train(recipe, out=str(run), progress=False, overrides=["data.val_crop=128", "training.steps=2"], resume="auto")
    assert load_generator(run).card.curve is None and "step 2" in load_generator(run).card.source
    assert list_checkpoints(run / "checkpoints")[-1].name == checkpoint_name(2)


def _plan_files_line(tmp_path, capsys) -> str:
    args = ["train", str(RECIPES / "pirm_r3.toml"), "--data", "samples:train", "--out", str(tmp_path / "run")]
    assert main([*args, "--dry-run", *tiny_paper_recipe()]) == 0
    out = capsys.readouterr().out
    return "\n".join(line for line in out.splitlines() if line.startswith(("files", "problem")))


def test_the_plan_says_what_the_run_will_do_about_vgg19(server, online, monkeypatch, tmp_path, capsys):
    name, _ = serve_fake_vgg19(server, tmp_path)
    monkeypatch.setenv("MGSR_VGG19_URL", server.url(name))
    assert f"the run downloads it from {server.url(name)} first" in _plan_files_line(tmp_path, capsys)
    assert not (online / name).exists()  # the plan downloads nothing
    monkeypatch.setenv("MGSR_VGG19_URL", server.url("vgg19-00000000.pth"))  # the mirror lacks it
    lines = _plan_files_line(tmp_path, capsys)
    assert "is unreachable (HTTP 404" in lines and "problem     " in lines
    monkeypatch.setenv("MGSR_OFFLINE", "1")
    lines = _plan_files_line(tmp_path, capsys)
    assert "MGSR_OFFLINE=1: the objective cannot start" in lines and "problem     " in lines
