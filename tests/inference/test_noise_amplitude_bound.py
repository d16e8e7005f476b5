"""Issue 29, item 5: W beyond float32 (``--noise 1e39``) gave exit 0 and an all-black image, because W was
checked finite in float64 and used in float32.  One rule, :func:`mgsr.model.amplitude.check_amplitude`
(0 <= W <= 1000), wherever W enters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mgsr
from mgsr.assembly.loading import load_generator
from mgsr.cli import main
from mgsr.errors import MgsrError
from mgsr.inference.adaptive import AdaptiveRule
from mgsr.model.amplitude import MAX_NOISE, check_amplitude
from mgsr.model.detail import detail_for_noise
from mgsr.serve.settings import Settings

from ..helpers import make_images, smooth_rgb

README = Path(__file__).resolve().parents[2] / "README.md"
TOO_BIG = ("1e39", "1e38", "1001", "inf", "nan", "-1")


def test_the_readme_promises_it():
    readme = " ".join(README.read_text().split())
    assert "a W that is not a number from 0 to 1000 is refused, naming the option or file" in readme


def test_the_rule_itself():
    assert check_amplitude(0) == 0.0 and check_amplitude(MAX_NOISE) == MAX_NOISE == 1000.0
    for bad in (*TOO_BIG, "abc", None):
        with pytest.raises(MgsrError, match="--noise x: "):
            check_amplitude(bad, "--noise x")  # type: ignore[arg-type]


def test_the_python_api_refuses_w_beyond_float32():
    rgb = smooth_rgb(8, 8)
    for noise in (1e39, [0.0, 1e38]):
        with pytest.raises(MgsrError, match="at most 1000"):
            mgsr.upscale(rgb, noise=noise, scale=4, backend="torch")  # was an all-black image
    with pytest.raises(MgsrError, match="at most 1000"):
        AdaptiveRule(levels=(0.5, 1e39))


def test_upscale_refuses_it_from_the_option_and_from_a_calibration_file(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    out = tmp_path / "o.png"
    for bad in TOO_BIG:
        assert main(["upscale", str(src), "-o", str(out), "--noise", bad, "--scale", "2", "-q"]) == 1, bad
        assert f"--noise {bad!r}: noise amplitude W must be finite and >= 0 and at most 1000" in capsys.readouterr().err
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"model": "pirm-r3", "noise": 1e39}))
    assert main(["upscale", str(src), "-o", str(out), "--noise", str(calib), "--scale", "2", "-q"]) != 0
    assert f"{calib}: its 'noise': noise amplitude W" in capsys.readouterr().err
    adaptive = tmp_path / "adaptive.json"
    adaptive.write_text(json.dumps({"kind": "adaptive", "format_version": 1, "rule": {"levels": [1e39]}}))
    assert main(["upscale", str(src), "-o", str(out), "--noise", str(adaptive), "--scale", "2", "-q"]) != 0
    assert "at most 1000" in capsys.readouterr().err
    assert not out.exists()


def test_eval_sweep_calibrate_export_and_import_refuse_it(tmp_path, capsys):
    hr = make_images(tmp_path / "hr", [(16, 16)])
    model = ["--model", "pirm-r3", "--hr", str(hr), "-q"]
    assert main(["eval", *model, "--noise", "1e39"]) == 6
    assert main(["sweep", *model, "--noise", "0,1e39", "-o", str(tmp_path / "s")]) == 6
    assert main(["sweep", *model, "--noise", "0:1e39:3", "-o", str(tmp_path / "s")]) == 6
    assert main(["calibrate", *model, "--max-rmse", "10", "--range", "0:1e39"]) == 6
    assert main(["calibrate", *model, "--curve", "--top", "1e39", "-o", str(tmp_path / "c.json")]) == 6
    err = capsys.readouterr().err
    for where in ("--noise '1e39'", "--noise '0,1e39'", "--noise '0:1e39:3'", "--range '0:1e39'", "--top 1e+39"):
        assert f"{where}: noise amplitude W must be finite" in err, where
    assert main(["export", "pirm-r3", "-o", str(tmp_path / "g.onnx"), "--noise", "1e39"]) == 1
    assert main(["import-weights", str(tmp_path / "x.model"), "-o", str(tmp_path / "x.st"), "--noise", "1e39"]) == 1
    assert err.count("at most 1000") + capsys.readouterr().err.count("at most 1000") == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hr"]  # nothing written


def test_the_page_and_the_detail_mapping_refuse_it():
    """The page's W goes through ``Settings.make`` (every request) and ``detail_for_noise`` (the W slider)."""
    with pytest.raises(MgsrError, match="at most 1000"):
        Settings.make("pirm-r3", 4, 1e39, None, 0)
    with pytest.raises(MgsrError, match="at most 1000"):
        Settings.make("pirm-r3", 4, 0.5, [0.5, 1e39], 0)
    with pytest.raises(MgsrError, match="at most 1000"):
        detail_for_noise(load_generator("pirm-r3").card, 1e39)
    assert Settings.make("pirm-r3", 4, 1000.0, None, 0).noise == (1000.0,)


def test_w_up_to_the_bound_still_upscales():
    out = mgsr.upscale(smooth_rgb(8, 8), noise=MAX_NOISE, scale=2, backend="torch", tile=None)
    assert isinstance(out, np.ndarray) and out.shape == (16, 16, 3)
