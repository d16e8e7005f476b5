"""A clip cut short (issue 29): the frames read are counted against the container's, and a shortfall is said,
kept under a marked name and fails the job, where it upscaled to a shorter clip with exit 0."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mgsr.cli import main

av = pytest.importorskip("av", reason='video needs PyAV: pip install "mgsr[video]"')

FRAMES, RATE = 20, 10


def faststart_clip(path: Path) -> Path:
    """20 random 32 x 24 frames of H.264 in an MP4 whose index (moov) comes first, as streaming files have it:
    so a copy cut short still opens, and its index still lists all 20 frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for _ in range(FRAMES):
            image = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(image))
        out.mux(stream.encode(None))
    return path


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def upscale(clip: Path, out: Path) -> int:
    args = ["upscale", str(clip), "-o", str(out), "--scale", "2", "--noise", "0", "--tile", "0", "--device", "cpu"]
    return main([*args, "-q"])


def test_a_clip_cut_short_says_how_many_frames_and_keeps_them_marked(tmp_path, capsys):
    """README: "**Kept:** the frame count" -- and where it cannot be kept, the user is told and the job fails."""
    whole = faststart_clip(tmp_path / "whole.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    target = tmp_path / "cut_x2.mp4"
    code = upscale(cut, target)
    err = capsys.readouterr().err
    assert code == 5, err
    said = re.search(rf"{re.escape(str(cut))}: (\d+) of the {FRAMES} frames the container lists could be read", err)
    assert said, err
    read = int(said.group(1))
    assert 0 < read < FRAMES
    marked = tmp_path / "cut_x2.incomplete.mp4"
    assert not target.exists() and frame_count(marked) == read  # kept, under a name no resumed job skips
    assert f"upscaled into {marked}" in err


def test_frames_an_edit_list_drops_are_not_missing(tmp_path, capsys):
    """An MP4 trimmed without re-encoding lists 20 frames and shows 18 (its edit list starts 2 frames in):
    a whole file, not a cut one."""
    source = faststart_clip(tmp_path / "whole.mp4")
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(source)) as inp, av.open(str(trimmed), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            shift = 2 * int(packet.duration)  # two frames before zero: written as an edit list
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, stream
            out.mux(packet)
    assert upscale(trimmed, tmp_path / "out.mp4") == 0, capsys.readouterr().err
    assert frame_count(tmp_path / "out.mp4") == frame_count(trimmed) == FRAMES - 2
