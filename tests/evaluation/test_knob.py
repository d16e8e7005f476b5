"""The knob report: the released model's W moves its outputs along the curve, a model without noise does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.assembly.loading import load_generator
from mgsr.evaluation.knob import KnobPoint, KnobReport, measure_knob, phase_spread
from mgsr_plugins.gaussian import GaussianNoise


def _report(niqe: list[float], rmse: list[float], draws: tuple[float, ...] = (5.0,)) -> KnobReport:
    ws = [0.0, 0.5, 1.0]
    points = tuple(KnobPoint(w, r, 30.0, n, 1.0) for w, r, n in zip(ws, rmse, niqe, strict=True))
    return KnobReport(points, bicubic_rmse=9.0, bicubic_niqe=8.0, niqe_draws=draws, phase_spread=None)


def test_report_reads_gap_ratio_and_monotony():
    report = _report(niqe=[8.0, 6.5, 6.0], rmse=[8.0, 8.8, 9.6])
    assert report.niqe_gap == pytest.approx(-2.0) and report.rmse_ratio == pytest.approx(1.2)
    assert report.monotone
    # NIQE rising by 0.5 between two W is beyond a draw noise of 2 x 0.1: not monotone ...
    assert not _report(niqe=[8.0, 6.0, 6.5], rmse=[8.0, 8.8, 9.6], draws=(6.5, 6.4, 6.6)).monotone
    # ... but within a draw noise of 2 x 1.0 it is
    assert _report(niqe=[8.0, 6.0, 6.5], rmse=[8.0, 8.8, 9.6], draws=(6.5, 5.5, 7.5)).monotone
    assert not _report(niqe=[8.0, 6.5, 6.0], rmse=[8.0, 7.0, 9.6]).monotone  # RMSE falling is not a knob


def test_phase_spread_of_a_split_filter():
    gains = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.99, 1.01, 1.0, 1.0]])
    assert phase_spread(gains) == pytest.approx(0.02)
    assert phase_spread(None) is None


@pytest.fixture(scope="module")
def crops(reference, tmp_path_factory):
    """Two 192x192 centre crops of reference photos (NIQE needs a 96x96 block after the shave)."""
    folder = tmp_path_factory.mktemp("heldout")
    for name in ("astronaut.png", "chelsea.png"):
        image = Image.open(reference / "images" / name).convert("RGB")
        left, top = (image.width - 192) // 2, (image.height - 192) // 2
        image.crop((left, top, left + 192, top + 192)).save(folder / name)
    return folder


def test_the_released_model_has_a_knob_and_a_noiseless_one_has_none(crops):
    released = load_generator("pirm-r3")
    report = measure_knob(released, crops, ws=(0.0, 1.0), seeds=(0, 1))
    assert report.at(0.0).rmse < report.bicubic_rmse
    assert report.niqe_gap < -1.0 and 1.0 < report.rmse_ratio < 1.3
    assert len(report.niqe_draws) == 2 and report.niqe_draws[0] != report.niqe_draws[1]
    assert report.phase_spread is not None and report.phase_spread < 0.01

    inert = load_generator("pirm-r3")
    inert.noise_source = GaussianNoise(GaussianNoise.Config(std=0.0))  # every draw is zero: W changes nothing
    flat = measure_knob(inert, crops, ws=(0.0, 1.0), seeds=(0,))
    assert flat.niqe_gap == 0.0 and flat.rmse_ratio == 1.0
    assert np.isclose(flat.at(0.0).rmse, report.at(0.0).rmse)


def test_the_knob_is_read_between_zero_and_one(crops):
    with pytest.raises(ValueError, match="lacks one of them"):
        measure_knob(load_generator("pirm-r3"), crops, ws=(0.0, 0.5))
