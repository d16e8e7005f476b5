"""The quickstart recipe end to end (about 4 minutes on 2 cores: marked slow, run with -m slow)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import mgsr
from mgsr.training.data import load_validation
from mgsr.ops.imresize import imresize
from mgsr.samples import sample_folder
from mgsr.io.images import to_uint8

from .conftest import RECIPES


@pytest.mark.slow
def test_quickstart_beats_bicubic_at_w0_and_w_adds_detail(tmp_path):
    run = tmp_path / "quickstart"
    result = subprocess.run([sys.executable, "-m", "mgsr", "train", str(RECIPES / "quickstart.toml"),
                             "--out", str(run), "-q"], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    model = mgsr.load_generator(run)
    psnr_metric = mgsr.default_registry().get("metric", "psnr")
    psnr = psnr_metric(psnr_metric.Config(shave=4))
    laplacian = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    for name, hr in load_validation([sample_folder("val")], 4, 192):  # held out: not in samples:train
        lr = (imresize(hr.double(), 0.25).clamp(0, 1) * 255).round().float() / 255
        bicubic = psnr.score(to_uint8(imresize(lr.double(), 4).float()), to_uint8(hr))
        w0 = mgsr.upscale_tensor(model, lr, scale=4, noise_amp=0.0).clamp(0, 1)
        w1 = mgsr.upscale_tensor(model, lr, scale=4, noise_amp=1.0, seed=0).clamp(0, 1)
        assert psnr.score(to_uint8(w0), to_uint8(hr)) > bicubic + 0.2, name
        detail = [float(torch.nn.functional.conv2d(y, laplacian, groups=3).square().mean()) for y in (w0, w1)]
        assert detail[1] > detail[0], name  # W = 1 adds high-frequency content
