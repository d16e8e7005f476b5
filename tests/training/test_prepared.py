"""Raw folders become cached stores when the recipe resizes: prepared once, reused, updated, locked, shared."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from mgsr.errors import DataError
from mgsr.training.data import scan_images
from mgsr.training.prepared import cached_store, source_status, store_lock, training_sources
from mgsr.training.store import MANIFEST, StoreError, open_store, prepare
from mgsr.training.training_images import load_rgb_uint8

from ..helpers import make_images
from .test_store import patches

MP = 0.0012  # 1200 pixels: the 40x48 test images shrink to about 32x38


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def prepared(folders, megapixels=MP, progress=False):
    return training_sources([str(f) for f in folders], megapixels, progress=progress, workers=0)


def test_first_call_prepares_the_cache_and_the_second_decodes_nothing(tmp_path, cache, capsys):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])
    assert source_status(raw, MP).state == "missing"
    [store] = prepared([raw], progress=True)
    assert store == str(cached_store(raw, MP)) and str(cache / "stores") in store
    assert "preparing" in capsys.readouterr().err
    images = open_store(store).images
    assert [os.path.basename(i.source) for i in images] == ["img0.png", "img1.png", "img2.png"]
    for image in images:
        np.testing.assert_array_equal(image.array(), load_rgb_uint8(image.source, MP))
    status = source_status(raw, MP)
    assert (status.state, status.images) == ("ready", 3) and "up to date" in str(status)
    stamps = {
        p.name: p.stat().st_mtime_ns for p in [*(cache / "stores").rglob("*.npy"), cached_store(raw, MP) / MANIFEST]
    }
    assert prepared([raw], progress=True) == [store]
    assert f"using prepared store {store} (3 images, up to date)" in capsys.readouterr().err
    assert {
        p.name: p.stat().st_mtime_ns for p in [*(cache / "stores").rglob("*.npy"), cached_store(raw, MP) / MANIFEST]
    } == stamps
    prepared([raw])
    assert capsys.readouterr().err == ""  # progress=False: silent


def test_a_changed_folder_updates_its_store_incrementally(tmp_path, cache):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36)])
    [store] = prepared([raw])
    arrays = {i.source: (i.array_path, i.array_path.stat().st_mtime_ns) for i in open_store(store).images}
    make_images(tmp_path / "more", [(44, 44), (30, 50)])
    os.replace(tmp_path / "more" / "img0.png", raw / "img5.png")
    (raw / "img1.png").write_bytes((tmp_path / "more" / "img1.png").read_bytes())
    status = source_status(raw, MP)
    assert (status.state, status.to_decode) == ("stale", 2)
    assert prepared([raw]) == [store]
    after = {i.source: i for i in open_store(store).images}
    first = str(raw.resolve() / "img0.png")
    assert (after[first].array_path, after[first].array_path.stat().st_mtime_ns) == arrays[first]  # untouched
    for name in ("img1.png", "img5.png"):
        np.testing.assert_array_equal(after[str(raw.resolve() / name)].array(), load_rgb_uint8(raw / name, MP))
    assert source_status(raw, MP).state == "ready"


def test_cached_store_gives_the_raw_folders_patches(tmp_path, cache):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40), (44, 60)])
    [store] = prepared([raw])
    torch.testing.assert_close(patches(store, 16, MP), patches(raw, 16, MP), rtol=0, atol=0)


def test_several_folders_and_a_mix_of_store_and_raw(tmp_path, cache):
    a = make_images(tmp_path / "a", [(40, 48), (36, 36)])
    b = make_images(tmp_path / "b", [(50, 40)])
    own = tmp_path / "own"
    prepare([b], own, target_megapixels=MP, workers=0, progress=False)
    sources = prepared([a, own, tmp_path / "b"])
    assert sources[1] == str(own)  # a store given directly is used as it is
    assert sources[0] == str(cached_store(a, MP)) and sources[2] == str(cached_store(b, MP))
    usable = scan_images(sources, 16, MP).usable
    assert [os.path.basename(i.source) for i in usable] == ["img0.png", "img1.png", "img0.png", "img0.png"]
    # the mix streams the same patches as the raw folders it stands for
    raw = scan_images([a, b, b], 16, MP).usable
    assert [str(p.resolve()) for p in raw] == [i.source for i in usable]
    assert source_status(own, MP).state == "store" and source_status(a, None).state == "raw"


def test_without_a_resize_folders_stay_raw(tmp_path, cache):
    raw = make_images(tmp_path / "raw", [(40, 48)])
    assert prepared([raw], megapixels=None) == [str(raw)]
    assert not cache.exists()


def test_a_corrupt_cached_manifest_is_prepared_again_with_a_warning(tmp_path, cache):
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36)])
    [store] = prepared([raw])
    (cached_store(raw, MP) / MANIFEST).write_text('{"format": "mgsr-prepared')
    assert source_status(raw, MP).state == "corrupt"
    with pytest.warns(UserWarning, match=f"cached store {store} .* unreadable manifest; preparing it again"):
        assert prepared([raw]) == [store]
    assert len(open_store(store).images) == 2


def test_vanished_folder_and_unwritable_cache_are_named(tmp_path, cache, monkeypatch):
    with pytest.raises(DataError, match=f"training folder not found: {tmp_path / 'gone'}"):
        prepared([tmp_path / "gone"])
    with pytest.raises(DataError, match="training folder not found"):
        source_status(tmp_path / "gone", MP)
    raw = make_images(tmp_path / "raw", [(40, 48)])
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "file"))
    with pytest.raises(StoreError, match=f"cannot write the store's lock file {tmp_path / 'file'}/.*MGSR_CACHE"):
        prepared([raw])


def test_a_second_process_waits_for_the_lock(tmp_path, cache):
    raw = make_images(tmp_path / "raw", [(40, 48)])
    store = cached_store(raw, MP)
    result = []
    with store_lock(store):  # flock locks are per open file: a thread stands in for a second process
        waiter = threading.Thread(target=lambda: result.append(prepared([raw])))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not store.exists()
    waiter.join(30)
    assert result == [[str(store)]] and source_status(raw, MP).state == "ready"


def test_train_with_two_raw_folders_prepares_once_then_reuses(tmp_path, cache, capsys):
    from mgsr.cli import main

    from ..helpers import tiny_recipe

    recipe = tiny_recipe(tmp_path, steps=1, validate_every=10, sample_every=10, checkpoint_every=10)
    a = make_images(tmp_path / "a", [(40, 48), (36, 36)])
    b = make_images(tmp_path / "b", [(50, 40)])
    args = [
        "train",
        str(recipe),
        "--data",
        str(a),
        "--data",
        str(b),
        "--set",
        f"data.target_megapixels={MP}",
        "--set",
        "data.val=[]",
    ]
    try:
        assert main([*args, "--out", str(tmp_path / "run1")]) == 0
        first = capsys.readouterr().err
        assert main([*args, "--out", str(tmp_path / "run2")]) == 0
        second = capsys.readouterr().err
    finally:
        torch.use_deterministic_algorithms(False)
    for folder, count in ((a, 2), (b, 1)):
        assert f"preparing {folder} into {cached_store(folder, MP)}" in first
        assert f"using prepared store {cached_store(folder, MP)} ({count} images, up to date)" in second
    assert "preparing" not in second
