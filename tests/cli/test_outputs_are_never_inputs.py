"""Issue 29, item 2: no command writes over one of its inputs (``export M -o M`` replaced the model with ONNX
bytes and exited 0).  One rule, :func:`mgsr.io.overwrite.refuse_overwriting`, for every command that writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.model.weights import bundled_path

from ..helpers import make_images, smooth_rgb

README = Path(__file__).resolve().parents[2] / "README.md"
#: the promise these tests hold the commands to
PROMISE = (
    "Every command that writes keeps this rule: `export -o`, `import-weights -o`, `calibrate -o` (and with "
    "`--curve` its `.png`), `sweep -o` (its `.csv` and `.png`) and `eval --json` are refused before any work "
    "when they name the model's weights file (a run folder's `generator.safetensors` too), the `--noise` "
    "calibration file or one of the `--hr`/`--sr` images"
)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], output: Path) -> None:
    """``argv`` stops with an error naming ``output`` as an input it would overwrite."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, argv
    assert f"{output}: this output would overwrite the input" in err, err


def test_the_readme_promises_it():
    assert PROMISE in " ".join(README.read_text().split())


def test_export_never_writes_over_its_model_or_calibration(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    shutil.copy(bundled_path("pirm-r3"), model)
    run = tmp_path / "runs" / "X"
    run.mkdir(parents=True)
    shutil.copy(bundled_path("pirm-r1"), run / "generator.safetensors")
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"noise": 0.5}))
    (tmp_path / "hard.onnx").hardlink_to(model)
    before = snapshot(tmp_path)
    refused(["export", str(model), "-o", str(model)], capsys, model)  # the command
    refused(["export", str(model), "-o", str(tmp_path / "hard.onnx")], capsys, tmp_path / "hard.onnx")
    refused(["export", str(run), "-o", str(run / "generator.safetensors")], capsys, run / "generator.safetensors")
    refused(["export", "pirm-r3", "-o", str(calib), "--noise", str(calib)], capsys, calib)
    assert snapshot(tmp_path) == before


def test_export_warns_when_the_output_is_not_named_onnx(tmp_path):
    # --seed without --noise stops the command after the warning, before any export
    with pytest.warns(UserWarning, match=r"model\.bin: writing an ONNX graph to a name without \.onnx"):
        assert main(["export", "pirm-r3", "-o", str(tmp_path / "model.bin"), "--seed", "1"]) != 0
    assert not (tmp_path / "model.bin").exists()


def test_calibrate_sweep_and_eval_never_write_over_their_inputs(tmp_path, capsys):
    hr = make_images(tmp_path / "hr", [(16, 16), (16, 16)])
    model = tmp_path / "m.safetensors"
    shutil.copy(bundled_path("pirm-r3"), model)
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"noise": 0.5}))
    image = hr / "img0.png"
    before = snapshot(tmp_path)
    common = ["--model", str(model), "--hr", str(hr), "-q"]
    refused(["calibrate", *common, "--max-rmse", "10", "-o", str(model)], capsys, model)
    refused(["calibrate", *common, "--max-rmse", "10", "-o", str(image)], capsys, image)
    # --curve writes OUTPUT and OUTPUT's .png: hr/img0.json would put its plot over hr/img0.png
    refused(["calibrate", *common, "--curve", "-o", str(hr / "img0.json")], capsys, image)
    refused(["sweep", *common, "--noise", "0,1", "-o", str(hr / "img1")], capsys, hr / "img1.png")
    refused(["eval", *common, "--noise", str(calib), "--json", str(calib)], capsys, calib)
    refused(["eval", "--sr", str(hr), "--json", str(image), "-q"], capsys, image)
    assert snapshot(tmp_path) == before


def test_upscale_never_writes_over_its_calibration_or_model(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    calib = tmp_path / "calib.json"
    calib.write_text(json.dumps({"noise": 0.5}))
    (tmp_path / "calib_link.png").symlink_to(calib)
    before = snapshot(tmp_path)
    out = tmp_path / "calib_link.png"
    refused(["upscale", str(src), "-o", str(out), "--noise", str(calib), "--scale", "2", "-q"], capsys, out)
    assert snapshot(tmp_path) == before and (tmp_path / "calib_link.png").is_symlink()


def test_import_weights_never_writes_over_its_source(tmp_path, capsys):
    source = tmp_path / "release.model"
    source.write_bytes(b"the authors' file")
    refused(["import-weights", str(source), "-o", str(source)], capsys, source)
    assert source.read_bytes() == b"the authors' file"
