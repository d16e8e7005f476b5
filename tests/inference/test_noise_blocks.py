"""Inference noise per fixed block: any region is the crop of the whole map, whatever the tiling; the seed acts."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mgsr
from mgsr.inference.core import border_pad
from mgsr.inference.noise import NOISE_BLOCK, amplitude_region, noise_maps, noise_region
from mgsr.inference.pictures import super_resolve
from mgsr.interfaces import NoiseSource
from plugins.gaussian import GaussianNoise


def test_a_region_is_the_crop_of_the_whole_map():
    source = GaussianNoise(GaussianNoise.Config())
    whole = noise_region(source, 2, 1, 7, 1, (0, 150), (0, 131))
    assert whole.shape == (2, 1, 150, 131)
    for rows, cols in [((0, 1), (0, 1)), ((63, 65), (60, 131)), ((70, 150), (5, 129)), ((64, 128), (64, 128))]:
        part = noise_region(source, 2, 1, 7, 1, rows, cols)
        assert torch.equal(part, whole[..., rows[0] : rows[1], cols[0] : cols[1]]), (rows, cols)
    assert abs(whole.std().item() - 1) < 0.05  # unit draws
    others = [noise_region(source, 2, 1, s, j, (0, 150), (0, 131)) for s, j in ((8, 1), (7, 0))]
    for other in others:  # another seed or another level: another map
        assert (other - whole).abs().mean() > 0.5
    # blocks differ from each other (each has its own seed)
    assert not torch.equal(
        whole[..., :NOISE_BLOCK, :NOISE_BLOCK], whole[..., :NOISE_BLOCK, NOISE_BLOCK : 2 * NOISE_BLOCK]
    )


def test_amplitude_regions_equal_the_whole_resize():
    torch.manual_seed(0)
    padded = border_pad(torch.rand(1, 1, 13, 17), 4)
    for level in (0, 1, 2, 3):
        f = 1 << level
        whole = F.interpolate(padded, scale_factor=f, mode="bilinear", align_corners=False) if f > 1 else padded
        for rows, cols in [((0, 21 * f), (0, 25 * f)), ((5, 40), (3, 17)), ((21 * f - 9, 21 * f), (1, 2))]:
            rows, cols = (
                (min(rows[0], 21 * f - 1), min(rows[1], 21 * f)),
                (min(cols[0], 25 * f - 1), min(cols[1], 25 * f)),
            )
            part = amplitude_region(padded, level, rows, cols)
            torch.testing.assert_close(part, whole[..., rows[0] : rows[1], cols[0] : cols[1]], atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def r3():
    return mgsr.pretrained("pirm-r3")


def test_same_seed_same_image_whatever_the_tile_size(r3):
    rgb = np.random.default_rng(1).random((30, 26, 3)).astype(np.float32)
    mask = np.linspace(0, 1, 30 * 26, dtype=np.float32).reshape(30, 26)
    run = lambda **kw: super_resolve(r3, rgb, scale=4, noise=1.0, noise_map=mask, margin=24, **kw)  # noqa: E731
    whole = run(seed=4)
    for tile in (9, 17):
        np.testing.assert_allclose(run(seed=4, tile=tile), whole, atol=1e-4)
    assert np.abs(run(seed=5, tile=9) - whole).max() > 0.05


class Recording(NoiseSource):
    """A third-party source: uniform noise from the generator it is handed; records what it is asked."""

    name = "recording"

    @attrs.frozen
    class Config:
        pass

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config or self.Config())
        self.asked = []

    def sample(self, shape, *, generator=None, device=None, dtype=torch.float32):
        self.asked.append((tuple(shape), generator))
        return torch.rand(tuple(shape), generator=generator, device=device, dtype=dtype) * 2 - 1


def test_a_third_party_source_is_asked_for_blocks_with_their_generator():
    source = Recording()
    maps = noise_maps(source, (1, 2, 70, 10), 2, seed=3)
    assert [m.shape for m in maps] == [(1, 2, 70, 10), (1, 2, 140, 20)]
    assert all(
        shape == (1, 2, NOISE_BLOCK, NOISE_BLOCK) and isinstance(g, torch.Generator) for shape, g in source.asked
    )
    assert len(source.asked) == 2 + 3  # level 0: 2 block rows x 1 column; level 1: 3 x 1
    assert torch.equal(noise_maps(Recording(), (1, 2, 70, 10), 2, seed=3)[1], maps[1])


def test_a_source_returning_the_wrong_shape_is_named():
    class Wrong(Recording):
        def sample(self, shape, **kwargs):
            return torch.zeros(1, 1, 8, 8)

    with pytest.raises(ValueError, match="Wrong returned shape"):
        noise_region(Wrong(), 1, 1, 0, 0, (0, 4), (0, 4))


def test_noise_maps_are_the_draws_a_seed_makes(r3):
    x = torch.rand(1, 3, 20, 18, generator=torch.Generator().manual_seed(2))
    padded = border_pad(x, 2)
    explicit = noise_maps(r3.noise_source, (1, r3.noise_channels, *padded.shape[-2:]), 1, seed=11)
    seeded = mgsr.upscale_tensor(r3, x, scale=2, noise_amp=1.0, seed=11, tile=8)
    torch.testing.assert_close(
        mgsr.upscale_tensor(r3, x, scale=2, noise_amp=1.0, noise=explicit), seeded, atol=1e-4, rtol=0
    )
