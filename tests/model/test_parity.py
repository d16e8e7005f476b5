"""The authors' released weights in our generator reproduce the outputs of their code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mgsr
from mgsr.model.official import import_official
from mgsr.model.weights import BUNDLED

from ..conftest import REFERENCE

CASES = (
    [c["case"] for c in json.loads((REFERENCE / "official-parity" / "index.json").read_text())]
    if (REFERENCE / "official-parity" / "index.json").is_file()
    else ["<reference data missing>"]
)


@pytest.mark.compat
@pytest.mark.parametrize("case", CASES)
def test_release_outputs_reproduced(reference, case):
    data = np.load(reference / "official-parity" / f"{case}.npz")
    index = {c["case"]: c for c in json.loads((reference / "official-parity" / "index.json").read_text())}
    model = mgsr.pretrained("pirm-" + index[case]["model"].lower())
    factor = int(data["factor"])
    draws = [torch.from_numpy(data[k]) for k in sorted(k for k in data.files if k.startswith("z"))]
    assert int(data["mu"]) == model.mu
    sr = mgsr.upscale_tensor(
        model, torch.from_numpy(data["lr"]), scale=factor, noise_amp=float(data["noise_amp"]), noise=draws
    )
    expected = torch.from_numpy(data["sr"])
    assert sr.shape == expected.shape
    assert (sr - expected).abs().max().item() < 1e-4


def test_noise_matters_in_the_reference(reference):
    """Guards the parity test itself: W = 1 and W = 0 outputs differ, so noise handling is really checked."""
    w0 = np.load(reference / "official-parity" / "r3_x4_w0_chelsea.npz")["sr"]
    w1 = np.load(reference / "official-parity" / "r3_x4_w1_chelsea.npz")["sr"]
    assert np.abs(w0 - w1).max() > 0.05


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_weights_equal_the_release(reference, name):
    files = list((reference / "official-weights").glob(f"BOE-{name[-2:].upper()}_*.model"))
    assert len(files) == 1
    spec, state = import_official(files[0], default_noise=BUNDLED[name][1])
    model = mgsr.pretrained(name)
    ours = model.state_dict()
    assert set(ours) == set(state)
    for key, tensor in state.items():
        assert torch.equal(ours[key], tensor), key
    assert model.card.default_noise == pytest.approx(BUNDLED[name][1])
    assert "LGPL" in model.card.license
    assert model.spec == spec


def test_pretrained_has_the_papers_parameter_count():
    model = mgsr.pretrained("pirm-r1")
    assert sum(p.numel() for p in model.parameters()) == 281_084
