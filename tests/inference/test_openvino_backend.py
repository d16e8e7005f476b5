"""The OpenVINO backend gives the PyTorch path's output (tiled, with noise, W per region), and says what it needs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mgsr.errors import MgsrError
from mgsr.inference.openvino import resolve_backend
from mgsr.inference.pictures import super_resolve

from .test_export import TINY


def test_backend_names_are_checked(monkeypatch):
    monkeypatch.delenv("MGSR_BACKEND", raising=False)
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("auto", "cuda") == "torch"
    with pytest.raises(MgsrError, match="auto, torch or openvino"):
        resolve_backend("onnx", "cpu")
    with pytest.raises(MgsrError, match="runs on the CPU"):
        resolve_backend("openvino", "cuda")


@pytest.mark.compat
def test_openvino_matches_torch(tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="optional extra: pip install -e '.[openvino]'")
    from mgsr.assembly.build import build_generator
    from mgsr.recipe import structure_model_spec

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path))
    torch.manual_seed(1)
    generator = build_generator(structure_model_spec(TINY)).eval()
    with torch.no_grad():
        torch.nn.init.normal_(generator.synthesis.conv_out.weight, std=0.3)
    rgb = np.random.default_rng(0).random((21, 30, 3)).astype(np.float32)
    region = np.linspace(0, 1, 21 * 30, dtype=np.float32).reshape(21, 30)
    for options in ({"noise": 1.0}, {"noise": 0.0}, {"noise": [0.5, 1.0], "noise_map": region}):
        ours = super_resolve(generator, rgb, scale=4, seed=3, tile=12, margin=8, backend="torch", **options)
        theirs = super_resolve(generator, rgb, scale=4, seed=3, tile=12, margin=8, backend="openvino", **options)
        assert np.abs(ours - theirs).max() < 1e-4, options
    cached = sorted(p.name for p in (tmp_path / "openvino").iterdir())  # converted once: one IR pair, no temporary
    assert len(cached) == 2 and cached[0].endswith(".bin") and cached[1] == cached[0].removesuffix(".bin") + ".xml"


def test_shapes_compiled_for_give_the_same_output(tmp_path, monkeypatch):
    """Large calls run a model compiled for their shape, small ones the dynamic model: the same values."""
    pytest.importorskip("openvino", reason="optional extra: pip install -e '.[openvino]'")
    from mgsr.assembly.build import build_generator
    from mgsr.inference import openvino
    from mgsr.recipe import structure_model_spec

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path))
    monkeypatch.setattr(openvino, "SMALL_OUTPUT_PIXELS", 20 * 20 * 16)
    monkeypatch.setattr(openvino, "STATIC_FROM_OUTPUT_PIXELS", 30 * 30 * 16)
    torch.manual_seed(1)
    generator = build_generator(structure_model_spec(TINY)).eval()
    runner = openvino.OpenVinoGenerator(generator, 2)
    shapes = []
    for h, w in ((16, 16), (24, 22), (32, 31), (33, 31), (16, 16)):
        x = torch.rand(1, 3, h, w)
        z = generator.draw_noise(x, 2, torch.Generator().manual_seed(h))
        with torch.no_grad():
            expected = generator(x, 2, noise_amp=[1.0, 0.5], noise=z)[-1]
        assert (runner(x, [1.0, 0.5], z) - expected).abs().max() < 1e-4, (h, w)
        shapes.append(runner._static_shape)
    # small: dynamic; large: compiled for the shape, one kept at a time; the dynamic one is dropped before it
    assert shapes == [None, None, (1, 32, 31), (1, 33, 31), (1, 33, 31)]


def test_every_bias_relu_after_a_convolution_is_fused(tmp_path, monkeypatch):
    """The modules run many times per level: each use gets its own constants, so OpenVINO folds every
    convolution's following bias + ReLU into it (with shared constants it folded only the first use)."""
    pytest.importorskip("openvino", reason="optional extra: pip install -e '.[openvino]'")
    from mgsr.assembly.build import build_generator
    from mgsr.inference import openvino
    from mgsr.recipe import structure_model_spec

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path))
    generator = build_generator(structure_model_spec(TINY)).eval()
    for fresh in (True, False):  # converted, then read back from the cache
        openvino._compiled.cache_clear()
        runner = openvino.openvino_generator(generator, 2)
        assert list(tmp_path.glob("openvino/*.xml"))
        shared = [
            n.get_friendly_name()
            for n in runner.model.get_ordered_ops()
            if n.get_type_name() == "Constant" and len(n.output(0).get_target_inputs()) > 1
        ]
        assert shared == [], fresh
        compiled = runner.core.compile_model(runner.model, "CPU", runner.config).get_runtime_model()
        squeezes = [
            str(n.get_rt_info()["originalLayersNames"].astype(str))
            for n in compiled.get_ordered_ops()
            if n.get_rt_info()["layerType"].astype(str) == "Convolution" and "squeeze" in n.get_friendly_name()
        ]
        assert squeezes and all("Relu" in names for names in squeezes), squeezes[:3]


