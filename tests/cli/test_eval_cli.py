"""``mgsr eval``, ``sweep`` and ``calibrate`` end to end on small crops of the reference photographs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.evaluation.protocol import bicubic_upscale, make_lr

from ..conftest import HR_SIDE as SIZE


@pytest.fixture
def sr_dir(hr_dir, tmp_path):
    """Bicubic outputs named as ``mgsr upscale`` names them."""
    folder = tmp_path / "sr"
    folder.mkdir()
    for path in sorted(hr_dir.iterdir()):
        hr = np.asarray(Image.open(path))
        Image.fromarray(bicubic_upscale(make_lr(hr, 4), 4)).save(folder / f"{path.stem}_x4.png")
    return folder


def test_eval_outputs_against_references(sr_dir, hr_dir, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "astronaut.png" in table and "set (2 images)" in table and "PI not computed" in table
    record = json.loads(out.read_text())
    assert record["protocol"]["name"] == "pirm2018" and record["protocol"]["metrics"]["rmse"] == {"shave": 4}
    assert [im["image"] for im in record["images"]] == ["astronaut.png", "coffee.png"]
    rmse = [im["rmse"] for im in record["images"]]
    assert record["aggregate"]["rmse"] == pytest.approx(np.sqrt(np.mean(np.square(rmse))))
    assert set(record["aggregate"]) == {"rmse", "psnr", "ssim", "niqe"}


def test_eval_without_references_reports_no_reference_metrics(sr_dir, tmp_path):
    out = tmp_path / "r.json"
    assert main(["eval", "--sr", str(sr_dir), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["aggregate"]) == {"niqe"} and record["hr"] is None
    assert any("no-reference" in n for n in record["notes"])


def test_bicubic_model_eval_equals_scoring_its_saved_outputs(sr_dir, hr_dir, tmp_path):
    assert main(["eval", "--model", "bicubic", "--hr", str(hr_dir), "--json", str(tmp_path / "m.json")]) == 0
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir), "--json", str(tmp_path / "s.json")]) == 0
    by_model, by_files = (json.loads((tmp_path / f).read_text())["aggregate"] for f in ("m.json", "s.json"))
    assert by_model == by_files


def test_eval_a_model(hr_dir, tmp_path):
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "pirm-r3", "--hr", str(hr_dir), "--noise", "0", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["model"] == "pirm-r3" and record["noise"] == 0.0 and record["scale"] == 4
    assert 0 < record["aggregate"]["rmse"] < 30


def test_bad_inputs_name_the_file(sr_dir, hr_dir, tmp_path, capsys):
    assert main(["eval", "--sr", str(tmp_path / "nowhere")]) == 6
    assert f"SR folder {tmp_path / 'nowhere'}: no such folder" in capsys.readouterr().err  # was "sr_dir ..."

    (sr_dir / "astronaut_x4.png").write_text("not an image")
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir)]) == 5
    assert "astronaut_x4.png" in capsys.readouterr().err

    Image.fromarray(np.zeros((SIZE - 4, SIZE, 3), np.uint8)).save(sr_dir / "astronaut_x4.png")
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir)]) == 6
    err = capsys.readouterr().err
    assert "astronaut_x4.png is 104x100 pixels" in err and "astronaut.png is 104x104" in err

    (sr_dir / "astronaut_x4.png").unlink()
    shutil.copy(sr_dir / "coffee_x4.png", sr_dir / "extra.png")
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir)]) == 6
    err = capsys.readouterr().err
    assert "extra.png: no reference image" in err and "astronaut.png: no output image" in err

    shutil.copy(sr_dir / "coffee_x4.png", sr_dir / "coffee.png")
    assert main(["eval", "--sr", str(sr_dir), "--hr", str(hr_dir)]) == 6
    assert "coffee.png and" in (err := capsys.readouterr().err) and "coffee_x4.png are the same image" in err

    assert main(["eval", "--model", "pirm-r3"]) == 6
    assert "--hr" in capsys.readouterr().err


def test_sweep_writes_csv_and_plot(hr_dir, tmp_path, capsys):
    prefix = tmp_path / "pd"
    assert main(["sweep", "--model", "pirm-r3", "--hr", str(hr_dir), "--noise", "0:1:3", "-o", str(prefix)]) == 0
    lines = (tmp_path / "pd.csv").read_text().splitlines()
    assert lines[0].startswith("# mgsr sweep") and "pirm2018" in lines[1]
    table = [line for line in lines if not line.startswith("#")]
    assert table[0] == "noise,rmse,psnr,ssim,niqe" and [r.split(",")[0] for r in table[1:]] == ["0.0", "0.5", "1.0"]
    assert (tmp_path / "pd.png").stat().st_size > 10_000
    # -o results/ (a new folder) used to write results.csv beside it; -o into a missing folder failed at the end
    assert main(["sweep", "--model", "pirm-r3", "--hr", str(hr_dir), "--noise", "0,1", "-o", f"{tmp_path / 'r'}/"]) == 0
    assert (tmp_path / "r" / "sweep.csv").is_file() and (tmp_path / "r" / "sweep.png").is_file()
    assert not (tmp_path / "r.csv").exists()


def test_calibrate_records_the_noise(hr_dir, tmp_path, capsys):
    out = tmp_path / "calib.json"
    assert main(["calibrate", "--model", "pirm-r3", "--hr", str(hr_dir), "--max-rmse", "1", "-o", str(out)]) == 6
    assert "cannot be met" in capsys.readouterr().err and not out.exists()
    args = ["calibrate", "--model", "pirm-r3", "--hr", str(hr_dir), "--max-rmse", "30", "-o", str(out)]
    assert main([*args, "--tolerance", "0.5"]) == 0
    record = json.loads(out.read_text())
    assert record["noise"] == 1.0 and record["rmse"] <= 30 and record["model"] == "pirm-r3"
    assert record["protocol"]["name"] == "pirm2018" and record["hr"] == str(hr_dir) and record["max_rmse"] == 30
