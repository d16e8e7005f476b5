"""The multi-scale recursive discriminator: shared modules, gradients, and that it can learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mgsr
from mgsr.assembly.build import part_builder
from mgsr.io.images import read_rgb
from mgsr.ops.imresize import imresize, s_down
from mgsr.recipe import make_converter
from mgsr.specs import DiscriminatorSpec


def tiny_discriminator(input_layer: str = "vn_sc", features: int = 8):
    registry = mgsr.default_registry()
    table = {
        "type": "multiscale_recursive",
        "features": features,
        "input": {"type": input_layer},
        **{
            part: {"type": "dense", "layers": 1, "growth": 4, "bottleneck": 2}
            for part in ("analysis", "pooling", "synthesis")
        },
    }
    spec = make_converter(registry).structure(table, DiscriminatorSpec)
    return part_builder(registry)(spec, channels=3)


def pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``[Y_1..Y_L]`` from the finest image: each level the MATLAB 2x downscale of the next."""
    images = [x]
    for _ in range(levels - 1):
        images.insert(0, s_down(images[0], 2))
    return images


@pytest.mark.parametrize("input_layer", ["vn_sc", "rgb"])
def test_one_set_of_parameters_serves_every_level_count_and_all_of_them_learn(input_layer):
    torch.manual_seed(0)
    discriminator = tiny_discriminator(input_layer)
    parameters = dict(discriminator.named_parameters())
    for levels in (1, 2, 3):
        discriminator.zero_grad()
        logits = discriminator(pyramid(torch.rand(2, 3, 4 << levels, 4 << levels), levels))
        assert logits.shape == (2,)
        logits.sum().backward()
        without = [name for name, p in parameters.items() if p.grad is None or not p.grad.abs().sum() > 0]
        assert without == [], f"L={levels}: no gradient reaches {without}"
    # the default (paper) configuration: the same count whatever L, and of the generator's order
    full = part_builder(mgsr.default_registry())(DiscriminatorSpec("multiscale_recursive"), channels=3)
    count = sum(p.numel() for p in full.parameters())
    assert 200_000 < count < 300_000, count


def test_pyramid_shapes_are_checked():
    discriminator = tiny_discriminator()
    with pytest.raises(ValueError, match="twice the size"):
        discriminator([torch.rand(1, 3, 8, 8), torch.rand(1, 3, 12, 16)])
    with pytest.raises(ValueError, match="expected"):
        discriminator([torch.rand(1, 1, 8, 8)])
    with pytest.raises(ValueError, match="at least one"):
        discriminator([])


def test_a_few_steps_separate_real_patches_from_blurred_ones(reference):
    """Real 2x/4x crops against the same crops blurred (bicubic down and up): trained on two photos, tested on a
    third."""
    torch.manual_seed(0)
    draw = torch.Generator().manual_seed(0)
    photos = [read_rgb(reference / "images" / f"{name}.png") for name in ("astronaut", "coffee", "chelsea")]

    def crops(images, count, size=32):
        out = []
        for _ in range(count):
            image = images[int(torch.randint(len(images), (1,), generator=draw))]
            i = int(torch.randint(image.shape[-2] - size + 1, (1,), generator=draw))
            j = int(torch.randint(image.shape[-1] - size + 1, (1,), generator=draw))
            out.append(image[..., i : i + size, j : j + size])
        return torch.cat(out)

    def blur(x):
        return imresize(s_down(x, 2), scale=2.0)

    discriminator = tiny_discriminator()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        real = crops(photos[:2], 8)
        loss = (
            F.softplus(-discriminator(pyramid(real, 2))).mean()
            + F.softplus(discriminator(pyramid(blur(real), 2))).mean()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 < losses[0]  # log 4 = 1.386 at chance
    with torch.no_grad():
        real = crops(photos[2:], 32)
        real_logits, fake_logits = discriminator(pyramid(real, 2)), discriminator(pyramid(blur(real), 2))
    assert (real_logits > fake_logits).float().mean() >= 0.95
