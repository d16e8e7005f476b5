"""Prepared training sets: the store gives the raw stream's patches, updates incrementally, survives interruption."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from mgsr.cli import main
from mgsr.errors import DataError
from mgsr.training import store as store_module
from mgsr.training.data import PatchDataset, patch_loader, scan_images
from mgsr.training.store import MANIFEST, StoredImage, StoreError, open_store, prepare
from mgsr.training.training_images import load_rgb_uint8

from ..helpers import make_images


def patches(folder, patch_size, megapixels, count=12, workers=0, start=3):
    dataset = PatchDataset(scan_images([folder], patch_size, megapixels).usable, patch_size, megapixels, augment=True)
    loader = patch_loader(dataset, 4, seed=5, start=start, workers=workers)
    return torch.cat([next(loader) for _ in range(count // 4)])


@pytest.mark.parametrize("megapixels", [None, 0.0012])
def test_store_and_raw_folder_give_identical_patches(tmp_path, megapixels):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40), (44, 60)])
    report = prepare([raw], tmp_path / "store", target_megapixels=megapixels, workers=0, progress=False)
    assert len(report.store.images) == 4 and report.decoded == 4
    assert all(isinstance(i, StoredImage) for i in scan_images([tmp_path / "store"], 16, megapixels).usable)
    expected = patches(raw, 16, megapixels)
    torch.testing.assert_close(patches(tmp_path / "store", 16, megapixels), expected, rtol=0, atol=0)
    if megapixels is not None:  # the resize happened at prepare time, with the raw stream's own code
        first = report.store.images[0]
        assert (first.height, first.width) == load_rgb_uint8(raw / "img0.png", megapixels).shape[:2]
        assert first.height * first.width < 40 * 48


def test_store_stream_is_resumable_and_worker_independent(tmp_path):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])
    prepare([raw], tmp_path / "store", workers=0, progress=False)
    whole = patches(tmp_path / "store", 16, None, count=12, start=0)
    torch.testing.assert_close(patches(tmp_path / "store", 16, None, count=8, start=4), whole[4:], rtol=0, atol=0)
    torch.testing.assert_close(
        patches(tmp_path / "store", 16, None, count=12, start=0, workers=2), whole, rtol=0, atol=0
    )


def test_unreadable_images_are_listed_and_rerun_decodes_only_new_or_changed(tmp_path):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36)])
    (raw / "broken.png").write_text("not an image")
    out = tmp_path / "store"
    first = prepare([raw], out, workers=2, progress=False)
    assert first.decoded == 2 and [os.path.basename(s) for s, _ in first.skipped] == ["broken.png"]
    assert "unreadable" in first.skipped[0][1]
    again = prepare([raw], out, workers=0, progress=False)
    assert again.decoded == 0 and again.reused == 2 and len(again.skipped) == 1
    # a new file and a changed file are decoded; a touched but unchanged one is not
    make_images(tmp_path / "more", [(30, 30), (30, 30), (30, 30)])
    os.replace(tmp_path / "more" / "img2.png", raw / "img9.png")
    before = {i.source: i.array_path for i in again.store.images}
    (raw / "img1.png").write_bytes((tmp_path / "more" / "img0.png").read_bytes())
    os.utime(raw / "img0.png", ns=(1, 1))
    third = prepare([raw], out, workers=0, progress=False)
    assert third.decoded == 2 and third.reused == 1
    after = {i.source: i for i in third.store.images}
    assert after[str(raw / "img1.png")].height == 30 and after[str(raw / "img9.png")].width == 30
    assert sorted(p.name for p in (out / "arrays").iterdir()) == sorted(i.array_path.name for i in third.store.images)
    assert before[str(raw / "img0.png")] == after[str(raw / "img0.png")].array_path
    # a removed source leaves the store
    (raw / "img9.png").unlink()
    assert len(prepare([raw], out, workers=0, progress=False).store.images) == 2


def test_an_interrupted_run_leaves_a_usable_store(tmp_path, monkeypatch):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])
    (raw / "img1.png").write_text("broken")  # sorted between img0 and img2: the interruption comes there

    def interrupt(source, reason):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 0.0)
    with pytest.raises(KeyboardInterrupt):
        prepare([raw], tmp_path / "store", workers=0, progress=False, on_skip=interrupt)
    partial = open_store(tmp_path / "store")
    assert [os.path.basename(i.source) for i in partial.images] == ["img0.png"]
    assert not [p for p in (tmp_path / "store" / "arrays").iterdir() if p.suffix != ".npy"]
    resumed = prepare([raw], tmp_path / "store", workers=0, progress=False)
    assert resumed.decoded == 1 and resumed.reused == 1 and len(resumed.skipped) == 1


def test_store_refusals_name_the_folder(tmp_path):
    raw = make_images(tmp_path / "raw", [(40, 48)])
    prepare([raw], tmp_path / "store", target_megapixels=0.001, workers=0, progress=False)
    with pytest.raises(StoreError, match="prepared with target_megapixels = 0.001, not None"):
        prepare([raw], tmp_path / "store", workers=0, progress=False)
    with pytest.raises(DataError, match="prepared with target_megapixels = 0.001, the recipe asks for 0.29"):
        scan_images([tmp_path / "store"], 16, 0.29)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty and is not a store"):
        prepare([raw], tmp_path / "junk", workers=0, progress=False)
    next((tmp_path / "store" / "arrays").iterdir()).unlink()
    with pytest.raises(StoreError, match="missing"):
        open_store(tmp_path / "store")
    (tmp_path / "store" / MANIFEST).write_text("{")
    with pytest.raises(StoreError, match="cannot read the store manifest"):
        open_store(tmp_path / "store")


def test_cli_prepare_then_the_store_trains_like_folders(tmp_path, capsys):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36)])
    (raw / "broken.png").write_text("x")
    code = main(["data", "prepare", str(raw), "-o", str(tmp_path / "store"), "--workers", "0", "-q"])
    captured = capsys.readouterr()
    assert code == 0 and "2 images" in captured.out and "broken.png" in captured.err
    manifest = json.loads((tmp_path / "store" / MANIFEST).read_text())
    entry = manifest["images"][0]
    assert {"source", "size", "mtime_ns", "sha256", "height", "width", "array"} <= set(entry)
    assert manifest["target_megapixels"] is None
    array = np.load(tmp_path / "store" / "arrays" / entry["array"], mmap_mode="r")
    assert array.dtype == np.uint8 and array.shape == (entry["height"], entry["width"], 3)


def test_training_from_a_store_equals_training_from_its_folder(tmp_path):
    from mgsr.samples import sample_folder
    from mgsr.training.run import train

    from ..helpers import assert_same_state, final_state, tiny_recipe

    try:
        recipe = tiny_recipe(tmp_path, steps=2, validate_every=10, sample_every=10, checkpoint_every=2)
        prepare([sample_folder("train")], tmp_path / "store", workers=0, progress=False)
        train(recipe, data=[str(sample_folder("train"))], out=str(tmp_path / "raw"), progress=False)
        train(recipe, data=[str(tmp_path / "store")], out=str(tmp_path / "prepared"), progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    assert_same_state(final_state(tmp_path / "raw"), final_state(tmp_path / "prepared"))


def test_prepare_into_a_file_or_from_an_empty_folder_is_one_line(tmp_path, capsys):
    raw = make_images(tmp_path / "raw", [(40, 48)])
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    assert main(["data", "prepare", str(raw), "-o", str(tmp_path / "afile"), "--workers", "0"]) == 8
    assert main(["data", "prepare", str(tmp_path / "empty"), "-o", str(tmp_path / "s"), "--workers", "0"]) == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"mgsr: error: {tmp_path / 'afile'} is a file, not a folder; give a new or empty folder for the store",
        f"mgsr: error: no images (.bmp, .gif, .jpeg, .jpg, .pgm, .png, .ppm, .tif, .tiff, .webp) in "
        f"{tmp_path / 'empty'}; nothing to prepare",
    ]
    assert not (tmp_path / "s").exists() and (tmp_path / "afile").read_text() == "x"
    assert not list(tmp_path.glob("*.lock"))  # refused before the lock: nothing left beside the user's folders


def test_two_prepares_into_one_folder_take_turns(tmp_path, capsys):
    """``mgsr data prepare -o DIR`` holds DIR's lock as a run's cached store does: a second command into the same
    folder (here: this process holding it for a second) waits, then finds the store and completes it."""
    import threading
    import time

    from mgsr.training.prepared import store_lock

    raw = make_images(tmp_path / "raw", [(40, 48), (44, 40)])
    out = tmp_path / "store"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store_lock(out):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    assert main(["data", "prepare", str(raw), "-o", str(out), "--workers", "0", "-q"]) == 0
    waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.9  # it waited for the holder
    assert len(open_store(out).images) == 2


def _kill_when(condition, args: list[str], timeout: float = 60.0) -> None:
    """Run ``mgsr`` in a process and kill -9 it as soon as ``condition()`` holds (or when it ends)."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "mgsr", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("moment", ["folder made", "first array", "third array"])
def test_a_prepare_killed_at_any_moment_is_completed_by_the_next_run(tmp_path, moment):
    """kill -9 at several moments (after the first arrays and before any manifest, the folder holds arrays that
    nothing lists yet): the next run always completes the store, and it equals a store prepared in one go."""
    raw = make_images(tmp_path / "raw", [(120, 100)] * 8)
    store = tmp_path / "store"
    arrays = store / "arrays"

    def npy() -> int:
        return len(list(arrays.glob("*.npy"))) if arrays.is_dir() else 0

    wanted = {
        "folder made": lambda: store.exists(),
        "first array": lambda: npy() >= 1,
        "third array": lambda: npy() >= 3,
    }[moment]
    args = ["data", "prepare", str(raw), "-o", str(store), "--workers", "0", "--target-megapixels", "0.005"]
    _kill_when(wanted, args)
    assert main(args) == 0
    again = prepare([raw], tmp_path / "fresh", target_megapixels=0.005, workers=0, progress=False).store
    completed = open_store(store)
    assert [(i.source, i.height, i.width) for i in completed.images] == [
        (i.source, i.height, i.width) for i in again.images
    ]
    for a, b in zip(completed.images, again.images, strict=True):
        assert np.array_equal(a.array(), b.array())
