"""The VN+SC discriminator input (eq. 3-4) and the plain colour input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mgsr
from mgsr.assembly.build import part_builder
from mgsr.io.images import read_rgb
from mgsr.specs import DiscriminatorInputSpec

IMAGES = ("astronaut", "coffee", "chelsea")


def make_input(name: str = "vn_sc", **options):
    registry = mgsr.default_registry()
    config = registry.get("discriminator_input", name).Config(**options)
    return part_builder(registry)(DiscriminatorInputSpec(name, config), channels=3)


def normalized_luminance_numpy(rgb: np.ndarray, size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """Eq. 3 written out directly (sliding windows over an edge-padded image), as an independent check."""
    y = 16 + 65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]
    r = size // 2
    g = np.exp(-((np.arange(size) - r) ** 2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def mean(a):
        patches = np.lib.stride_tricks.sliding_window_view(np.pad(a, r, mode="edge"), (size, size))
        return (patches * window).sum(axis=(-2, -1))

    mu = mean(y)
    sd = np.sqrt(np.maximum(mean(y * y) - mu * mu, 0))
    return (y - mu) / (sd + 1)


def test_shape_and_channel_order_follow_the_radius():
    x = torch.rand(2, 3, 10, 12)
    assert make_input()(x).shape == (2, 49, 10, 12)
    assert make_input(radius=1)(x).shape == (2, 9, 10, 12)
    assert make_input(radius=0)(x).shape == (2, 1, 10, 12)
    assert make_input().out_channels == 49


def test_centre_channel_is_the_squared_normalized_luminance():
    rgb = torch.rand(1, 3, 11, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = normalized_luminance_numpy(rgb[0].numpy())
    v = make_input()(rgb)
    np.testing.assert_allclose(v[0, 24].numpy(), expected**2, rtol=1e-9, atol=1e-9)
    # a wider window and sigma are honoured too (radius 2: the centre is channel 12)
    v = make_input(window=5, sigma=1.5, radius=2)(rgb)
    np.testing.assert_allclose(v[0, 12].numpy(), normalized_luminance_numpy(rgb[0].numpy(), 5, 1.5) ** 2, atol=1e-9)


def test_shift_symmetry_and_zeros_beyond_the_border():
    x = torch.rand(1, 3, 12, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    v = make_input()(x)[0]
    h, w = v.shape[-2:]
    for p in range(-3, 4):
        for q in range(-3, 4):
            here, mirrored = v[7 * (p + 3) + (q + 3)], v[7 * (-p + 3) + (-q + 3)]
            # V^(p,q)(i, j) = V^(-p,-q)(i+p, j+q) wherever (i+p, j+q) is inside
            i0, i1, j0, j1 = max(0, -p), min(h, h - p), max(0, -q), min(w, w - q)
            torch.testing.assert_close(here[i0:i1, j0:j1], mirrored[i0 + p : i1 + p, j0 + q : j1 + q])
            # and zero where the shifted pixel falls outside
            outside = torch.ones(h, w, dtype=torch.bool)
            outside[i0:i1, j0:j1] = False
            assert torch.all(here[outside] == 0)
            assert outside.any() == (p != 0 or q != 0)


@pytest.mark.parametrize("name", IMAGES)
def test_natural_photos_decorrelate_and_bicubic_upscales_do_not(reference, name):
    """The statistic the paper relies on: off-centre products average near zero only on natural images."""
    layer = make_input()
    photo = read_rgb(reference / "images" / f"{name}.png").double()
    smooth = np.load(reference / "images" / "matlab_imresize_shared.npz")[f"{name}_down4_up4"]
    smooth = torch.from_numpy(smooth).permute(2, 0, 1)[None].clamp(0, 1)

    def off_centre_ratio(image):
        v = layer(image)
        off_centre = torch.cat([v[:, :24], v[:, 25:]], dim=1)
        return (off_centre.mean() / v[:, 24].mean()).item()

    natural, upscaled = off_centre_ratio(photo), off_centre_ratio(smooth)
    assert natural < 0.05, natural  # measured 0.011-0.035
    assert upscaled > 0.3, upscaled  # measured 0.41-0.42


def test_flat_image_has_finite_gradients():
    x = torch.full((1, 3, 9, 9), 0.5, dtype=torch.float64, requires_grad=True)
    make_input()(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_vn_sc_needs_rgb_and_checks_its_config():
    registry = mgsr.default_registry()
    cls = registry.get("discriminator_input", "vn_sc")
    with pytest.raises(ValueError, match="3 channels"):
        cls(cls.Config(), channels=1)
    with pytest.raises(ValueError, match="odd"):
        cls.Config(window=6)
    with pytest.raises(ValueError, match="sigma"):
        cls.Config(sigma=0.0)


def test_rgb_input_is_the_colour_image():
    x = torch.rand(2, 3, 5, 6)
    layer = make_input("rgb")
    assert layer.out_channels == 3
    assert torch.equal(layer(x), x)
