"""`mgsr export`: the ONNX graph runs in onnxruntime without mgsr and matches mgsr to one grey level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgsr.cli import main
from mgsr.inference.core import upscale_tensor
from mgsr.inference.export import example_inputs, input_names
from mgsr.model.weights import ModelCard, save_generator
from mgsr.recipe import structure_model_spec

ort = pytest.importorskip("onnxruntime", reason="the export test needs the test extra: pip install -e '.[test]'")
pytest.importorskip("onnxscript", reason="the export test needs the test extra: pip install -e '.[test]'")

TINY = {
    "features": 8,
    "channels": 3,
    "noise_channels": 1,
    "mu": 1,
    "classic_upscaler": {"type": "learned_bicubic"},
    "noise": {"type": "gaussian"},
    **{
        part: {"type": "dense", "layers": 1, "growth": 4, "bottleneck": 1}
        for part in ("analysis", "upscaling", "downscaling", "synthesis")
    },
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small random G-MGBP whose output depends on the noise, saved and exported once by `mgsr export`.

    (One export per module: the exporter takes ~10 s even for this network.)
    """
    from mgsr.assembly.build import build_generator

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


@pytest.mark.compat
@pytest.mark.parametrize("w", [0.0, 1.0])
def test_onnx_matches_mgsr(tiny, tmp_path, w):
    generator, path = tiny
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == input_names(2)
    for height, width in ((13, 17), (20, 9)):  # dynamic height and width: not the traced size
        inputs = list(example_inputs(generator, 2, height=height, width=width, seed=height))
        inputs[-1] = inputs[-1] * w
        ours = upscale_tensor(generator, inputs[0], scale=2, noise_amp=w, noise=inputs[1:-1]).numpy()
        theirs = session.run(None, {n: t.numpy() for n, t in zip(input_names(2), inputs, strict=True)})[0]
        assert theirs.shape == (1, 3, 2 * height, 2 * width)
        assert np.abs(grey(theirs) - grey(ours)).max() <= 1
        assert np.abs(theirs - ours).max() < 1e-4
    if w == 1.0:  # the noise input is really used: other draws, another image
        other = list(inputs)
        other[1] = torch.randn_like(other[1])
        moved = session.run(None, {n: t.numpy() for n, t in zip(input_names(2), other, strict=True)})[0]
        assert np.abs(moved - theirs).max() > 1e-3


def test_export_command_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "x.onnx")]) != 0
    assert "missing.safetensors" in capsys.readouterr().err
    # a folder (existing, or a name ending in /) used to be written over as a file of that name
    assert main(["export", "pirm-r3", "-o", f"{tmp_path / 'graphs'}/"]) == 1
    assert main(["export", "pirm-r3", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"is a folder: give the file to write, e.g. -o {tmp_path / 'graphs' / 'pirm-r3_x4.onnx'}" in err
    assert not (tmp_path / "graphs").exists()


@pytest.fixture(scope="module")
def one_image(tiny, tmp_path_factory):
    """`mgsr export --noise W` of the tiny model, made on first use per W (~10 s each); seed 7's noise baked in."""
    generator, _ = tiny
    folder = tmp_path_factory.mktemp("one_image")
    weights = folder / "tiny.safetensors"
    save_generator(weights, generator, structure_model_spec(TINY), ModelCard(name="tiny", default_noise=1.0))
    files = {}

    def exported(w: float):
        if w not in files:
            files[w] = folder / f"w{w}.onnx"
            args = ["export", str(weights), "-o", str(files[w]), "--scale", "2", "--noise", str(w), "--seed", "7"]
            assert main(args) == 0
        return files[w]

    return generator, exported


@pytest.mark.compat
@pytest.mark.parametrize("w", [1.0, pytest.param(0.0, marks=pytest.mark.slow)])
def test_one_image_onnx_equals_mgsr(one_image, w):
    """One input, one output; the same values as mgsr at that seed (the baked pattern is mgsr's own draws)."""
    generator, exported = one_image
    session = ort.InferenceSession(str(exported(w)), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["sr"]
    for height, width in ((13, 17), (20, 9)):
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        theirs = session.run(None, {"image": image.numpy()})[0]
        again = session.run(None, {"image": image.numpy()})[0]
        assert np.array_equal(theirs, again)  # deterministic: no random op in the graph
        ours = upscale_tensor(generator, image, scale=2, noise_amp=w, seed=7).numpy()
        assert theirs.shape == (1, 3, 2 * height, 2 * width)
        assert np.abs(theirs - ours).max() < 1e-4
    if w == 1.0:  # seed 7's noise, not any noise: seed 0 gives another image
        other = upscale_tensor(generator, image, scale=2, noise_amp=w, seed=0).numpy()
        assert np.abs(other - theirs).max() > 1e-3


@pytest.mark.compat
def test_zero_noise_graph_at_4x_equals_mgsr(tiny, tmp_path):
    """`mgsr export --scale 4 --noise 0`: two levels of zero noise, whose sizes (2**j times the input's) once
    left a shift of a symbolic size in the graph, which torch's ONNX exporter (2.13 to 2.15) cannot convert."""
    generator, onnx_file = tiny
    out = tmp_path / "zero.onnx"
    weights = onnx_file.parent.parent / "tiny.safetensors"
    assert main(["export", str(weights), "-o", str(out), "--scale", "4", "--noise", "0"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, 13, 17, generator=torch.Generator().manual_seed(1))
    theirs = session.run(None, {"image": image.numpy()})[0]
    ours = upscale_tensor(generator, image, scale=4, noise_amp=0.0).numpy()
    assert theirs.shape == (1, 3, 52, 68)
    assert np.abs(theirs - ours).max() < 1e-4


def test_baked_noise_repeats_mgsr_draws(tiny):
    """Past the pattern's side the noise repeats it: mgsr's draws inside, unit-normal statistics all over."""
    from mgsr.inference.export import OneImageGraph
    from mgsr.inference.noise import noise_maps

    generator, _ = tiny
    graph = OneImageGraph(generator, 4, [1.0, 1.0], seed=3, period=64)
    padded = torch.zeros(1, 3, 150, 90)
    maps = graph.unit_noise(padded)
    mgsr_maps = noise_maps(generator.noise_source, (1, 1, 150, 90), 2, seed=3)
    for j, (z, ref) in enumerate(zip(maps, mgsr_maps, strict=True)):
        assert z.shape == ref.shape == (1, 1, 150 << j, 90 << j)
        assert torch.equal(z[..., :64, :64], ref[..., :64, :64])
        assert torch.equal(z[..., 64:128, :64], z[..., :64, :64])
        assert torch.equal(z[..., :64, 64:90], z[..., :64, :26])
        assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1) < 0.1


def test_export_seed_needs_noise(tmp_path, capsys):
    assert main(["export", "pirm-r3", "-o", str(tmp_path / "x.onnx"), "--seed", "3"]) != 0
    assert "--noise" in capsys.readouterr().err


def test_export_refuses_an_adaptive_calibration(tmp_path, capsys):
    from mgsr.evaluation.adaptive_fit import AdaptiveFit
    from mgsr.inference.adaptive import AdaptiveRule

    calib = tmp_path / "calib.json"
    AdaptiveFit(9.0, "flat", AdaptiveRule((0.01, 0.02)), (9.0, 5.0), (8.9, 5.1), (), 2.0).save(calib, model="pirm-r3")
    assert main(["export", "pirm-r3", "-o", str(tmp_path / "x.onnx"), "--noise", str(calib)]) != 0
    err = capsys.readouterr().err
    assert "adaptive calibration sets W per pixel" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()
