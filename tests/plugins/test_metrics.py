"""RMSE, PSNR and SSIM: the PIRM-SR conventions (studio-range Y, shave, RMSE of a set) on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mgsr_plugins.full_reference import PSNR, RMSE, SSIM


def grey(value: int, size: int = 12) -> np.ndarray:
    """R = G = B = value, so Y = round(16 + 219 * value / 255) (the BT.601 weights sum to 219)."""
    return np.full((size, size, 3), value, dtype=np.uint8)


def rmse(shave: int = 4) -> RMSE:
    return RMSE(RMSE.Config(shave=shave))


def test_y_is_studio_range_and_rounded():
    # Full-range luminance would give 255 for white against black; MATLAB's rgb2ycbcr gives 235 - 16.
    assert rmse().score(grey(255), grey(0)) == pytest.approx(219.0)
    # 16 + 219/255 = 16.86 rounds to 17 and 16 + 3 * 219/255 = 18.58 to 19: differences of 1 and 3, not 0.86, 2.58.
    assert rmse().score(grey(1), grey(0)) == pytest.approx(1.0)
    assert rmse().score(grey(3), grey(0)) == pytest.approx(3.0)


def test_shave_cuts_the_border_before_scoring():
    output = grey(255)
    output[4:-4, 4:-4] = 0  # a 4-pixel white frame around a black 4x4 centre, on a black reference
    assert rmse(shave=4).score(output, grey(0)) == 0.0
    assert rmse(shave=0).score(output, grey(0)) == pytest.approx(219 * math.sqrt(128 / 144))  # 128 frame pixels
    assert rmse(shave=2).score(output, grey(0)) == pytest.approx(219 * math.sqrt(48 / 64))  # 8x8 left, 48 in frame


def test_rmse_of_a_set_is_the_root_of_the_mean_mse():
    scores = [rmse().score(grey(1), grey(0)), rmse().score(grey(3), grey(0))]  # MSE 1 and 9
    assert rmse().aggregate(scores) == pytest.approx(math.sqrt(5))  # not the mean RMSE, 2


def test_psnr_on_y_and_its_set_mean():
    psnr = PSNR(PSNR.Config())
    assert psnr.score(grey(255), grey(0)) == pytest.approx(20 * math.log10(255 / 219))
    assert psnr.score(grey(3), grey(0)) == pytest.approx(10 * math.log10(255**2 / 9))
    assert psnr.score(grey(7), grey(7)) == math.inf
    assert psnr.aggregate([30.0, 40.0]) == pytest.approx(35.0)


def test_ssim_of_flat_images_is_the_luminance_term():
    ssim = SSIM(SSIM.Config())
    c1 = (0.01 * 255) ** 2  # flat images: the structure term is C2 / C2 = 1
    expected = (2 * 16 * 235 + c1) / (16**2 + 235**2 + c1)
    assert ssim.score(grey(255, 24), grey(0, 24)) == pytest.approx(expected)


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ssim = SSIM(SSIM.Config())
    assert ssim.score(image, image) == pytest.approx(1.0)
    scores = [
        ssim.score(np.clip(image + rng.normal(0, std, image.shape), 0, 255).astype(np.uint8), image)
        for std in (10, 40, 80)
    ]
    assert 1 > scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("metric", [RMSE(RMSE.Config()), PSNR(PSNR.Config()), SSIM(SSIM.Config())])
def test_bad_pairs_are_explained(metric):
    with pytest.raises(ValueError, match="reference"):
        metric.score(grey(0, 24), None)
    with pytest.raises(ValueError, match=r"\(24, 24\).*\(24, 20\)"):
        metric.score(grey(0, 24), grey(0, 24)[:, :20])
    with pytest.raises(ValueError, match="shaving 4"):
        metric.score(grey(0, 8), grey(0, 8))


def test_every_metric_that_shaves_takes_the_one_shave_setting():
    """One declaration (mgsr.ops.color.ShaveConfig): the same default and the same refusals in every metric."""
    import attrs

    import mgsr
    from mgsr.ops.color import PIRM_SHAVE, ShaveConfig

    registry = mgsr.default_registry()
    shaving = {n for n in registry.names("metric") if issubclass(registry.get("metric", n).Config, ShaveConfig)}
    assert {"rmse", "psnr", "ssim", "l1", "niqe", "lpips", "period2"} <= shaving
    for name in shaving:
        config = registry.get("metric", name).Config
        assert config().shave == PIRM_SHAVE, name
        assert config(shave=2).shave == 2, name
        with pytest.raises((ValueError, TypeError), match="shave"):
            config(shave=-1)
        with pytest.raises(TypeError, match="shave"):
            config(shave=1.5)
    others = [n for n in registry.names("metric") if n not in shaving]
    assert not [n for n in others if "shave" in attrs.fields_dict(registry.get("metric", n).Config)]
