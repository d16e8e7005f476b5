"""The contextual loss as the reference CX implementation computes it: VGG-19 "conv3_4" after its ReLU,
features centred on the target's mean over batch, height and width; the per-image choices stay selectable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mgsr
from mgsr.assembly.build import part_builder
from mgsr.errors import RecipeError
from mgsr.ops.contextual import contextual_similarity
from mgsr.recipe import make_converter
from mgsr.specs import LossSpec


def naive_cx(x: np.ndarray, y: np.ndarray, centre: np.ndarray, h: float = 0.5, eps: float = 1e-5) -> float:
    """CX of one item, written out loop by loop from Mechrez et al.'s definition, centred on ``centre``."""
    xs = [v / np.linalg.norm(v) for v in (x.reshape(x.shape[0], -1).T - centre)]
    ys = [v / np.linalg.norm(v) for v in (y.reshape(y.shape[0], -1).T - centre)]
    d = np.array([[1.0 - float(a @ b) for b in ys] for a in xs])
    rel = d / (d.min(axis=1, keepdims=True) + eps)
    w = np.exp((1.0 - rel) / h)
    cx = w / w.sum(axis=1, keepdims=True)
    return float(cx.max(axis=0).mean())


def two_images_with_different_means():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    shift = torch.tensor([2.0, -1.5], dtype=torch.float64).view(2, 1, 1, 1)
    return x + shift, y + shift + 0.3 * torch.randn(2, 5, 1, 1, generator=g, dtype=torch.float64)


def test_batch_centring_is_the_reference_and_differs_from_per_image():
    x, y = two_images_with_different_means()
    batch_mean = y.mean(dim=(0, 2, 3)).numpy()
    expected_batch = [naive_cx(x[i].numpy(), y[i].numpy(), batch_mean) for i in range(2)]
    expected_image = [naive_cx(x[i].numpy(), y[i].numpy(), y[i].mean(dim=(1, 2)).numpy()) for i in range(2)]
    got_batch = contextual_similarity(x, y).numpy()  # the default
    got_image = contextual_similarity(x, y, centre="image").numpy()
    np.testing.assert_allclose(got_batch, expected_batch, rtol=1e-9)
    np.testing.assert_allclose(got_image, expected_image, rtol=1e-9)
    assert np.abs(got_batch - got_image).max() > 1e-3
    # one image: the two centrings are the same thing
    torch.testing.assert_close(contextual_similarity(x[:1], y[:1]), contextual_similarity(x[:1], y[:1], centre="image"))
    with pytest.raises(ValueError, match="centre must be one of batch, image"):
        contextual_similarity(x, y, centre="channel")


def build_loss(**options):
    registry = mgsr.default_registry()
    spec = make_converter(registry).structure({"type": "contextual", **options}, LossSpec)
    return part_builder(registry)(spec)


def test_the_loss_defaults_to_the_reference_and_keeps_per_image_selectable():
    offline = {"type": "vgg19", "pretrained": False}  # random weights: no ImageNet file in tests
    torch.manual_seed(0)
    reference = build_loss(features=offline)
    per_image = build_loss(features=offline, centre="image")
    per_image.features.load_state_dict(reference.features.state_dict())
    assert (reference.config.centre, reference.features.config.layer) == ("batch", "relu3_4")
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 32, generator=g)
    target[1] = target[1] * 0.3 + 0.6  # two images of clearly different means
    output = (target + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    a, b = reference.level_term(output, target), per_image.level_term(output, target)
    assert abs(float(a) - float(b)) > 1e-4
    with pytest.raises(RecipeError, match="centre"):
        mgsr.load_recipe({"model": {}, "losses": [{"type": "contextual", "centre": "pixel"}]})


def test_relu3_4_is_after_the_relu_and_conv3_4_before_it():
    vgg = mgsr.default_registry().get("feature_extractor", "vgg19")
    torch.manual_seed(0)
    after = vgg(vgg.Config(pretrained=False))  # default layer: relu3_4
    before = vgg(vgg.Config(layer="conv3_4", pretrained=False))
    before.load_state_dict(after.state_dict())
    x = torch.rand(1, 3, 24, 24)
    f_after, f_before = after(x), before(x)
    assert after.config.layer == "relu3_4" and (f_after >= 0).all()
    assert (f_before < 0).any()
    torch.testing.assert_close(f_after, f_before.clamp_min(0))
