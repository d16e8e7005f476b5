"""Training data: folder scanning, the resumable sample stream, the scale pyramid."""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from mgsr.errors import DataError
from mgsr.ops.imresize import s_down
from mgsr.samples import sample_folder
from mgsr.training.data import PatchDataset, ResumableSampler, patch_loader, scale_pyramid, scan_images
from mgsr.training.run import train
from mgsr.training.training_images import target_size

from ..helpers import make_images, tiny_recipe


def test_scan_skips_and_counts_bad_images(tmp_path):
    folder = make_images(tmp_path / "d", [(40, 40), (20, 50)])
    (folder / "broken.png").write_text("not an image")
    with pytest.warns(UserWarning) as caught:
        report = scan_images([folder], min_side=32)
    assert [p.name for p in report.usable] == ["img0.png"]
    reasons = dict((p.name, r) for p, r in report.skipped)
    assert "unreadable" in reasons["broken.png"] and "smaller than the 32-pixel patch" in reasons["img1.png"]
    assert len(caught) == 2


def test_scan_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        scan_images([tmp_path / "nope"], 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        scan_images([tmp_path / "empty"], 8)
    make_images(tmp_path / "small", [(8, 8)])
    with pytest.raises(DataError, match="none of the 1 images"), pytest.warns(UserWarning):
        scan_images([tmp_path / "small"], 16)


def test_target_megapixels_keeps_aspect():
    h, w = target_size(1000, 2000, 0.5)
    assert abs(h * w - 500_000) < 2000 and abs(w / h - 2) < 0.01
    assert target_size(10, 20, None) == (10, 20)


def test_stream_is_deterministic_resumable_and_split_across_ranks():
    whole = ResumableSampler(7, seed=3)
    keys = list(islice(whole, 30))
    assert keys == list(islice(ResumableSampler(7, seed=3), 30))
    assert keys != list(islice(ResumableSampler(7, seed=4), 30))
    # every epoch visits every image once
    assert sorted(k[0] for k in keys[:7]) == list(range(7)) and sorted(k[0] for k in keys[7:14]) == list(range(7))
    # resuming at sample 12 continues the same stream
    assert list(islice(ResumableSampler(7, seed=3, start=12), 10)) == keys[12:22]
    # two ranks interleave the global stream
    r0 = list(islice(ResumableSampler(7, seed=3, rank=0, world_size=2), 5))
    r1 = list(islice(ResumableSampler(7, seed=3, rank=1, world_size=2), 5))
    assert r0 == keys[0:10:2] and r1 == keys[1:10:2]


def test_patches_do_not_depend_on_workers(tmp_path):
    folder = make_images(tmp_path / "d", [(40, 48), (36, 36), (50, 40)])
    dataset = PatchDataset(scan_images([folder], 16).usable, 16, None, augment=True)
    a = next(patch_loader(dataset, 4, seed=1, start=5, workers=0))
    b = next(patch_loader(dataset, 4, seed=1, start=5, workers=2))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)


def test_bundled_samples_are_usable():
    report = scan_images([sample_folder("train")], 128)
    assert len(report.usable) == 5 and not report.skipped


def test_scale_pyramid():
    hr = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    lr, targets = scale_pyramid(hr, 3)
    assert lr.shape == (2, 3, 4, 4) and [t.shape[-1] for t in targets] == [8, 16, 32]
    torch.testing.assert_close(targets[0], s_down(hr, 4))
    assert targets[-1] is hr
    with pytest.raises(DataError, match="divisible by 8"):
        scale_pyramid(torch.rand(1, 3, 20, 20), 3)


def test_undecodable_training_image_is_skipped_with_a_warning(tmp_path):
    data = make_images(tmp_path / "data", [(40, 40), (40, 40)])
    half = data / "img1.png"
    half.write_bytes(half.read_bytes()[:200])  # valid header, truncated data
    with pytest.warns(UserWarning, match="img1.png"):
        train(tiny_recipe(tmp_path, steps=2), data=[str(data)], out=str(tmp_path / "run"), progress=False)
    assert (tmp_path / "run" / "generator.safetensors").exists()
