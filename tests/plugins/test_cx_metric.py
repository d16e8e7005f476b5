"""The cx metric: the contextual loss's similarity, scored on images, reachable from mgsr eval."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mgsr
from mgsr.assembly.build import part_builder
from mgsr.cli import main
from mgsr.recipe import make_converter
from mgsr.specs import MetricSpec


@pytest.fixture(scope="module")
def cx():
    registry = mgsr.default_registry()
    spec = make_converter(registry).structure(
        {"type": "cx", "features": {"type": "vgg19", "layer": "conv2_2", "pretrained": False}, "max_side": 48},
        MetricSpec,
    )
    return part_builder(registry)(spec)


def test_identical_images_score_one_and_distortion_lowers_it(cx, reference):
    photo = np.asarray(Image.open(reference / "images" / "coffee.png").convert("RGB"))[:64, :64]
    rng = np.random.default_rng(0)
    noisy = lambda s: np.clip(photo + rng.normal(0, s, photo.shape), 0, 255).astype(np.uint8)  # noqa: E731
    same, light, heavy = cx.score(photo, photo), cx.score(noisy(8), photo), cx.score(noisy(40), photo)
    assert same == pytest.approx(1.0, abs=1e-3)
    assert same > light > heavy
    assert cx.aggregate([same, heavy]) == pytest.approx((same + heavy) / 2)


def test_eval_with_cx_offline_says_where_the_vgg_weights_go(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    hr, sr = tmp_path / "hr", tmp_path / "sr"
    hr.mkdir(), sr.mkdir()
    image = (np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(hr / "a.png")
    Image.fromarray(image).save(sr / "a.png")
    code = main(["eval", "--sr", str(sr), "--hr", str(hr), "--metric", "cx"])
    err = capsys.readouterr().err
    assert code != 0 and "vgg19-dcbb9e9d.pth" in err
