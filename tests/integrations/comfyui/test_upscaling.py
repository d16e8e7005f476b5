"""The node's work on ComfyUI's tensors (mgsr.integrations.comfyui.upscaling) against `mgsr upscale` with the
same settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgsr.assembly.loading import load_generator
from mgsr.errors import MgsrError
from mgsr.integrations.comfyui.upscaling import Settings, masks_for, upscale_images, working_memory

from .helpers import comfy_image, comfy_mask, crop, differences, mask_png, mgsr_upscale, to_8bit


@pytest.fixture(scope="module")
def r3():
    return load_generator("pirm-r3")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two different 64x72 crops of the 96x96 sample photo (its top left and its bottom right)."""
    folder = tmp_path_factory.mktemp("photos")
    return crop(folder / "face.png", (0, 0, 64, 72)), crop(folder / "collar.png", (32, 24, 96, 96))


def test_a_batch_equals_mgsr_upscale_of_each_picture(r3, photos, tmp_path):
    images = torch.from_numpy(comfy_image(*photos))
    out = upscale_images(r3, images, Settings(scale=4, detail=0.5, seed=3, tile=0)).numpy()
    assert out.shape == (2, 288, 256, 3) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    for i, photo in enumerate(photos):
        expected = mgsr_upscale(photo, tmp_path / f"{i}.png", "--detail", "0.5", "--seed", "3", "--tile", "0")
        assert differences(to_8bit(out[i]), expected) == (0, 0.0), photo.name  # same floats, same rounding
    assert not np.array_equal(out[0], out[1])


def test_tiles_change_nothing_and_report_per_image(r3, photos):
    images = torch.from_numpy(comfy_image(*photos))
    whole = upscale_images(r3, images, Settings(scale=4, detail=1.0, seed=0, tile=0))
    calls: list[tuple[int, int, int]] = []
    tiled = upscale_images(
        r3, images, Settings(scale=4, detail=1.0, seed=0, tile=16), on_tile=lambda *c: calls.append(c)
    )
    assert float((tiled - whole).abs().max()) < 1e-4  # mgsr's seamless tiles: the float output's full context
    per_image = [[c for c in calls if c[0] == i] for i in (0, 1)]
    assert all(len(p) > 1 and p[-1][1] == p[-1][2] == len(p) for p in per_image), calls
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)  # image 0's tiles, then image 1's


def test_a_painted_map_equals_the_noise_map_option(r3, photos, tmp_path):
    face = photos[0]
    for size in ((64, 72), (32, 36)):  # the image's size, and one that is resized to it (bilinear, both ways)
        mask = mask_png(tmp_path / f"mask{size[0]}.png", size)
        out = upscale_images(
            r3,
            torch.from_numpy(comfy_image(face)),
            Settings(scale=2, detail=1.0, seed=5, tile=0),
            noise_map=torch.from_numpy(comfy_mask(mask)),
        ).numpy()
        expected = mgsr_upscale(
            face, tmp_path / f"m{size[0]}.png", "--scale", "2", "--seed", "5", "--noise-map", str(mask)
        )
        assert differences(to_8bit(out[0]), expected) == (0, 0.0), size
    plain = upscale_images(r3, torch.from_numpy(comfy_image(face)), Settings(scale=2, seed=5, tile=0)).numpy()
    assert differences(to_8bit(out[0]), to_8bit(plain[0]))[0] > 10  # the map did something


def test_masks_for_one_or_each_image_and_a_clear_error_otherwise():
    one = torch.rand(8, 8)
    assert all(torch.equal(m, one) for m in masks_for(one, 3))
    each = torch.rand(2, 8, 8)
    assert [torch.equal(m, each[i]) for i, m in enumerate(masks_for(each, 2))] == [True, True]
    assert masks_for(None, 2) == [None, None]
    with pytest.raises(MgsrError, match="noise_map holds 2 masks for 3 images: give one mask for all"):
        masks_for(each, 3)


def test_images_that_are_not_rgb_are_refused_with_what_to_do(r3):
    with pytest.raises(MgsrError, match="image has 4 channels.*Split Image with Alpha"):
        upscale_images(r3, torch.rand(1, 8, 8, 4), Settings(tile=0))
    with pytest.raises(MgsrError, match=r"expected a ComfyUI IMAGE batch \(B, H, W, 3\)"):
        upscale_images(r3, torch.rand(8, 8, 3), Settings(tile=0))
    with pytest.raises(MgsrError, match="tile -5: give a tile side in pixels, 0 for the whole image or -1 for auto"):
        upscale_images(r3, torch.rand(1, 8, 8, 3), Settings(tile=-5))


def test_working_memory_grows_with_the_tile_and_the_scale():
    small, large = working_memory(Settings(tile=64), 512, 512), working_memory(Settings(tile=0), 512, 512)
    assert 0 < small < large < working_memory(Settings(tile=0, scale=8), 512, 512)
    assert working_memory(Settings(tile=64), 40, 40) == working_memory(Settings(tile=0), 40, 40)  # tile > image
