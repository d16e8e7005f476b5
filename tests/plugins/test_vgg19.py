"""The vgg19 feature extractor: torchvision's layout, offline loading with the hash check, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mgsr
from mgsr.errors import WeightsError

#: torchvision's vgg19().features indices of the 16 convolutions (the rest are ReLU and max-pool)
TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def vgg19():
    return mgsr.default_registry().get("feature_extractor", "vgg19")


def random_state_dict(vgg19, layer: str = "conv1_2") -> dict[str, torch.Tensor]:
    """A torchvision-style state dict (keys features.N.weight/bias) for the layers up to ``layer``, random values."""
    torch.manual_seed(1)
    return {k: torch.randn_like(v) for k, v in vgg19(vgg19.Config(layer=layer, pretrained=False)).state_dict().items()}


def save(state: dict, folder: Path, name: str) -> Path:
    path = folder / name
    torch.save(state, path)
    return path


def test_layers_use_torchvision_indices(vgg19):
    full = vgg19(vgg19.Config(layer="pool5", pretrained=False))
    assert list(full.state_dict()) == [f"features.{i}.{p}" for i in TORCHVISION_CONVS for p in ("weight", "bias")]
    conv3_4 = vgg19(vgg19.Config(pretrained=False))
    assert list(conv3_4.state_dict())[-1] == "features.16.bias"
    assert conv3_4(torch.rand(1, 3, 16, 20)).shape == (1, 256, 4, 5)


def test_local_file_loads_and_input_is_imagenet_normalised(vgg19, tmp_path):
    state = random_state_dict(vgg19)
    state["classifier.0.weight"] = torch.zeros(2, 2)  # keys of layers not built are ignored
    path = save(state, tmp_path, "my_vgg.pth")
    extractor = vgg19(vgg19.Config(layer="conv1_2", weights=str(path)))
    x = torch.rand(1, 3, 6, 7)
    normalised = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    h = F.relu(F.conv2d(normalised, state["features.0.weight"], state["features.0.bias"], padding=1))
    expected = F.conv2d(h, state["features.2.weight"], state["features.2.bias"], padding=1)
    torch.testing.assert_close(extractor(x), expected)
    assert not any(p.requires_grad for p in extractor.parameters())
    x.requires_grad_(True)
    extractor(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_hash_in_the_file_name_is_checked(vgg19, tmp_path):
    state = random_state_dict(vgg19)
    data = save(state, tmp_path, "tmp.pth").read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    good = tmp_path / f"vgg19-{prefix}.pth"
    good.write_bytes(data)
    vgg19(vgg19.Config(layer="conv1_2", weights=str(good)))
    bad = tmp_path / "vgg19-00000000.pth" if prefix != "00000000" else tmp_path / "vgg19-11111111.pth"
    bad.write_bytes(data)
    with pytest.raises(WeightsError, match="SHA-256 .* does not start with"):
        vgg19(vgg19.Config(layer="conv1_2", weights=str(bad)))


def test_without_a_file_the_error_says_where_to_put_it(vgg19, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(WeightsError) as info:
        vgg19(vgg19.Config())
    message = str(info.value)
    assert str(expected) in message and "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "pretrained = false" in message
    # a file in the hub cache is found there, and must match the hash in its name
    expected.parent.mkdir(parents=True)
    save(random_state_dict(vgg19), expected.parent, expected.name)
    with pytest.raises(WeightsError, match="does not start with 'dcbb9e9d'"):
        vgg19(vgg19.Config())


def test_bad_files_are_weights_errors(vgg19, tmp_path):
    def load(path):
        return vgg19(vgg19.Config(layer="conv1_2", weights=str(path)))

    with pytest.raises(WeightsError, match="not found"):
        load(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load(garbage)
    with pytest.raises(WeightsError, match="not a state dict"):
        load(save([torch.zeros(1)], tmp_path, "list.pth"))
    state = random_state_dict(vgg19)
    with pytest.raises(WeightsError, match="lacks features.2.weight"):
        load(save({k: v for k, v in state.items() if not k.startswith("features.2.")}, tmp_path, "short.pth"))
    state["features.2.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(WeightsError, match=r"features.2.weight has shape \(64, 64, 1, 1\)"):
        load(save(state, tmp_path, "shape.pth"))


def test_config_refuses_contradictions_and_unknown_layers(vgg19):
    with pytest.raises(ValueError, match="pretrained = false"):
        vgg19.Config(pretrained=False, weights="x.pth")
    with pytest.raises(ValueError, match="unknown VGG-19 layer 'conv6_1'"):
        vgg19.Config(layer="conv6_1")
