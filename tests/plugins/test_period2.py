"""The ``period2`` metric and the fact that made it necessary: the cycle loss cannot see period 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgsr.ops.imresize import s_down
from mgsr.samples import sample_folder
from mgsr.training.data import scan_images, validation_set
from mgsr_plugins.period2 import Period2Share, period2_share


def test_share_is_one_for_a_pure_grid_and_zero_for_a_smooth_ramp():
    i = np.arange(32)
    assert period2_share(np.where((i[:, None] + i[None, :]) % 2, 1.0, -1.0)) == pytest.approx(1.0)
    assert period2_share(np.tile((-1.0) ** i, (32, 1))) == pytest.approx(1.0)  # stripes: the Nyquist column
    ramp = np.cos(2 * np.pi * 3 * i / 32)[:, None] * np.ones((1, 32))
    assert period2_share(ramp) == pytest.approx(0.0, abs=1e-12)


def test_a_faint_grid_on_a_photograph_multiplies_its_share():
    metric = Period2Share(Period2Share.Config())
    (_, hr), *_ = validation_set(scan_images([sample_folder("val")], 4).usable, 96, None)  # a 96x96 photo crop
    clean = metric.score(hr)
    i = np.arange(hr.shape[0])
    grid = 5 * (-1) ** (i[:, None, None] + i[None, :, None])  # +-5 grey levels
    dirty = metric.score(np.clip(hr.astype(np.int16) + grid, 0, 255).astype(np.uint8))
    assert clean < 1e-3
    assert dirty > 10 * clean


def test_odd_and_flat_images_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="even sides"):
        period2_share(np.zeros((5, 6)))
    with pytest.raises(ValueError, match="flat"):
        period2_share(np.ones((6, 6)))


def test_the_cycle_losss_downscale_removes_a_period_2_grid_entirely():
    """Why the cycle term (eq. 12-13) cannot hold W = 1 back from a grid: S_down maps it to zero."""
    i = torch.arange(32, dtype=torch.float64)
    grid = ((-1.0) ** (i[:, None] + i[None, :]) * torch.cos(0.3 * i)[None, :]).view(1, 1, 32, 32)
    for factor in (2, 4):
        assert s_down(grid, factor)[..., 2:-2, 2:-2].abs().max() < 1e-12  # the mirrored border aside
