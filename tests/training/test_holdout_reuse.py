"""A run that starts from another run's weights validates on the images that run held out, found by content."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from PIL import Image

from mgsr.assembly.build import build
from mgsr.errors import DataError
from mgsr.recipe import load_recipe
from mgsr.registry import default_registry
from mgsr.training.holdout import read_holdout
from mgsr.training.run import stage_trainer, train

from ..helpers import smooth_rgb, tiny_recipe


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _overrides(data, *extra):
    return [f"data.train=[{json.dumps(str(data))}]", "data.val=[]", "data.val_crop=none", "data.holdout=10", *extra]


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """Run A: 20 distinct pictures, 2 held out, trained 2 steps (its folder holds generator.safetensors)."""
    root = tmp_path_factory.mktemp("a")
    data = root / "photos"
    data.mkdir()
    for i in range(20):
        Image.fromarray(smooth_rgb(40, 48)).save(data / f"p{i:02d}.png")
    run = root / "run"
    train(tiny_recipe(root, steps=2), out=str(run), overrides=_overrides(data), progress=False)
    torch.use_deterministic_algorithms(False)
    held = json.loads((run / "holdout.json").read_text())["sources"]
    assert len(held) == 2 and (run / "generator.safetensors").is_file()
    return run, data, {_digest(data / s.rsplit("/", 1)[1]) for s in held}


def _copy_renamed(data, folder, skip=()):
    """A's pictures under other names (in another order), without the ones whose content is in ``skip``."""
    folder.mkdir(parents=True)
    for i, path in enumerate(sorted(data.iterdir(), reverse=True)):
        if _digest(path) not in skip:
            shutil.copy(path, folder / f"copy_{i:02d}.png")
    return folder


def _trainer(tmp_path, overrides, run):
    registry = default_registry()
    recipe = load_recipe(tiny_recipe(tmp_path), registry, overrides=overrides)
    return stage_trainer(build(recipe, registry, training=True), run, progress=False)


def _contents(images) -> set[str]:
    return {_digest(image) for image in images}


def test_a_run_from_another_runs_folder_holds_out_its_pictures_whatever_their_paths(tmp_path, run_a, capsys):
    run, data, held = run_a
    copies = _copy_renamed(data, tmp_path / "b" / "renamed")
    first = min(held)
    twin = next(p for p in copies.iterdir() if _digest(p) == first)
    shutil.copy(twin, copies / "zz_twin.png")  # the same picture under a second path: held out as one
    run_b = tmp_path / "run_b"
    overrides = _overrides(copies, f"model.weights={json.dumps(str(run))}", "training.steps=1")
    trainer = _trainer(tmp_path, overrides, run_b)
    assert _contents(trainer.data.held_out) == held and len(trainer.data.held_out) == 2
    assert not _contents(trainer.data.images) & held
    assert len(trainer.data) == 21 - 3  # both paths of the twin leave the training

    capsys.readouterr()
    train(tiny_recipe(tmp_path, steps=1), out=str(run_b), overrides=overrides, progress=False)
    err = capsys.readouterr().err
    assert f"validating on the 2 images {run} held out (by content; listed in {run_b / 'holdout.json'})" in err
    record = json.loads((run_b / "holdout.json").read_text())
    assert set(record["hashes"]) == held and record["from"] == str(run.resolve())
    assert all(source.startswith(str(copies.resolve())) for source in record["sources"])
    images = [json.loads(line) for line in (run_b / "metrics.jsonl").read_text().splitlines()]
    assert images[0]["data/images"] == 18

    run_c = tmp_path / "run_c"  # chosen on its own, the seed's picks here are other pictures: the test can fail
    own = _trainer(tmp_path, _overrides(copies, "training.steps=1"), run_c)
    assert _contents(own.data.held_out) != held


def test_a_source_picture_missing_from_the_data_is_said_and_stays_out_of_training(tmp_path, run_a, capsys):
    run, data, held = run_a
    gone = min(held)
    copies = _copy_renamed(data, tmp_path / "b", skip={gone})
    run_b = tmp_path / "run_b"
    overrides = _overrides(copies, f"model.weights={json.dumps(str(run))}", "training.steps=1")
    capsys.readouterr()
    train(tiny_recipe(tmp_path, steps=1), out=str(run_b), overrides=overrides, progress=False)
    err = capsys.readouterr().err
    assert f"validating on the 1 images {run} held out (by content" in err
    assert f"1 image(s) {run} held out are not in this run's data" in err
    record = read_holdout(run_b / "holdout.json")
    assert [digest for _, digest in record.entries] == [max(held)]
    assert [digest for _, digest in record.missing] == [gone]

    back = next(p for p in data.iterdir() if _digest(p) == gone)
    shutil.copy(back, copies / "returned.png")  # added later: the weights never saw it, nor will this run
    resumed = _trainer(tmp_path, [*overrides, "training.steps=2"], run_b)
    assert _contents(resumed.data.held_out) == {max(held)}
    assert not _contents(resumed.data.images) & held and len(resumed.data) == 18


def test_an_old_holdout_file_without_hashes_still_reads_and_matches_by_content(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(20):
        Image.fromarray(smooth_rgb(40, 48)).save(data / f"p{i:02d}.png")
    shutil.copy(data / "p03.png", data / "p99.png")  # the held-out picture under a second path
    run = tmp_path / "run"
    run.mkdir()
    (run / "holdout.json").write_text(json.dumps({"sources": [str((data / "p03.png").resolve())]}))
    assert read_holdout(run / "holdout.json").entries == ((str((data / "p03.png").resolve()), None),)
    trainer = _trainer(tmp_path, _overrides(data), run)
    assert [image.name for image in trainer.data.held_out] == ["p03.png"]
    assert len(trainer.data) == 19 and _digest(data / "p03.png") not in _contents(trainer.data.images)


def test_a_malformed_hash_list_names_the_file(tmp_path):
    record = tmp_path / "holdout.json"
    record.write_text(json.dumps({"sources": ["/a.png", "/b.png"], "hashes": ["0123"]}))
    with pytest.raises(DataError, match=f"{record}: 'sources': each path needs one digest"):
        read_holdout(record)
