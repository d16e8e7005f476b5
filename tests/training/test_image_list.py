"""A checkpoint records its training images; a resume names what was added, removed or changed since."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from mgsr.training.checkpoint import list_checkpoints, load_checkpoint
from mgsr.training.data import scan_images
from mgsr.training.image_list import describe_change, image_list
from mgsr.training.run import train
from mgsr.training.store import prepare

from ..helpers import make_images, tiny_recipe


def test_a_folder_and_its_store_give_the_same_record_and_changes_are_named(tmp_path):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])
    prepare([raw], tmp_path / "store", workers=0, progress=False)
    files = image_list(scan_images([raw], 16).usable)
    assert describe_change(files, image_list(scan_images([tmp_path / "store"], 16).usable)) is None
    record = json.loads(files)
    assert record["root"] == str(raw.resolve())
    assert [name for name, _ in record["images"]] == [f"img{i}.png" for i in range(3)]
    other = make_images(tmp_path / "other", [(44, 52), (38, 46)])
    shutil.copy(other / "img0.png", raw / "img1.png")
    shutil.copy(other / "img1.png", raw / "img7.png")
    (raw / "img2.png").unlink()
    change = describe_change(files, image_list(scan_images([raw], 16).usable))
    assert change == (
        f"1 added ({raw.resolve() / 'img7.png'}), 1 removed ({raw.resolve() / 'img2.png'}), "
        f"1 changed ({raw.resolve() / 'img1.png'})"
    )
    moved = tmp_path / "moved"
    shutil.copytree(raw, moved)
    assert describe_change(image_list(scan_images([raw], 16).usable), image_list(scan_images([moved], 16).usable)) == (
        f"the same 3 image contents, 3 under other names (moved or renamed: {moved.resolve() / 'img0.png'}, "
        f"{moved.resolve() / 'img1.png'}, {moved.resolve() / 'img7.png'})"
    )
    current = scan_images([raw], 16).usable
    assert describe_change(image_list(current), image_list(current[::-1])) == "the same 3 images in another order"


def test_resume_after_the_images_changed_warns_naming_the_change(tmp_path):
    data = make_images(tmp_path / "data", [(40, 40), (40, 40), (40, 48)])
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path, steps=2, validate_every=10, sample_every=10)
    try:
        train(recipe, data=[str(data)], out=str(run), progress=False)
        recorded = json.loads(load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["images"])
        assert [name for name, _ in recorded["images"]] == ["img0.png", "img1.png", "img2.png"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(recipe, data=[str(data)], out=str(run), resume="auto", overrides=["training.steps=3"], progress=False)
        assert not [w for w in caught if "training images differ" in str(w.message)]
        make_images(tmp_path / "more", [(48, 40), (44, 44)])
        shutil.copy(tmp_path / "more" / "img0.png", data / "img1.png")
        shutil.copy(tmp_path / "more" / "img1.png", data / "img5.png")
        with pytest.warns(UserWarning, match=r"training images differ from checkpoint step-000000003\.pt's: ") as info:
            train(recipe, data=[str(data)], out=str(run), resume="auto", overrides=["training.steps=4"], progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    [message] = [str(w.message) for w in info if "training images differ" in str(w.message)]
    assert f"1 added ({data.resolve() / 'img5.png'}), 1 changed ({data.resolve() / 'img1.png'})" in message
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["step"] == 4
