"""mgsr.integrations.spandrel and malformed state dicts (issue 29): a tensor of the wrong rank is a WeightsError
naming it and the shape it should have, not a ValueError from unpacking its shape."""

from __future__ import annotations

import pytest
import torch

from mgsr.errors import WeightsError
from mgsr.model.weights import bundled_path, read_weights

from ..helpers import import_torchvision


@pytest.fixture
def loader():
    """spandrel's ModelLoader over a copy of its registry with G-MGBP installed (the process-wide one untouched)."""
    import_torchvision()
    import spandrel

    import mgsr.integrations.spandrel as ms

    registry = spandrel.MAIN_REGISTRY.copy()
    ms.install(registry)
    return spandrel.ModelLoader(registry=registry)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("analysis.conv_in.weight", torch.zeros(1296), "(features, channels, kh, kw)"),
        ("upscaling.conv.weight", torch.zeros(8, 8), "(2 x features + noise channels, in, kh, kw)"),
        ("synthesis.block.layers.0.conv.weight", torch.zeros(4), "(out, in, kh, kw)"),
        ("analysis.block.layers.0.squeeze.weight", torch.zeros(4, 4), "(bottleneck x growth, in, 1, 1)"),
    ],
)
def test_a_tensor_of_the_wrong_rank_is_named_with_its_expected_shape(loader, key, value, expected):
    state = dict(read_weights(bundled_path("pirm-r3"))[0])
    state[key] = value
    with pytest.raises(WeightsError) as caught:
        loader.load_from_state_dict(state)
    message = str(caught.value)
    assert f"{key} has shape {tuple(value.shape)}, expected {expected}" in message, message
