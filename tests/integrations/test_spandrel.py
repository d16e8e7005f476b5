"""mgsr.integrations.spandrel: spandrel's ModelLoader loads mgsr weights files and its descriptor upscales as mgsr
does."""

from __future__ import annotations

import pytest
import torch

import mgsr
from mgsr.errors import MgsrError
from mgsr.model.weights import ModelCard, bundled_path, save_generator
from mgsr.recipe import structure_model_spec

from ..helpers import import_torchvision


def _spandrel():
    """spandrel (the test extra installs it; it imports torchvision, see tests.helpers.import_torchvision)."""
    import_torchvision()
    import spandrel

    return spandrel


@pytest.fixture
def registry():
    """A copy of spandrel's main registry, so tests never change the process-wide one."""
    spandrel = _spandrel()
    return spandrel.MAIN_REGISTRY.copy()


@pytest.mark.compat
def test_bundled_r3_loads_by_file_and_upscales_as_mgsr(registry):
    spandrel = _spandrel()
    import mgsr.integrations.spandrel as ms

    ms.install(registry)
    descriptor = spandrel.ModelLoader(registry=registry).load_from_file(bundled_path("pirm-r3"))
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (4, 3, 3)
    assert descriptor.tags == ["pirm-r3", "W=1"]  # the card's name and W, though spandrel drops the header
    lr = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    expected = mgsr.upscale_tensor(mgsr.pretrained("pirm-r3"), lr, scale=4, noise_amp=1.0).clamp(0, 1)
    torch.testing.assert_close(descriptor(lr), expected, atol=1e-5, rtol=0)


def test_other_files_get_their_architecture_from_the_weights(registry, tmp_path):
    spandrel = _spandrel()
    import mgsr.integrations.spandrel as ms

    table = {
        "features": 8,
        "channels": 3,
        "noise_channels": 2,
        "classic_upscaler": {"type": "learned_bicubic"},
        "noise": {"type": "gaussian"},
        **{
            part: {"type": "dense", "layers": 2, "growth": 4, "bottleneck": 2, "kernel_size": 3}
            for part in ("analysis", "upscaling", "downscaling", "synthesis")
        },
    }
    spec = structure_model_spec(table)
    torch.manual_seed(0)
    generator = mgsr.build_generator(spec).eval()
    torch.nn.init.normal_(generator.synthesis.conv_out.weight, std=0.05)  # not the bicubic identity it starts as
    path = save_generator(tmp_path / "mine.safetensors", generator, spec, ModelCard("mine", 0.3))
    assert ms.infer_model_table(generator.state_dict()) == table

    ms.install(registry, scale=2, noise=0.5)
    descriptor = spandrel.ModelLoader(registry=registry).load_from_file(path)
    assert descriptor.scale == 2 and "W=0.5" in descriptor.tags
    lr = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(2))
    expected = mgsr.upscale_tensor(generator, lr, scale=2, noise_amp=0.5).clamp(0, 1)
    torch.testing.assert_close(descriptor(lr), expected, atol=1e-5, rtol=0)


def test_install_again_is_a_no_op_and_other_settings_an_error(registry):
    _spandrel()
    import mgsr.integrations.spandrel as ms

    ms.install(registry)
    ms.install(registry)
    assert len([a for a in registry if a.architecture.id == ms.ARCH_ID]) == 1
    with pytest.raises(MgsrError, match="copy"):
        ms.install(registry, scale=8)
    with pytest.raises(ValueError, match="power of two"):
        ms.GMGBPArchitecture(scale=3)
