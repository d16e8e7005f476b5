"""The classic upscaler at initialisation is MATLAB-style bicubic (a = -0.5, half-pixel centres)."""

from __future__ import annotations

import torch

from mgsr_plugins.learned_bicubic import LearnedBicubic, cubic


def test_kernel_reproduces_quadratics_at_half_pixel_positions():
    """Keys' a = -0.5 cubic reproduces polynomials up to degree 2, which pins alignment and taps."""
    up = LearnedBicubic(LearnedBicubic.Config(), channels=1).double()
    n = 16
    i = torch.arange(n, dtype=torch.float64)
    image = (0.3 * i[:, None] ** 2 - 2 * i[:, None] + 0.5 * i[None, :] + 1).view(1, 1, n, n)
    out = up(image)
    pos = (torch.arange(2 * n, dtype=torch.float64) + 0.5) / 2 - 0.5
    expected = 0.3 * pos[:, None] ** 2 - 2 * pos[:, None] + 0.5 * pos[None, :] + 1
    inner = slice(4, 2 * n - 4)  # away from the replicated border
    torch.testing.assert_close(out[0, 0, inner, inner], expected[inner, inner], rtol=0, atol=1e-9)


def test_constant_image_stays_constant_including_borders():
    up = LearnedBicubic(LearnedBicubic.Config(), channels=3)
    out = up(torch.full((1, 3, 5, 6), 0.7))
    assert out.shape == (1, 3, 10, 12)
    # The release zero-pads beyond one replicated pixel, so only the outermost ring may deviate.
    torch.testing.assert_close(out[..., 1:-1, 1:-1], torch.full_like(out[..., 1:-1, 1:-1], 0.7))


def test_other_a_changes_the_kernel():
    assert not torch.isclose(cubic(torch.tensor(1.5), -0.5), cubic(torch.tensor(1.5), -0.75))
