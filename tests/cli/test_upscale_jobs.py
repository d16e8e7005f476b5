"""Big folder jobs: never over an input, existing outputs skipped (resumable), split over torchrun ranks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.io.jobs import share

from ..helpers import make_images, smooth_rgb
from ..training.test_distributed import free_port


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def summary(err: str) -> str:
    lines = [line for line in err.splitlines() if "written" in line and line.startswith("mgsr: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_an_input_is_never_the_output_file(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    (tmp_path / "sub").mkdir()
    before = snapshot(tmp_path)
    for out in (src, tmp_path / "sub" / ".." / "a.png", tmp_path / "link.png", tmp_path / "hard.png"):
        code = main(["upscale", str(src), "-o", str(out), "--scale", "2", "-q"])
        err = capsys.readouterr().err
        assert code == 5, out
        assert "would overwrite the input" in err and str(out) in err
    # the noise map is an input too
    code = main(["upscale", str(src), "-o", str(tmp_path / "map.png"), "--noise-map", str(tmp_path / "map.png"), "-q"])
    assert code != 0
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced


def test_an_input_folder_is_never_overwritten_by_its_own_outputs(tmp_path, capsys):
    folder = make_images(tmp_path / "in", [(8, 8), (6, 10)])
    Image.fromarray(smooth_rgb(8, 8)).save(folder / "img0_x2.png")  # what img0.png's output would be called
    (tmp_path / "alias").symlink_to(folder)
    before = snapshot(folder)
    for out in (folder, tmp_path / "alias"):
        code = main(["upscale", str(folder), "-o", str(out), "--scale", "2", "-q"])
        err = capsys.readouterr().err
        assert code == 5 and "img0_x2.png" in err and "would overwrite the input" in err
    assert snapshot(folder) == before


def test_existing_outputs_are_skipped_and_counted_unless_overwrite(tmp_path, capsys):
    folder = make_images(tmp_path / "in", [(8, 8), (6, 10), (7, 7)])
    out = tmp_path / "out"
    assert main(["upscale", str(folder), "-o", str(out), "--scale", "2", "-q"]) == 0
    assert summary(capsys.readouterr().err).startswith("mgsr: 3 written")
    # an interrupted job: one output missing, and a temporary file left by an atomic write that never finished
    (out / "img1_x2.png").unlink()
    (out / ".img1_x2.png.abc123.tmp").write_bytes(b"half")
    marker = b"kept as it was"
    (out / "img2_x2.png").write_bytes(marker)  # stands for a complete output: must not be redone
    assert main(["upscale", str(folder), "-o", str(out), "--scale", "2", "-q"]) == 0
    captured = capsys.readouterr()
    assert "2 skipped" in summary(captured.err) and summary(captured.err).startswith("mgsr: 1 written")
    assert captured.out.strip().endswith("img1_x2.png") and len(captured.out.splitlines()) == 1
    assert (out / "img2_x2.png").read_bytes() == marker
    assert Image.open(out / "img1_x2.png").size == (20, 12)
    # --overwrite redoes them all
    assert main(["upscale", str(folder), "-o", str(out), "--scale", "2", "-q", "--overwrite"]) == 0
    line = summary(capsys.readouterr().err)
    assert line.startswith("mgsr: 3 written") and "skipped" not in line
    assert Image.open(out / "img2_x2.png").size == (14, 14)


def test_two_inputs_with_one_output_name(tmp_path, capsys):
    make_images(tmp_path / "a", [(8, 8)])
    make_images(tmp_path / "b", [(8, 8)])
    code = main(
        ["upscale", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out"), "--scale", "2", "-q"]
    )
    err = capsys.readouterr().err
    assert code == 5 and "also the output of" in err and "1 written" in summary(err) and "1 failed" in summary(err)


def test_shares_cover_every_item_once():
    items = list(range(11))
    parts = [share(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError, match="rank 3"):
        share(items, 3, 3)


def test_torchrun_splits_a_folder_over_two_gloo_ranks(tmp_path):
    folder = make_images(tmp_path / "in", [(8, 8), (6, 10), (7, 7), (9, 6), (8, 5)])
    out = tmp_path / "out"
    out.mkdir()
    Image.fromarray(smooth_rgb(4, 4)).save(out / "img3_x2.png")  # done before: skipped, counted once
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "mgsr",
        "upscale",
        str(folder),
        "-o",
        str(out),
        "--scale",
        "2",
        "--device",
        "cpu",
    ]
    result = subprocess.run(
        cmd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MGSR_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = [line.rsplit(" -> ", 1)[1] for line in result.stdout.splitlines() if " -> " in line]
    assert sorted(Path(p).name for p in done) == ["img0_x2.png", "img1_x2.png", "img2_x2.png", "img4_x2.png"]
    assert summary(result.stderr).startswith("mgsr: 4 written, 1 skipped")  # rank 0 only, summed over ranks
    ranks = sorted(line.split(" running on ")[0] for line in result.stderr.splitlines() if " running on " in line)
    assert ranks == ["mgsr: rank 0 of 2", "mgsr: rank 1 of 2"]  # each rank says where it runs, once
    assert Image.open(out / "img1_x2.png").size == (20, 12) and Image.open(out / "img3_x2.png").size == (4, 4)


def test_a_symlink_loop_as_input_is_one_line_and_the_others_still_run(tmp_path, capsys):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    Image.new("RGB", (6, 5), (90, 120, 30)).save(tmp_path / "ok.png")
    code = main(
        [
            "upscale",
            str(tmp_path / "loop.png"),
            str(tmp_path / "ok.png"),
            "-o",
            str(tmp_path / "out"),
            "--scale",
            "2",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 5 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [
        f"mgsr: error: {tmp_path / 'loop.png'}: no such file"
    ]
    assert (tmp_path / "out" / "ok_x2.png").is_file()