def test_tiles_of_one_shape_run_together(tmp_path, monkeypatch):
    """Large tiles run a model compiled for their shape: a 3 x 3 grid has 4 tile shapes (edge/interior in
    each direction), so 4 compiles, not one at every change of shape in row order (9)."""
    pytest.importorskip("openvino", reason="optional extra: pip install -e '.[openvino]'")
    from mgsr.assembly.build import build_generator
    from mgsr.inference import openvino
    from mgsr.recipe import structure_model_spec

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path))
    monkeypatch.setattr(openvino, "STATIC_FROM_OUTPUT_PIXELS", 1)
    requested = []
    real = openvino.OpenVinoGenerator._request_for

    def spy(self, n, h, w):
        requested.append((n, h, w))
        return real(self, n, h, w)

    monkeypatch.setattr(openvino.OpenVinoGenerator, "_request_for", spy)
    torch.manual_seed(1)
    generator = build_generator(structure_model_spec(TINY)).eval()
    rgb = np.random.default_rng(0).random((30, 30, 3)).astype(np.float32)
    tiled = super_resolve(generator, rgb, scale=4, seed=3, tile=10, margin=6, backend="openvino", noise=1.0)
    whole = super_resolve(generator, rgb, scale=4, seed=3, backend="torch", noise=1.0)
    assert np.abs(tiled - whole).max() < 1e-3
    assert len(requested) == 9 and len(set(requested)) == 4
    changes = sum(a != b for a, b in itertools.pairwise(requested))
    assert changes == 3, requested


def test_one_model_compiled_for_a_shape_per_process(tmp_path, monkeypatch):
    """A model compiled for a large tile holds that tile's buffers: after a 4x job, a 2x job (another
    generator) drops the 4x one's, so a server running several scales holds one working set, not one each."""
    pytest.importorskip("openvino", reason="optional extra: pip install -e '.[openvino]'")
    from mgsr.assembly.build import build_generator
    from mgsr.inference import openvino
    from mgsr.recipe import structure_model_spec

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path))
    monkeypatch.setattr(openvino, "STATIC_FROM_OUTPUT_PIXELS", 1)
    torch.manual_seed(1)
    generator = build_generator(structure_model_spec(TINY)).eval()
    x4, x2 = openvino.OpenVinoGenerator(generator, 2), openvino.OpenVinoGenerator(generator, 1)
    x = torch.rand(1, 3, 12, 12)
    z = generator.draw_noise(x, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = generator(x, 2, noise_amp=[1.0, 1.0], noise=z)[-1]
    first = x4(x, [1.0, 1.0], z)
    assert x4._static is not None
    x2(x, [1.0], z[:1])
    assert x4._static is None and x2._static is not None
    again = x4(x, [1.0, 1.0], z)  # compiled anew, same values
    assert x2._static is None
    assert (first - expected).abs().max() < 1e-4 and torch.equal(first, again)
