"""The command line: exit codes, one-line errors, outputs."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.assembly.loading import load_generator
from mgsr.cli import main

from ..conftest import RECIPES, REPO


def test_recipe_show_prints_a_recipe_that_loads_back(capsys):
    assert main(["recipe", "show", str(RECIPES / "pirm_r3.toml")]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert mgsr.load_recipe(shown) == mgsr.load_recipe(RECIPES / "pirm_r3.toml")


def test_bad_recipe_exits_2_with_the_path(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text((RECIPES / "pirm_r3.toml").read_text().replace("mu = 2", "mu = 'two'"))
    assert main(["recipe", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "$.model.mu" in err


def test_upscale_file_and_bad_inputs(tmp_path, capsys):
    src = tmp_path / "small.png"
    Image.fromarray((np.random.default_rng(0).random((6, 5, 3)) * 255).astype(np.uint8)).save(src)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    out = tmp_path / "out"
    code = main(["upscale", str(src), str(broken), str(tmp_path / "missing.png"), "-o", str(out), "--scale", "2"])
    assert code != 0
    err = capsys.readouterr().err
    assert "broken.png" in err and "missing.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["small_x2.png"]
    assert Image.open(out / "small_x2.png").size == (10, 12)


def test_import_weights_command(tmp_path, reference):
    src = next((reference / "official-weights").glob("BOE-R2_*.model"))
    dst = tmp_path / "r2.safetensors"
    assert main(["import-weights", str(src), "-o", str(dst), "--noise", "0.275", "--name", "r2"]) == 0
    mine, bundled = load_generator(dst), mgsr.pretrained("pirm-r2")
    assert mine.card.default_noise == 0.275
    for key, tensor in bundled.state_dict().items():
        assert torch.equal(mine.state_dict()[key], tensor)


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "mgsr", "plugins"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "filter_block:dense" in result.stdout


def test_unavailable_device_is_one_clear_line(tmp_path, capsys):
    src = REPO / "mgsr" / "samples" / "grace_hopper.png"
    torch = __import__("torch")
    bad = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--device", bad]) == 1
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--device", "gpu7"]) == 1
    err = capsys.readouterr().err
    assert f"--device {bad}" in err and "'gpu7' is not a device name" in err
    assert not (tmp_path / "o.png").exists()


def test_a_reader_that_goes_away_stops_the_listing_quietly():
    """``mgsr recipe list | head -1``: a closed stdout ends the command with SIGPIPE's status, not a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgsr", "recipe", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_a_quality_outside_1_to_100_is_refused_before_the_model_runs(tmp_path, capsys):
    """``--quality 500`` used to run the model, then fail in the writer ("invalid configuration")."""
    src = REPO / "mgsr" / "samples" / "grace_hopper.png"
    with pytest.raises(SystemExit) as code:
        main(["upscale", str(src), "-o", str(tmp_path / "o.webp"), "--quality", "500"])
    assert code.value.code == 2 and "--quality: 500 is out of range: choose 1 to 100" in capsys.readouterr().err
    assert not (tmp_path / "o.webp").exists()


def test_an_output_that_is_no_image_name_nor_folder_is_refused(tmp_path, capsys):
    """``-o clip.mp4`` for a picture (or ``-o photo.xyz``) used to become a new folder of that name holding
    ``photo_x2.png``; an existing folder or a name ending in '/' stays a folder whatever its suffix."""
    src = REPO / "mgsr" / "samples" / "val" / "grace_hopper_face.png"
    assert main(["upscale", str(src), "-o", str(tmp_path / "clip.mp4"), "--scale", "2", "-q"]) == 1
    assert main(["upscale", str(src), "-o", str(tmp_path / "photo.xyz"), "--scale", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert "clip.mp4 is a video file name, but the inputs are images" in err
    assert ".xyz is not an image format mgsr writes" in err and "end it with '/'" in err
    assert not (tmp_path / "clip.mp4").exists() and not (tmp_path / "photo.xyz").exists()
    assert main(["upscale", str(src), "-o", f"{tmp_path / 'results.v2'}/", "--scale", "2", "-q"]) == 0
    assert (tmp_path / "results.v2" / "grace_hopper_face_x2.png").is_file()


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["calibrate", "--model", "pirm-r3", "--hr", "HR", "--max-rmse", "20"], "calib.json"),
        (["import-weights", "release.model"], "release.safetensors"),
    ],
)
def test_a_one_file_output_refuses_a_folder(tmp_path, capsys, command, example):
    """``-o results/`` used to become a file named ``results``; now one line names a file to give instead."""
    command = [str(tmp_path) if part == "HR" else part for part in command]
    assert main([*command, "-o", f"{tmp_path / 'results'}/"]) == 1
    said = capsys.readouterr().err
    assert (
        f"-o {tmp_path / 'results'}/ is a folder: give the file to write, e.g. -o {tmp_path / 'results' / example}"
        in said
    )
    assert not (tmp_path / "results").exists()
