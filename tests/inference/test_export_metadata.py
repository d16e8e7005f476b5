"""`mgsr export` records what the graph is (model, scale, W, seed) in the ONNX file's metadata.

A Real-ESRGAN or ComfyUI user sorting .onnx files has nothing else to go by: the graph of a 4x R1 and a 4x R3
have the same inputs and outputs.
"""

from __future__ import annotations

import pytest
import torch

from mgsr.cli import main
from mgsr.model.weights import ModelCard, save_generator
from mgsr.recipe import structure_model_spec
from mgsr.version import __version__
from tests.inference.test_export import TINY

ort = pytest.importorskip("onnxruntime", reason="the export test needs the test extra: pip install -e '.[test]'")
pytest.importorskip("onnxscript", reason="the export test needs the test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from mgsr.assembly.build import build_generator

    torch.manual_seed(0)
    spec = structure_model_spec(TINY)
    folder = tmp_path_factory.mktemp("meta")
    card = ModelCard(name="tiny-knob", default_noise=1.0)
    return save_generator(folder / "tiny.safetensors", build_generator(spec).eval(), spec, card)


def metadata(path) -> dict[str, str]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def test_one_image_graph_records_model_scale_w_and_seed(weights, tmp_path, capsys):
    out = tmp_path / "fixed.onnx"
    assert main(["export", str(weights), "-o", str(out), "--scale", "2", "--noise", "0.25", "--seed", "7"]) == 0
    meta = metadata(out)
    assert meta["model"] == "tiny-knob"
    assert meta["scale"] == "2"
    assert meta["w"] == "0.25"
    assert meta["seed"] == "7"
    assert meta["inputs"] == "image"
    assert meta["mgsr_version"] == __version__
    assert "metadata: model, scale, w, seed" in capsys.readouterr().out


@pytest.mark.slow
def test_explicit_noise_graph_says_w_and_seed_are_inputs(weights, tmp_path):
    out = tmp_path / "inputs.onnx"
    assert main(["export", str(weights), "-o", str(out), "--scale", "2"]) == 0
    meta = metadata(out)
    assert meta["model"] == "tiny-knob" and meta["scale"] == "2"
    assert meta["w"].startswith("input") and meta["seed"].startswith("input")
    assert meta["inputs"] == "image, noise_0, w"
