"""Scoring W maps from a grid of global-W outputs: exact at the grid, each block read at its own W."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mgsr
from mgsr.errors import EvaluationError
from mgsr.evaluation.adaptive_fit import candidate_shapes, measure_curves
from mgsr.evaluation.adaptive_grid import global_points, measure_grid, set_scores
from mgsr.evaluation.protocol import get_protocol
from mgsr.evaluation.upscalers import SetEvaluator, make_upscaler

GRID = (0.0, 0.01, 0.03)


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory) -> SetEvaluator:
    """Two small photos: one 96x96 NIQE block and a 2x1 row of them (200x104 HR, 4x)."""
    hr = tmp_path_factory.mktemp("hr")
    face = Image.open(Path(mgsr.__file__).parent / "samples" / "val" / "grace_hopper_face.png").convert("RGB")
    face.crop((40, 40, 144, 144)).save(hr / "a.png")
    face.crop((0, 60, 200, 164)).save(hr / "b.png")
    protocol = get_protocol("pirm2018")
    upscale, _ = make_upscaler("pirm-r3", 4, protocol.seed)
    return SetEvaluator.create(upscale, hr, 4, protocol, mgsr.default_registry())


@pytest.fixture(scope="module")
def grid(evaluator):
    return measure_grid(evaluator, 4, GRID)


def test_at_the_grid_the_estimate_is_the_protocols_score(evaluator, grid):
    for w, rmse, niqe in global_points(grid):
        real = evaluator.evaluate(w).aggregate
        assert rmse == pytest.approx(real["rmse"], abs=1e-9) and niqe == pytest.approx(real["niqe"], abs=1e-9)
    assert global_points(grid)[0][1] < global_points(grid)[-1][1]  # W moves the scores: the grid is not flat


def test_each_block_reads_the_features_of_its_own_w(grid):
    image = grid[1]  # two blocks side by side
    assert len(image.block_slices) == 2
    w_map = np.zeros(image.lr.shape[:2])
    w_map[image.block_slices[1]] = GRID[2]  # the second block's footprint at W = 0.03, the rest at 0
    mixed = image.score(w_map)[1]
    from mgsr.ops.niqe import niqe_distance, pristine_model

    expected = niqe_distance(np.stack([image.features[0, 0], image.features[2, 1]]), *pristine_model())
    assert mixed == pytest.approx(expected, abs=1e-12)
    assert mixed != pytest.approx(image.score(np.zeros_like(w_map))[1], abs=1e-3)


def test_squared_errors_follow_each_pixels_w(grid):
    image = grid[0]
    half = np.zeros(image.lr.shape[:2])
    half[:, : half.shape[1] // 2] = GRID[1]
    errors = image.cell_errors
    expected = (
        errors[1][:, : half.shape[1] // 2].sum() + errors[0][:, half.shape[1] // 2 :].sum()
    ) / image.scored_pixels
    assert image.score(half)[0] == pytest.approx(expected)
    assert set_scores(grid, [np.full(im.lr.shape[:2], 0.005) for im in grid])[0] > global_points(grid)[0][1]


def test_curves_of_the_search_start_at_w0_and_the_global_shape_is_exact_at_the_grid(grid):
    shapes = candidate_shapes(2, [im.lr for im in grid], random_rules=3, seed=1)
    assert [name for name, _ in shapes][:4] == ["global", "flat-absolute", "flat-relative", "busy-relative"]
    assert len({rule for _, rule in shapes}) == len(shapes) == 7
    curves = measure_curves(grid, shapes, amplitudes=GRID[1:])
    points = global_points(grid)
    assert curves[0].rmse == pytest.approx([p[1] for p in points]) and curves[0].niqe == pytest.approx(
        [p[2] for p in points]
    )
    assert all(c.rmse[0] == curves[0].rmse[0] for c in curves)


def test_a_bad_grid_is_refused(evaluator):
    with pytest.raises(EvaluationError, match="increasing"):
        measure_grid(evaluator, 4, (0.01, 0.0))


def test_a_shape_with_unequal_levels_is_refused_by_the_estimate(grid):
    from mgsr.inference.adaptive import AdaptiveRule

    with pytest.raises(EvaluationError, match="one W at every level"):
        measure_curves(grid, [("per-level", AdaptiveRule((0.25, 1.0)))], amplitudes=GRID[1:])
