"""`calibrate --adaptive --max-rmse B` refuses a budget that W = 0 already exceeds after one pass, not the grid.

No map gives less distortion than W = 0 everywhere, so such a budget cannot be met; the fit used to find
that out after the grid's ten passes (minutes on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mgsr
from mgsr.cli import main
from mgsr.errors import EvaluationError
from mgsr.evaluation.adaptive_fit import check_budget_at_w0
from mgsr.evaluation.adaptive_grid import measure_grid
from mgsr.evaluation.protocol import get_protocol
from mgsr.evaluation.upscalers import SetEvaluator, bicubic_upscaler


@pytest.fixture(scope="module")
def hr(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    face = Image.open(Path(mgsr.__file__).parent / "samples" / "val" / "grace_hopper_face.png").convert("RGB")
    face.crop((0, 0, 104, 104)).save(folder / "a.png")
    face.crop((40, 40, 144, 144)).save(folder / "b.png")
    return folder


def counting_evaluator(hr: Path) -> tuple[SetEvaluator, list[object]]:
    """Bicubic (any W gives the same image) with every call's W recorded."""
    calls: list[object] = []
    bicubic = bicubic_upscaler(4)

    def upscale(lr: np.ndarray, noise: object) -> np.ndarray:
        calls.append(noise)
        return bicubic(lr, None)  # bicubic takes no W

    protocol = get_protocol("pirm2018")
    return SetEvaluator.create(upscale, hr, 4, protocol, mgsr.default_registry()), calls


def test_a_budget_under_w0_is_refused_after_one_pass(hr):
    evaluator, calls = counting_evaluator(hr)
    w0 = evaluator.evaluate(0.0).aggregate["rmse"]
    calls.clear()
    with pytest.raises(EvaluationError, match=f"RMSE at W = 0 .* is {w0:.4f}, above --max-rmse"):
        check_budget_at_w0(evaluator, w0 - 0.01)
    assert calls == [0.0, 0.0]  # one pass over the two images


def test_a_budget_above_w0_passes_and_the_grid_reuses_that_pass(hr):
    evaluator, calls = counting_evaluator(hr)
    w0 = evaluator.evaluate(0.0).aggregate["rmse"]
    calls.clear()
    kept = check_budget_at_w0(evaluator, w0 + 0.01)
    measure_grid(kept, 4, (0.0, 0.01))
    assert calls == [0.0, 0.0, 0.01, 0.01]  # W = 0 upscaled once for the check and the grid


def test_the_command_stops_before_the_grid(hr, tmp_path, capsys):
    import torch

    from mgsr.assembly.build import build_generator
    from mgsr.model.weights import ModelCard, save_generator
    from mgsr.recipe import structure_model_spec
    from tests.inference.test_export import TINY

    torch.manual_seed(0)
    spec = structure_model_spec(TINY)
    card = ModelCard(name="tiny", default_noise=1.0)
    weights = save_generator(tmp_path / "tiny.safetensors", build_generator(spec).eval(), spec, card)
    out = tmp_path / "adaptive.json"
    args = ["calibrate", "--adaptive", "--model", str(weights), "--hr", str(hr), "--max-rmse", "0.5", "-o", str(out)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "the budget cannot be met: RMSE at W = 0" in err
    assert "grid W=" not in err  # refused before the grid's first pass was reported
    assert not out.exists()
