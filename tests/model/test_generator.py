"""G-MGBP behaviour that does not need reference data."""

from __future__ import annotations

import pytest
import torch

import mgsr
from mgsr.inference.core import levels_for

from ..conftest import RECIPES


def test_r3_recipe_has_281084_parameters():
    generator = mgsr.build(mgsr.load_recipe(RECIPES / "pirm_r3.toml")).generator
    assert sum(p.numel() for p in generator.parameters()) == 281_084


@pytest.mark.parametrize("recipe", ["pirm_r1.toml", "pirm_r2.toml", "pirm_r3.toml"])
def test_paper_recipes_load_bundled_weights(recipe):
    """The recipes describe exactly the architecture of the release: its weights load with no mismatch."""
    from mgsr.model.weights import load_weights_into

    built = mgsr.build(RECIPES / recipe)
    load_weights_into(built.generator, "pirm-" + recipe.removesuffix(".toml").split("_")[1])


@pytest.fixture(scope="module")
def r3():
    return mgsr.pretrained("pirm-r3")


def test_every_level_output_and_shapes(r3):
    x = torch.rand(1, 3, 6, 7)
    outs = r3(x, 3)
    assert [tuple(o.shape[-2:]) for o in outs] == [(12, 14), (24, 28), (48, 56)]


def test_lower_levels_do_not_depend_on_higher_ones(r3):
    """Y_1 of a 3-level run is the 1-level output: training's multi-scale losses rely on it."""
    x = torch.rand(1, 3, 8, 8)
    z = [torch.randn(1, 1, 8 << j, 8 << j) for j in range(3)]
    with torch.no_grad():
        three = r3(x, 3, noise_amp=1.0, noise=z)
        one = r3(x, 1, noise_amp=1.0, noise=z[:1])
    torch.testing.assert_close(three[0], one[0])


def test_w0_ignores_noise_and_seed(r3):
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        a = r3(x, 2, noise_amp=0.0, generator=torch.Generator().manual_seed(1))[-1]
        b = r3(x, 2, noise_amp=0.0, generator=torch.Generator().manual_seed(2))[-1]
    assert torch.equal(a, b)


def test_seed_reproduces_and_noise_changes_output(r3):
    x = torch.rand(1, 3, 8, 8)
    run = lambda seed, w=1.0: mgsr.upscale_tensor(r3, x, scale=4, noise_amp=w, seed=seed)  # noqa: E731
    assert torch.equal(run(3), run(3))
    assert (run(3) - run(4)).abs().max() > 1e-3
    assert (run(3, 1.0) - run(3, 0.0)).abs().max() > 1e-3


def test_per_level_and_map_amplitudes_match_scalar(r3):
    x = torch.rand(1, 3, 8, 8)
    z = [torch.randn(1, 1, 8 << j, 8 << j) for j in range(2)]
    with torch.no_grad():
        scalar = r3(x, 2, noise_amp=0.5, noise=z)[-1]
        listed = r3(x, 2, noise_amp=[0.5, 0.5], noise=z)[-1]
        mapped = r3(x, 2, noise_amp=[torch.full((1, 1, 8, 8), 0.5), torch.full((1, 1, 16, 16), 0.5)], noise=z)[-1]
        other = r3(x, 2, noise_amp=[0.0, 0.5], noise=z)[-1]
    torch.testing.assert_close(listed, scalar)
    torch.testing.assert_close(mapped, scalar)
    assert (other - scalar).abs().max() > 1e-4


def test_explicit_noise_generator_is_the_last_level_with_draws_and_w_as_inputs(r3):
    """The form traced for ONNX and OpenVINO: z_j and a W per level in, the generator's last level out."""
    from mgsr.model.generator import ExplicitNoiseGenerator

    x = torch.rand(1, 3, 6, 7)
    z = r3.draw_noise(x, 2, torch.Generator().manual_seed(4))
    w = torch.tensor([0.25, 1.0])
    expected = r3(x, 2, noise_amp=[0.25, 1.0], noise=z)[-1]
    torch.testing.assert_close(ExplicitNoiseGenerator(r3, 2)(x, *z, w), expected, rtol=0, atol=0)
    assert not torch.equal(ExplicitNoiseGenerator(r3, 2)(x, *z, w.flip(0)), expected)  # W is per level, in order


def test_bad_arguments_are_refused(r3):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="one per level"):
        r3(x, 2, noise_amp=[1.0])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        r3(torch.rand(1, 1, 8, 8), 1)
    with pytest.raises(ValueError, match="noise map 0"):
        r3(x, 1, noise_amp=1.0, noise=[torch.randn(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="power of two"):
        levels_for(3)


def test_untrained_generator_is_its_classic_upscaler():
    """The zero-initialised output conv makes training start from the (learned-)bicubic baseline."""
    generator = mgsr.build(RECIPES / "pirm_r3.toml").generator
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        outs = generator(x, 2, noise_amp=1.0)
        up = generator.classic_upscaler
        torch.testing.assert_close(outs[0], up(x))
        torch.testing.assert_close(outs[1], up(up(x)))


def test_gradients_reach_every_parameter():
    generator = mgsr.build(RECIPES / "pirm_r3.toml").generator
    with torch.no_grad():  # past the first step: the zero-initialised output conv has moved
        torch.nn.init.normal_(generator.synthesis.conv_out.weight, std=0.01)
    x = torch.rand(2, 3, 8, 8)
    outs = generator(x, 2, noise_amp=1.0, generator=torch.Generator().manual_seed(0))
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in generator.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_frozen_classic_upscaler_gets_no_gradient():
    recipe = mgsr.load_recipe(RECIPES / "pirm_r3.toml")
    import attrs

    model = attrs.evolve(
        recipe.model,
        classic_upscaler=attrs.evolve(
            recipe.model.classic_upscaler, config=attrs.evolve(recipe.model.classic_upscaler.config, trainable=False)
        ),
    )
    generator = mgsr.build_generator(model)
    assert not generator.classic_upscaler.weight.requires_grad


def test_tiny_inputs_upscale(r3):
    for h, w in [(1, 1), (2, 3)]:
        out = mgsr.upscale_tensor(r3, torch.rand(1, 3, h, w), scale=4, seed=0)
        assert out.shape == (1, 3, 4 * h, 4 * w)
        assert torch.isfinite(out).all()


def test_gaussian_source_seed_config_and_std():
    from mgsr_plugins.gaussian import GaussianNoise

    a = GaussianNoise(GaussianNoise.Config(seed=5)).sample((2, 1, 3, 3))
    b = GaussianNoise(GaussianNoise.Config(seed=5)).sample((2, 1, 3, 3))
    c = GaussianNoise(GaussianNoise.Config(seed=6)).sample((2, 1, 3, 3))
    assert torch.equal(a, b) and not torch.equal(a, c)
    wide = GaussianNoise(GaussianNoise.Config(std=3.0)).sample((20000,), generator=torch.Generator().manual_seed(0))
    assert abs(wide.std().item() - 3.0) < 0.1
