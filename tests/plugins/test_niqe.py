"""NIQE against the reference numbers of a MATLAB-faithful run, and the shipped pristine model against the .mat."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image

from mgsr.ops.niqe import fit_aggd, pristine_model
from mgsr_plugins.niqe import NIQE

NAMES = ["astronaut", "coffee", "chelsea"]


@pytest.mark.parametrize("shave", [0, 4])
@pytest.mark.parametrize("name", NAMES)
def test_niqe_matches_the_reference(reference, name, shave):
    rgb = np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"))
    expected = json.loads((reference / "images" / "expected_shared.json").read_text())[name][f"niqe_y_shave{shave}"]
    assert NIQE(NIQE.Config(shave=shave)).score(rgb) == pytest.approx(expected, abs=0.01)


def test_shipped_model_is_the_live_release(reference):
    mat = scipy.io.loadmat(str(reference / "niqe" / "modelparameters.mat"))
    mu, cov = pristine_model()
    np.testing.assert_array_equal(mu, mat["mu_prisparam"].ravel())
    np.testing.assert_array_equal(cov, mat["cov_prisparam"])


def test_aggd_fit_recovers_a_gaussian():
    """A Gaussian is a generalised Gaussian of shape 2 with both scales sqrt(2) * std."""
    values = np.random.default_rng(0).normal(0, 3, 200_000)
    shape, left, right = fit_aggd(values)
    assert shape == pytest.approx(2.0, abs=0.03)
    assert left == pytest.approx(3 * np.sqrt(2), rel=0.02) and right == pytest.approx(3 * np.sqrt(2), rel=0.02)


def test_too_small_images_and_bad_blocks_are_explained():
    with pytest.raises(ValueError, match="96x96 block"):
        NIQE(NIQE.Config()).score(np.zeros((100, 300, 3), dtype=np.uint8))  # 92 rows after shaving
    with pytest.raises(ValueError, match="flat"):
        NIQE(NIQE.Config()).score(np.full((120, 120, 3), 200, dtype=np.uint8))
    with pytest.raises(ValueError, match="even"):
        NIQE.Config(block=95)
