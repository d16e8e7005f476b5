"""The ``lpips`` metric: torchmetrics' numbers on the same weights, weights fetched through mgsr.io.hub."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.cli import main
from mgsr.errors import DownloadError
from mgsr.training.validation import Validator

from ..helpers import import_torchvision
from ..http_helpers import hashed_name

TINY = {
    "features": 4,
    "classic_upscaler": {"type": "learned_bicubic"},
    "noise": {"type": "gaussian"},
    **{
        part: {"type": "dense", "layers": 1, "growth": 2, "bottleneck": 1}
        for part in ("analysis", "upscaling", "downscaling", "synthesis")
    },
}
#: torchvision's AlexNet ``features`` index of each convolution -> torchmetrics' slice holding it
_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def lpips_class():
    return mgsr.default_registry().get("metric", "lpips")


def random_lpips(shave: int = 0):
    cls = lpips_class()
    torch.manual_seed(0)
    return cls(cls.Config(pretrained=False, shave=shave))


def backbone_state(metric) -> dict[str, torch.Tensor]:
    """The metric's convolutions under torchvision AlexNet's names."""
    return {
        f"features.{index}.{p}": getattr(metric.convs[i], p).clone()
        for i, index in enumerate(_SLICES)
        for p in ("weight", "bias")
    }


def torchmetrics_lpips():
    """torchmetrics' LPIPS network (random backbone: nothing downloaded); the test extra installs it."""
    import_torchvision()
    from torchmetrics.functional.image.lpips import _LPIPS

    return _LPIPS(pretrained=True, net="alex", pnet_rand=True)


def test_equals_torchmetrics_on_the_same_weights():
    """Same random backbone, the authors' linear layers (shipped in torchmetrics): same distance per image."""
    reference = torchmetrics_lpips()
    ours = random_lpips()
    linear = Path(__import__("torchmetrics").__file__).parent / "functional" / "image" / "lpips_models" / "alex.pth"
    ours.load_linear(linear)
    net = {f"slice{_SLICES[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v for k, v in backbone_state(ours).items()}
    reference.net.load_state_dict(net)
    g = torch.Generator().manual_seed(5)
    a, b = torch.rand(3, 3, 48, 40, generator=g), torch.rand(3, 3, 48, 40, generator=g)
    b[0] = a[0]
    expected = reference(a, b, normalize=True).flatten()
    got = ours.distance(a, b)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert got[0] == 0 and bool((got[1:] > 0).all())


def test_scores_uint8_images_shaved_and_refuses_tiny_ones():
    metric = random_lpips(shave=4)
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
    noisy = np.clip(hr.astype(int) + rng.integers(-30, 31, hr.shape), 0, 255).astype(np.uint8)
    border_only = hr.copy()
    border_only[:4] = 0
    assert metric.score(hr, hr) == 0 and metric.score(border_only, hr) == 0  # the shaved border does not count
    assert metric.score(noisy, hr) > 0
    with pytest.raises(ValueError, match="at least 32x32"):
        metric.score(hr[:36], hr[:36])


@pytest.fixture
def served(server, online, monkeypatch, tmp_path):
    """Random LPIPS weights served by a local HTTP server through the URL overrides: (file names, source metric)."""
    source = random_lpips()
    files = {}
    for key, state in (
        ("backbone", backbone_state(source)),
        ("linear", {f"lin{k}.model.1.weight": lin.weight.clone() for k, lin in enumerate(source.lins)}),
    ):
        torch.save(state, tmp_path / f"{key}.pth")
        data = (tmp_path / f"{key}.pth").read_bytes()
        files[key] = hashed_name(key, data, "pth")
        server.files[files[key]] = data
    monkeypatch.setenv("MGSR_LPIPS_BACKBONE_URL", server.url(files["backbone"]))
    monkeypatch.setenv("MGSR_LPIPS_LINEAR_URL", server.url(files["linear"]))
    return files, source


def test_weights_come_through_the_hub_once_and_never_offline(served, server, online, monkeypatch):
    files, source = served
    cls = lpips_class()
    monkeypatch.setenv("MGSR_OFFLINE", "1")
    with pytest.raises(DownloadError, match="MGSR_OFFLINE=1 forbids"):
        cls(cls.Config())
    monkeypatch.delenv("MGSR_OFFLINE")
    fetched = cls(cls.Config())
    for ours, theirs in zip(fetched.state_dict().values(), source.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)
    cls(cls.Config())
    assert sorted(server.hits) == sorted(files.values())  # cached: the second build asks nothing
    assert sorted(p.name for p in online.iterdir()) == sorted(files.values())


def test_sweep_gains_an_lpips_column_and_panel(served, hr_dir, tmp_path):
    prefix = tmp_path / "pd"
    args = ["sweep", "--model", "pirm-r3", "--hr", str(hr_dir), "--noise", "0,1", "-o", str(prefix), "-q"]
    assert main([*args, "--metric", "lpips"]) == 0
    table = [line.split(",") for line in (tmp_path / "pd.csv").read_text().splitlines() if not line.startswith("#")]
    assert table[0] == ["noise", "rmse", "psnr", "ssim", "niqe", "lpips"]
    assert all(float(row[-1]) > 0 for row in table[1:])
    with Image.open(tmp_path / "pd.png") as two_panels:
        assert main([*args, "-o", str(tmp_path / "plain")]) == 0
        with Image.open(tmp_path / "plain.png") as one_panel:
            assert two_panels.width == 2 * one_panel.width  # RMSE against NIQE, and against LPIPS


def test_training_validation_scores_lpips_when_the_recipe_asks(served):
    spec = mgsr.load_recipe({"model": TINY, "training": {"validate_metrics": ["lpips"]}})
    generator = mgsr.build_generator(spec.model).eval()
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="leaves out 'niqe'"):  # too small for NIQE's 96x96 block
        validator = Validator([("a", image)], 4, mgsr.default_registry(), extra=spec.training.validate_metrics)
    scores = validator(generator)
    assert all(scores[f"val/lpips_{k}"] > 0 for k in ("w0", "w1", "bicubic"))
    assert "val/lpips_w0" not in Validator([("a", image)], 4, mgsr.default_registry())(generator)  # opt-in
