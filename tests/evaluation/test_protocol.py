"""The pirm2018 protocol: LR maker and bicubic baseline against MATLAB, recorded parameters, PI with a Ma plugin."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mgsr import hookimpl
from mgsr.evaluation.protocol import PI_ABSENT_NOTE, PIRM2018, bicubic_upscale, crop_to_multiple, make_lr
from mgsr.evaluation.scoring import score_set
from mgsr.interfaces import Metric
from mgsr.registry import Registry, make_plugin_manager


def photo(reference, name: str) -> np.ndarray:
    return np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"))


def as_uint8(reference, key: str) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's unrounded result as uint8, and where it is not within 1e-3 of a rounding tie (float32 storage)."""
    scaled = np.load(reference / "images" / "matlab_imresize_shared.npz")[key].astype(np.float64) * 255
    clear = np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8), clear


@pytest.mark.parametrize("name", ["astronaut", "coffee"])  # sizes that are multiples of 4
def test_lr_maker_and_bicubic_baseline_match_matlab(reference, name):
    lr = make_lr(photo(reference, name), 4)
    expected, clear = as_uint8(reference, f"{name}_down4")
    assert lr.dtype == np.uint8 and lr.shape == expected.shape
    np.testing.assert_array_equal(lr[clear], expected[clear])
    up = bicubic_upscale(lr, 4)
    expected, clear = as_uint8(reference, f"{name}_down4_up4")
    np.testing.assert_array_equal(up[clear], expected[clear])


def test_hr_is_cropped_from_the_top_left_to_a_multiple_of_the_scale(reference):
    hr = photo(reference, "chelsea")  # 300 x 451
    cropped = crop_to_multiple(hr, 4)
    assert cropped.shape == (300, 448, 3)
    np.testing.assert_array_equal(cropped, hr[:, :448])
    assert make_lr(cropped, 4).shape == (75, 112, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        make_lr(hr, 4)


def test_results_carry_every_parameter(builtin_registry):
    metrics = PIRM2018.metric_instances(builtin_registry, with_reference=True)
    described = PIRM2018.describe(metrics)
    assert described["name"] == "pirm2018" and described["seed"] == 0
    assert described["metrics"] == {
        "rmse": {"shave": 4},
        "psnr": {"shave": 4},
        "ssim": {"shave": 4},
        "niqe": {"shave": 4, "block": 96},
    }
    assert "imresize" in described["lr_maker"] and "uint8" in described["lr_maker"]
    no_reference = PIRM2018.metric_instances(builtin_registry, with_reference=False)
    assert [m.name for m in no_reference] == ["niqe"]


class FixedMa(Metric):
    """Stands in for Ma et al.'s score, which mgsr cannot ship: a plugin's metric named 'ma'."""

    name = "ma"
    needs_reference = False
    higher_is_better = True

    import attrs as _attrs

    @_attrs.frozen
    class Config:
        value: float = 6.0

    def score(self, output, reference=None):
        return self.config.value + float(output.mean() > 128)


class MaPlugin:
    @hookimpl
    def mgsr_metrics(self):
        return [FixedMa]


def test_pi_is_reported_when_a_ma_plugin_is_installed(reference):
    pm = make_plugin_manager(autoload=False)
    pm.register(MaPlugin(), name="ma-plugin")
    registry = Registry.from_plugin_manager(pm)
    metrics = PIRM2018.metric_instances(registry, with_reference=False)
    assert [m.name for m in metrics] == ["niqe", "ma"]
    images = [(name, photo(reference, name), None) for name in ("coffee", "chelsea")]
    result = score_set(images, metrics, PIRM2018.describe(metrics))
    assert result.metrics == ("niqe", "ma", "pi")
    for _, s in result.images:
        assert s["pi"] == pytest.approx(((10 - s["ma"]) + s["niqe"]) / 2)
    assert result.aggregate["pi"] == pytest.approx(np.mean([s["pi"] for _, s in result.images]))
    assert PI_ABSENT_NOTE not in result.notes
    assert result.to_dict()["protocol"]["metrics"]["ma"] == {"value": 6.0}


def test_pi_absence_is_explained(builtin_registry, reference):
    metrics = PIRM2018.metric_instances(builtin_registry, with_reference=False)
    result = score_set([("a", photo(reference, "coffee"), None)], metrics, PIRM2018.describe(metrics))
    assert "pi" not in result.metrics and PI_ABSENT_NOTE in result.notes
    assert "Ma" in result.table() and "plugin" in result.table()
