"""MATLAB imresize parity (bicubic, antialiased) against reference numbers from a MATLAB-faithful run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.ops.imresize import imresize, s_down

NAMES = ["astronaut", "coffee", "chelsea"]


def load(reference, name: str) -> torch.Tensor:
    rgb = np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"), dtype=np.float64) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1)


def expected(reference, key: str) -> torch.Tensor:
    data = np.load(reference / "images" / "matlab_imresize_shared.npz")
    return torch.from_numpy(data[key].astype(np.float64)).permute(2, 0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_downscales_match_matlab(reference, name):
    image = load(reference, name)
    for scale, key in ((0.25, "down4"), (0.5, "down2")):
        ours = imresize(image, scale)
        ref = expected(reference, f"{name}_{key}")
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_bicubic_baseline_matches_matlab(reference, name):
    """x4 upscale of the uint8 (clamped, rounded) x0.25 image: the classic baseline of PIRM-SR."""
    small = torch.round(imresize(load(reference, name), 0.25).clamp(0, 1) * 255) / 255
    ours = imresize(small, 4)
    ref = expected(reference, f"{name}_down4_up4")
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < 1e-5


def test_without_antialias_differs_and_gradients_flow():
    image = torch.rand(1, 3, 16, 12, dtype=torch.float64, requires_grad=True)
    assert (imresize(image, 0.5) - imresize(image, 0.5, antialias=False)).abs().max() > 1e-3
    s_down(image, 2).sum().backward()
    # Each output pixel's weights sum to one, so every input receives gradient and the total is preserved.
    assert image.grad.abs().min() > 0
    torch.testing.assert_close(image.grad.sum(), torch.tensor(3 * 8 * 6, dtype=torch.float64))


def test_explicit_size_and_bad_arguments():
    image = torch.rand(2, 3, 10, 10)
    assert imresize(image, size=(5, 7)).shape == (2, 3, 5, 7)
    with pytest.raises(ValueError):
        imresize(image)
    with pytest.raises(ValueError):
        imresize(image, 0.5, size=(5, 5))
