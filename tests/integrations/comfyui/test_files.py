"""mgsr.integrations.comfyui.files: which files of upscale_models the node lists, and G-MGBP for the core
loader with the card of the file a state dict came from."""

from __future__ import annotations

import logging
import shutil

import attrs
import pytest
import torch
from safetensors.torch import save_file

import mgsr
from mgsr.assembly.loading import load_generator
from mgsr.errors import WeightsError
from mgsr.model.weights import bundled_path, read_weights, save_generator

from ...helpers import import_torchvision


def _files():
    """The files module, which imports spandrel (and so torchvision: tests.helpers.import_torchvision)."""
    import_torchvision()
    from mgsr.integrations.comfyui import files

    return files


@pytest.fixture
def folder(tmp_path):
    """An upscale_models folder: a copy of pirm-r3, a trained-like file (R1's weights, its own card: W 0.02, no
    curve), a safetensors file mgsr did not write, and a text file."""
    shutil.copyfile(bundled_path("pirm-r3"), tmp_path / "pirm-r3.safetensors")
    mine = load_generator("pirm-r1")
    card = attrs.evolve(mine.card, name="mine", default_noise=0.02, curve=None)
    save_generator(tmp_path / "mine.safetensors", mine, mine.spec, card)
    save_file({"weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "notes.txt").write_text("not a model")
    return tmp_path


def test_the_node_lists_bundled_models_then_mgsr_files_only(folder):
    files = _files()
    models = files.UpscaleModels.in_folder(folder)
    assert models.choices() == ["pirm-r1", "pirm-r2", "pirm-r3", "mine.safetensors", "pirm-r3.safetensors"]
    assert models.resolve("pirm-r2") == "pirm-r2" and models.resolve("mine.safetensors") == folder / "mine.safetensors"
    (folder / "mine.safetensors").unlink()
    with pytest.raises(WeightsError, match="model 'mine.safetensors' is neither a bundled model.*refresh the page"):
        models.resolve("mine.safetensors")


def test_the_core_loader_gets_the_files_own_card_and_w(folder):
    files = _files()
    import spandrel

    registry = spandrel.MAIN_REGISTRY.copy()
    assert files.install(files.UpscaleModels.in_folder(folder), registry) is True
    assert files.install(files.UpscaleModels.in_folder(folder), registry) is False  # once
    state, _ = read_weights(folder / "mine.safetensors")  # what ComfyUI's loader hands spandrel: tensors only
    descriptor = spandrel.ModelLoader(registry=registry).load_from_state_dict(state)
    assert descriptor.tags == ["mine", "W=0.02"]  # the file's card; its tensors alone are pirm-r1 (W 0.0632)
    lr = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    expected = mgsr.upscale_tensor(load_generator("pirm-r1"), lr, scale=4, noise_amp=0.02).clamp(0, 1)
    torch.testing.assert_close(descriptor(lr), expected, atol=1e-5, rtol=0)
    # a state dict from elsewhere still loads, as mgsr.integrations.spandrel loads it (bundled weights by their bytes)
    r2, _ = read_weights(bundled_path("pirm-r2"))
    assert spandrel.ModelLoader(registry=registry).load_from_state_dict(r2).tags == ["pirm-r2", "W=0.275"]


def test_an_earlier_registration_is_kept_and_said(folder, caplog):
    files = _files()
    import spandrel

    import mgsr.integrations.spandrel

    registry = spandrel.MAIN_REGISTRY.copy()
    mgsr.integrations.spandrel.install(registry)
    with caplog.at_level(logging.WARNING, logger="mgsr.integrations.comfyui"):
        assert files.install(files.UpscaleModels.in_folder(folder), registry) is False
    assert "already registered with spandrel by another custom node" in caplog.text
