"""The folder-job loop of ``mgsr upscale`` (issue 29): read warnings go through the progress bar naming the file,
an unforeseen failure of one input costs that input only, a clip with frames missing is counted apart."""

from __future__ import annotations

import pytest

from ..io.test_hostile_metadata import broken_exif_jpeg, png_file, upscale


def test_read_warnings_are_lines_naming_the_file(tmp_path, capsys):
    """Issue 29: 'mgsr: warning: Corrupt EXIF data. ...' named no file; every warning line names one."""
    source = broken_exif_jpeg(tmp_path / "broken_exif.jpg")
    assert upscale(str(source), "-o", str(tmp_path / "out")) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings and all(line.startswith(f"mgsr: warning: {source}: ") for line in warnings), warnings


def test_an_unforeseen_failure_of_one_image_is_one_line_and_the_others_go_on(tmp_path, capsys, monkeypatch):
    """README: "the other images are still processed, even after a failure mgsr did not foresee".  No real file
    is known to trip a bug any more (tests/io/test_hostile_metadata.py's densities did), so one is planted, for
    the first image only."""
    import mgsr.io.images as images

    folder = tmp_path / "in"
    folder.mkdir()
    png_file(folder / "a.png")
    png_file(folder / "b.png")
    real_encode = images.encode

    def encode(picture, fmt):
        if picture.size == (10, 12) and getattr(encode, "calls", 0) == 0:
            encode.calls = 1
            raise ZeroDivisionError("planted")
        return real_encode(picture, fmt)

    monkeypatch.setattr(images, "encode", encode)
    code = upscale(str(folder), "-o", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 5, err
    assert f"mgsr: error: {folder / 'a.png'}: failed unexpectedly (ZeroDivisionError: planted)" in err
    assert (tmp_path / "out" / "b_x2.png").is_file() and "1 written, 1 failed" in err


def test_a_clip_with_frames_missing_is_counted_incomplete(tmp_path, capsys):
    pytest.importorskip("av", reason='video needs PyAV: pip install "mgsr[video]"')
    from ..io.test_video_incomplete import faststart_clip
    from ..io.test_video_incomplete import upscale as upscale_clip

    whole = faststart_clip(tmp_path / "whole.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    assert upscale_clip(cut, tmp_path / "out") == 5
    err = capsys.readouterr().err
    assert "mgsr: 0 written, 1 incomplete (frames missing: kept as NAME.incomplete.EXT) (of 1 videos)" in err, err
