"""Checkpoints: atomic, pruned, damaged ones skipped, foreign files refused, weights_only."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.cli import main
from mgsr.errors import RecipeError, WeightsError
from mgsr.recipe.tables import apply_overrides
from mgsr.training.checkpoint import list_checkpoints, load_checkpoint, newest_loadable, save_checkpoint
from mgsr.training.run import train

from ..helpers import tiny_recipe


def test_save_keeps_the_newest_and_lists_only_complete(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"x": torch.tensor([step])}, keep=2)
    (tmp_path / ".step-junk.tmp").write_bytes(b"partial")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000000003.pt", "step-000000004.pt"]
    assert load_checkpoint(list_checkpoints(tmp_path)[-1])["x"].item() == 4


def test_damaged_newest_is_skipped(tmp_path):
    save_checkpoint(tmp_path, 1, {"x": torch.tensor([1])})
    save_checkpoint(tmp_path, 2, {"x": torch.tensor([2])})
    newest = list_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:50])
    with pytest.warns(UserWarning, match="damaged"):
        path, data = newest_loadable(tmp_path)
    assert path.name == "step-000000001.pt" and data["step"] == 1


def test_foreign_and_malicious_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not an mgsr training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(WeightsError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_overrides():
    data = {"training": {"steps": 10}, "losses": [{"type": "l1", "weight": 1.0}]}
    out = apply_overrides(
        data, ["training.steps=20", "losses.0.weight=0.5", "data.train=['a', 'b']", "model.weights=runs/pre"]
    )
    assert out["training"]["steps"] == 20 and out["losses"][0]["weight"] == 0.5
    assert out["data"]["train"] == ["a", "b"] and out["model"]["weights"] == "runs/pre"
    assert data["training"]["steps"] == 10  # the loaded table is never mutated
    assert "steps" not in apply_overrides(data, ["training.steps=none"])["training"]
    with pytest.raises(RecipeError, match="key.path=value"):
        apply_overrides(data, ["training.steps"])
    with pytest.raises(RecipeError, match="not an index"):
        apply_overrides(data, ["losses.3.weight=1"])
    with pytest.raises(RecipeError, match="is a value, not a table"):
        apply_overrides(data, ["training.steps.x=1"])


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


def test_corrupt_checkpoint_message_is_short_and_safe(tmp_path, capsys):
    bad = tmp_path / "step-000000001.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--model", str(bad), "-q"]) == 4
    err = capsys.readouterr().err
    assert "step-000000001.pt" in err and "weights_only` set to `False" not in err and len(err.splitlines()) == 1
