"""Any output size: --outscale F, --width / --height, mgsr.upscale(outscale=), and the strip-wise resize."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.cli import main
from mgsr.errors import MgsrError
from mgsr.inference.outsize import SizeRequest
from mgsr.io.images import quantise
from mgsr.ops.imresize import imresize, resize_strips

RNG = np.random.default_rng(21)


@pytest.fixture(scope="module")
def r3():
    return mgsr.pretrained("pirm-r3")


def test_strips_equal_the_whole_matlab_resize():
    image = RNG.random((41, 30, 3)).astype(np.float32)
    whole = imresize(torch.from_numpy(image).double().permute(2, 0, 1), size=(29, 23)).permute(1, 2, 0).numpy()
    strips = np.concatenate([s for _, _, s in resize_strips(image, (29, 23), rows=6)])
    assert strips.shape == (29, 23, 3)
    assert np.abs(strips - whole).max() < 1e-5


@pytest.mark.parametrize(
    ("request_", "level", "size", "tag"),
    [
        (SizeRequest(outscale=3), 4, (30, 60), "x3"),
        (SizeRequest(outscale=2.5), 4, (25, 50), "x2.5"),
        (SizeRequest(outscale=2), 2, (20, 40), "x2"),
        (SizeRequest(outscale=5), 8, (50, 100), "x5"),
        (SizeRequest(width=50), 4, (25, 50), "50w"),
        (SizeRequest(height=15), 2, (15, 30), "15h"),
        (SizeRequest(width=61, height=30), 4, (30, 61), "61x30"),  # within a pixel of the aspect
    ],
)
def test_plan_picks_the_smallest_level_at_or_above(request_, level, size, tag):
    assert request_.plan((10, 20)) == (level, size)
    assert request_.tag == tag


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outscale": 1.0}, "must be > 1"),
        ({"outscale": 8.5}, "beyond 8x"),
        ({"outscale": math.nan}, "must be a number"),
        ({"width": 0}, "width must be a whole number"),
        ({"outscale": 3, "width": 40}, "not both"),
    ],
)
def test_bad_requests_say_what_to_do(kwargs, message):
    with pytest.raises(MgsrError, match=message):
        SizeRequest(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 20}, r"photo.png: 20x10 is not larger than the image \(20x10\)"),
        ({"width": 161}, r"photo.png: 161x81 is 8.1x the image \(20x10\), beyond 8x"),
        ({"width": 60, "height": 20}, "photo.png: 60x20 would stretch .* give only --width or only --height"),
    ],
)
def test_requests_that_do_not_fit_the_image_name_it(kwargs, message):
    with pytest.raises(MgsrError, match=message):
        SizeRequest(**kwargs).plan((10, 20), "photo.png")


def test_outscale_is_the_next_level_shrunk_by_matlab_bicubic(r3):
    image = (RNG.random((12, 16, 3)) * 255).astype(np.uint8)
    x3 = mgsr.upscale(image, model=r3, outscale=3, noise=0.5)
    assert x3.shape == (36, 48, 3) and x3.dtype == np.uint8
    x4 = mgsr.upscale(image, model=r3, scale=4, noise=0.5)
    expected = imresize(torch.from_numpy(x4).double().permute(2, 0, 1) / 255, size=(36, 48)).permute(1, 2, 0)
    assert np.abs(x3.astype(int) - quantise(expected.numpy(), 8).astype(int)).max() <= 1
    tiled = mgsr.upscale(image, model=r3, outscale=3, noise=0.5, tile=8)
    assert np.array_equal(tiled, x3)  # tiles assemble before the resize


def test_sixteen_bit_alpha_and_pil_keep_their_type(r3):
    rgba = (RNG.random((10, 14, 4)) * 65535).astype(np.uint16)
    out = mgsr.upscale(rgba, model=r3, width=35, noise=0.0)
    assert out.shape == (25, 35, 4) and out.dtype == np.uint16
    pil = mgsr.upscale(Image.fromarray(rgba[..., :3].astype(np.uint8)), model=r3, height=25, noise=0.0)
    assert pil.size == (35, 25) and pil.mode == "RGB"
    with pytest.raises(MgsrError, match="not both"):
        mgsr.upscale(rgba, model=r3, scale=4, outscale=3)


def test_cli_names_outputs_by_the_request(tmp_path, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray((RNG.random((10, 20, 3)) * 255).astype(np.uint8)).save(source)
    out = tmp_path / "out"
    for flags, name, size in [
        (["--outscale", "2.5"], "photo_x2.5.png", (50, 25)),
        (["--width", "50"], "photo_50w.png", (50, 25)),
        (["--scale", "2"], "photo_x2.png", (40, 20)),
    ]:
        assert main(["upscale", str(source), "-o", str(out), "-q", *flags]) == 0
        assert Image.open(out / name).size == size
    assert main(["upscale", str(source), "-o", str(out), "-q", "--width", "15"]) != 0
    assert "photo.png: 15x8 is not larger than the image (20x10)" in capsys.readouterr().err
    assert main(["upscale", str(source), "-o", str(out), "-q", "--scale", "4", "--outscale", "3"]) != 0
    assert "--scale contradicts --outscale" in capsys.readouterr().err
