"""The four loss terms of eq. 7: values, which outputs they read, and gradient checks."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from torch.autograd import gradcheck

import mgsr
from mgsr import hookimpl
from mgsr.assembly.build import part_builder
from mgsr.interfaces import Loss
from mgsr.io.images import read_rgb
from mgsr.ops.contextual import contextual_similarity
from mgsr.ops.imresize import imresize, s_down
from mgsr.recipe import make_converter
from mgsr.registry import Registry, make_plugin_manager
from mgsr.specs import DiscriminatorSpec, LossSpec

OFFLINE_VGG = {"type": "vgg19", "layer": "relu3_4", "pretrained": False}


def build_loss(name: str, **options):
    registry = mgsr.default_registry()
    spec = make_converter(registry).structure({"type": name, **options}, LossSpec)
    return part_builder(registry)(spec)


def tiny_discriminator():
    registry = mgsr.default_registry()
    table = {
        "type": "multiscale_recursive",
        "features": 4,
        **{
            part: {"type": "dense", "layers": 1, "growth": 2, "bottleneck": 2}
            for part in ("analysis", "pooling", "synthesis")
        },
    }
    return part_builder(registry)(make_converter(registry).structure(table, DiscriminatorSpec), channels=3)


def levels(*sizes, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, s, s, generator=g, dtype=dtype) for s in sizes]


# --- reconstruction and cycle ---------------------------------------------------------------------------


def test_l1_is_the_weighted_sum_of_per_level_mean_errors_on_its_noise_amplitude():
    targets, clean, noisy = levels(4, 8), levels(4, 8, seed=1), levels(4, 8, seed=2)
    loss = build_loss("l1", weight=10.0)  # reads W = 0 by default
    expected = 10 * sum((y - x).abs().mean() for y, x in zip(clean, targets, strict=True))
    torch.testing.assert_close(loss({0.0: clean, 1.0: noisy}, targets), expected)
    with pytest.raises(ValueError, match="W = 0.0"):
        loss({1.0: noisy}, targets)
    with pytest.raises(ValueError, match="one per level"):
        loss({0.0: clean[:1]}, targets)


def test_a_loss_is_zero_at_level_counts_outside_its_scales():
    targets, outputs = levels(4, 8), levels(4, 8, seed=1)
    loss = build_loss("l1", scales=[1])
    assert loss.active(1) and not loss.active(2)
    assert loss({0.0: outputs}, targets).item() == 0.0
    assert loss({0.0: outputs[:1]}, targets[:1]).item() > 0


def test_cycle_compares_every_downscale_down_to_the_input_and_reads_both_noise_amplitudes():
    targets = levels(8, 16)
    shift = 0.03
    shifted = [x + shift for x in targets]  # S_down keeps a constant offset: each of the 3 pairs (k, f) costs it
    loss = build_loss("cycle")
    assert loss.config.noise == (0.0, 1.0)
    torch.testing.assert_close(loss({0.0: shifted, 1.0: targets}, targets), torch.tensor(3 * shift))
    torch.testing.assert_close(loss({0.0: shifted, 1.0: shifted}, targets), torch.tensor(6 * shift))
    # detail that S_down removes costs (almost) nothing; the same detail in L1 costs a lot
    checker = 0.2 * (torch.arange(16).view(1, 1, 16, 1) + torch.arange(16).view(1, 1, 1, 16)).remainder(2) - 0.1
    detailed = [targets[0], targets[1] + checker]
    assert loss({0.0: detailed, 1.0: targets}, targets) < 0.1 * build_loss("l1")({0.0: detailed}, targets)


# --- adversarial ----------------------------------------------------------------------------------------


def test_gan_terms_are_the_standard_objectives_on_logits():
    torch.manual_seed(0)
    discriminator = tiny_discriminator()
    targets, fakes = levels(4, 8), levels(4, 8, seed=1)
    gan = build_loss("gan", weight=0.001)
    assert gan.config.noise == (1.0,)
    d_fake, d_real = discriminator(fakes), discriminator(targets)
    torch.testing.assert_close(
        gan({1.0: fakes}, targets, discriminator=discriminator), 0.001 * -torch.log(torch.sigmoid(d_fake)).mean()
    )
    torch.testing.assert_close(
        gan.discriminator_loss({1.0: fakes}, targets, discriminator=discriminator),
        -torch.log(torch.sigmoid(d_real)).mean() - torch.log(1 - torch.sigmoid(d_fake)).mean(),
    )
    with pytest.raises(ValueError, match="needs the discriminator"):
        gan({1.0: fakes}, targets)


def test_gan_stays_finite_where_log_of_probabilities_would_not_and_d_step_never_reaches_g():
    torch.manual_seed(0)
    discriminator = tiny_discriminator()
    with torch.no_grad():
        discriminator.synthesis.conv_out.bias += 1e4  # a discriminator sure that everything is real
    targets = levels(4, 8)
    fakes = [y.clone().requires_grad_(True) for y in levels(4, 8, seed=1)]
    gan = build_loss("gan")
    assert math.isinf(-torch.log(1 - torch.sigmoid(discriminator(fakes))).mean().item())
    d_loss = gan.discriminator_loss({1.0: fakes}, targets, discriminator=discriminator)
    assert torch.isfinite(d_loss) and d_loss.item() > 9e3
    d_loss.backward()
    assert all(y.grad is None for y in fakes)
    assert discriminator.synthesis.conv_out.bias.grad is not None


# --- contextual -----------------------------------------------------------------------------------------


def test_contextual_is_zero_for_identical_images_and_grows_with_distortion(reference):
    torch.manual_seed(0)
    loss = build_loss("contextual", features=OFFLINE_VGG)  # random VGG weights: no ImageNet file in CI
    x = read_rgb(reference / "images" / "coffee.png")[..., 50:114, 100:164]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    values = [loss({1.0: [(x + s * noise).clamp(0, 1)]}, [x]).item() for s in (0.0, 0.01, 0.03, 0.1, 0.3)]
    assert values[0] < 1e-4
    assert values == sorted(values) and values[-1] > 1.0, values
    blurred = [loss({1.0: [imresize(s_down(x, f), scale=float(f))]}, [x]).item() for f in (2, 4)]
    assert 0 < blurred[0] < blurred[1], blurred


def test_contextual_similarity_ignores_where_features_are():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 16, 5, 6, generator=g), torch.randn(2, 16, 4, 7, generator=g)
    shuffled = x.flatten(2)[:, :, torch.randperm(30, generator=g)].view_as(x)
    torch.testing.assert_close(contextual_similarity(shuffled, y), contextual_similarity(x, y))
    torch.testing.assert_close(contextual_similarity(x, x), torch.ones(2), atol=1e-4, rtol=0)
    assert (contextual_similarity(x, y) < 0.5).all()


def test_contextual_features_are_fixed():
    loss = build_loss("contextual", features=OFFLINE_VGG)
    assert not any(p.requires_grad for p in loss.parameters())


# --- gradient checks (float64, tiny) --------------------------------------------------------------------


def _check(loss, names_and_sizes, targets, **kwargs):
    """gradcheck of ``loss(outputs, targets)`` with respect to every output image."""
    flat = [y.clone().requires_grad_(True) for _, ys in names_and_sizes for y in ys]

    def run(*tensors):
        outputs, i = {}, 0
        for w, ys in names_and_sizes:
            outputs[w] = list(tensors[i : i + len(ys)])
            i += len(ys)
        return loss(outputs, targets, **kwargs)

    assert gradcheck(run, flat, eps=1e-6, atol=1e-6)


def test_gradcheck_l1():
    _check(build_loss("l1"), [(0.0, levels(2, 4, dtype=torch.float64, seed=1))], levels(2, 4, dtype=torch.float64))


def test_gradcheck_cycle():
    outputs = [(0.0, levels(4, 8, dtype=torch.float64, seed=1)), (1.0, levels(4, 8, dtype=torch.float64, seed=2))]
    _check(build_loss("cycle"), outputs, levels(4, 8, dtype=torch.float64))


def test_gradcheck_gan_for_both_players():
    torch.manual_seed(0)
    discriminator = tiny_discriminator().double()
    gan = build_loss("gan")
    targets = levels(4, 8, dtype=torch.float64)
    _check(gan, [(1.0, levels(4, 8, dtype=torch.float64, seed=1))], targets, discriminator=discriminator)
    fakes = {1.0: levels(4, 8, dtype=torch.float64, seed=1)}
    real = [x.clone().requires_grad_(True) for x in targets]
    assert gradcheck(lambda *r: gan.discriminator_loss(fakes, list(r), discriminator=discriminator), real, atol=1e-6)


def test_gradcheck_contextual():
    torch.manual_seed(0)
    loss = build_loss("contextual", features={"type": "vgg19", "layer": "relu2_1", "pretrained": False}).double()
    _check(loss, [(1.0, levels(6, dtype=torch.float64, seed=1))], levels(6, dtype=torch.float64))


def test_a_loss_config_must_subclass_loss_config():
    class Plain(Loss):
        name = "plain"

        @attrs.frozen
        class Config:
            weight: float = 1.0

        def term(self, outputs, targets, *, discriminator=None):
            return outputs[0].sum()

    class Plugin:
        @hookimpl
        def mgsr_losses(self):
            return [Plain]

    pm = make_plugin_manager(autoload=False)
    pm.register(Plugin(), name="plain")
    with pytest.warns(UserWarning, match="must subclass mgsr.interfaces.LossConfig"):
        registry = Registry.from_plugin_manager(pm)
    assert "plain" not in registry.names("loss")
