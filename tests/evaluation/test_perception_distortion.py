"""The paper's claim on the perception-distortion plane, on the three reference photographs downscaled x4.

Slow (about 20 s on two idle cores, minutes on busy ones): run with ``python -m pytest -m slow``.
``benchmarks/pirm_table.py`` prints the full table.
"""

from __future__ import annotations

import pytest

from mgsr.evaluation.protocol import PIRM2018
from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler
from mgsr.registry import default_registry


def scores(reference, model: str, noise: float | None) -> dict[str, float]:
    upscale, _ = make_upscaler(model, 4, PIRM2018.seed)
    evaluator = SetEvaluator.create(upscale, reference / "images", 4, PIRM2018, default_registry())
    return dict(evaluator.evaluate(noise).aggregate)


@pytest.mark.slow
def test_noise_trades_distortion_for_naturalness_and_both_beat_bicubic(reference):
    bicubic = scores(reference, "bicubic", None)
    sharp = scores(reference, "pirm-r3", 0.0)
    natural = scores(reference, "pirm-r3", 1.0)
    assert natural["niqe"] < sharp["niqe"]
    assert natural["rmse"] > sharp["rmse"]
    assert sharp["rmse"] < bicubic["rmse"] and natural["rmse"] < bicubic["rmse"]
