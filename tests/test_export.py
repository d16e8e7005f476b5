"""`mgsr export`: the ONNX graph runs in onnxruntime without mgsr and matches mgsr to one grey level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgsr.cli import main
from mgsr.inference.core import upscale_tensor
from mgsr.model.export import example_inputs, input_names
from mgsr.model.weights import ModelCard, save_generator
from mgsr.recipe import structure_model_spec

ort = pytest.importorskip("onnxruntime", reason="the export test needs the test extra: pip install -e '.[test]'")
pytest.importorskip("onnxscript", reason="the export test needs the test extra: pip install -e '.[test]'")

TINY = {
    "features": 8, "channels": 3, "noise_channels": 1, "mu": 1,
    "classic_upscaler": {"type": "learned_bicubic"}, "noise": {"type": "gaussian"},
    **{part: {"type": "dense", "layers": 1, "growth": 4, "bottleneck": 1} for part in
       ("analysis", "upscaling", "downscaling", "synthesis")},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small random G-MGBP whose output depends on the noise, saved and exported once by `mgsr export`.

    (One export per module: the exporter takes ~10 s even for this network.)
    """
    from mgsr.build import build_generator

    torch.manual_seed(0)
    spec = structure_model_spec(TINY)
    generator = build_generator(spec).eval()
    with torch.no_grad():
        torch.nn.init.normal_(generator.synthesis.conv_out.weight, std=0.3)
        for p in generator.parameters():
            if p.dim() == 1:
                p.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("export")
    weights = save_generator(folder / "tiny.safetensors", generator, spec, ModelCard(name="tiny", default_noise=1.0))
    onnx_file = folder / "out" / "tiny.onnx"
    assert main(["export", str(weights), "-o", str(onnx_file), "--scale", "2"]) == 0
    return generator, onnx_file


def grey(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255)


@pytest.mark.parametrize("w", [0.0, 1.0])
def test_onnx_matches_mgsr(tiny, tmp_path, w):
    generator, path = tiny
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == input_names(2)
    for height, width in ((13, 17), (20, 9)):  # dynamic height and width: not the traced size
        inputs = list(example_inputs(generator, 2, height=height, width=width, seed=height))
        inputs[-1] = inputs[-1] * w
        ours = upscale_tensor(generator, inputs[0], scale=2, noise_amp=w, noise=inputs[1:-1]).numpy()
        theirs = session.run(None, {n: t.numpy() for n, t in zip(input_names(2), inputs)})[0]
        assert theirs.shape == (1, 3, 2 * height, 2 * width)
        assert np.abs(grey(theirs) - grey(ours)).max() <= 1
        assert np.abs(theirs - ours).max() < 1e-4
    if w == 1.0:  # the noise input is really used: other draws, another image
        other = list(inputs)
        other[1] = torch.randn_like(other[1])
        moved = session.run(None, {n: t.numpy() for n, t in zip(input_names(2), other)})[0]
        assert np.abs(moved - theirs).max() > 1e-3


def test_export_command_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "x.onnx")]) != 0
    assert "missing.safetensors" in capsys.readouterr().err
