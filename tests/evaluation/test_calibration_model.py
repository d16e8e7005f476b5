"""Issue 29, item 6: ``--model pirm-r3 --noise cal_r1.json`` applied R1's calibrated W to R3 silently.  A
calibration belongs to the weights it was fitted on (:mod:`mgsr.evaluation.calibration_model`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.evaluation.calibration_model import WEIGHTS_KEY, check_fitted_for, fitted_model
from mgsr.evaluation.tradeoff import Calibration
from mgsr.model.weights import bundled_path

from ..helpers import smooth_rgb

README = Path(__file__).resolve().parents[2] / "README.md"
PROMISE = (
    "`calibrate` records the model as given and the SHA-256 of its weights (`model_sha256`), and `upscale`, "
    "`eval`, `sweep` and `export` refuse `--noise calib.json` with another `--model`, naming the model it was "
    "fitted for and the `mgsr calibrate` command that fits the model in use"
)


def calibration_for(model: str, path: Path, noise: float = 0.0632) -> Path:
    """A global calibration file as ``mgsr calibrate --model MODEL --hr hr/ --max-rmse 11.5`` writes it."""
    result = Calibration(noise, 11.0, 11.5, (0.0, 1.0), ((0.0, 10.0), (noise, 11.0)), True, ())
    result.save(path, **fitted_model(model), hr="hr/", scale=4)
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    src = tmp_path / "a.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    return src


def test_the_readme_says_a_calibration_belongs_to_its_model():
    assert PROMISE in " ".join(README.read_text().split())


def test_calibrate_records_the_weights_it_was_fitted_on(reference, tmp_path):
    hr = tmp_path / "hr"
    hr.mkdir()
    rgb = np.asarray(Image.open(reference / "images" / "astronaut.png").convert("RGB"))
    Image.fromarray(rgb[:104, 40:144]).save(hr / "astronaut.png")  # the smallest crop NIQE scores
    out = tmp_path / "c.json"
    assert main(["calibrate", "--model", "pirm-r1", "--hr", str(hr), "--max-rmse", "1000", "-o", str(out), "-q"]) == 0
    record = json.loads(out.read_text())
    assert record["model"] == "pirm-r1" and record[WEIGHTS_KEY] == fitted_model("pirm-r1")[WEIGHTS_KEY]


def test_a_calibration_for_another_model_is_refused_with_the_fix_named(photo, tmp_path, capsys):
    calib = calibration_for("pirm-r1", tmp_path / "cal_r1.json")
    out = tmp_path / "o.png"
    assert main(["upscale", str(photo), "-o", str(out), "--model", "pirm-r3", "--noise", str(calib), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{calib} was fitted for the model 'pirm-r1', not for --model pirm-r3" in err
    assert (
        "Use --model pirm-r1, or calibrate this model: mgsr calibrate --model pirm-r3 --hr hr/ --max-rmse 11.5 " in err
    )
    assert not out.exists()
    hr = tmp_path / "hr"
    hr.mkdir()
    for argv in (
        ["eval", "--model", "pirm-r3", "--hr", str(hr), "--noise", str(calib), "-q"],
        ["sweep", "--model", "pirm-r3", "--hr", str(hr), "--noise", str(calib), "-q", "-o", str(tmp_path / "s")],
        ["export", "pirm-r3", "-o", str(tmp_path / "g.onnx"), "--noise", str(calib)],
    ):
        assert main(argv) == 1, argv
        assert "was fitted for the model 'pirm-r1'" in capsys.readouterr().err, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "cal_r1.json", "hr"]


def test_the_weights_decide_not_the_name(photo, tmp_path):
    calib = calibration_for("pirm-r1", tmp_path / "cal_r1.json")
    run = tmp_path / "runs" / "X"
    run.mkdir(parents=True)
    shutil.copy(bundled_path("pirm-r1"), run / "generator.safetensors")
    check_fitted_for(calib, "pirm-r1")
    check_fitted_for(calib, str(run))  # the same weights under another name
    out = tmp_path / "o.png"
    assert main(["upscale", str(photo), "-o", str(out), "--model", str(run), "--noise", str(calib), "-q"]) == 0
    assert out.is_file()


def test_older_files_are_checked_by_the_model_they_name(photo, tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": "pirm-r1", "noise": 0.0632}))  # before model_sha256 was recorded
    out = tmp_path / "o.png"
    assert main(["upscale", str(photo), "-o", str(out), "--model", "pirm-r3", "--noise", str(old), "-q"]) == 1
    assert "was fitted for the model 'pirm-r1'" in capsys.readouterr().err
    check_fitted_for(old, "pirm-r1")
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps({"model": str(tmp_path / "deleted_run"), "noise": 0.05}))
    with pytest.warns(UserWarning, match="cannot be loaded to compare with --model pirm-r3"):
        check_fitted_for(gone, "pirm-r3")
    by_hand = tmp_path / "by_hand.json"
    by_hand.write_text(json.dumps({"noise": 0.05}))  # names no model: nothing to hold it to
    check_fitted_for(by_hand, "pirm-r3")
