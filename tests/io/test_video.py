"""``mgsr upscale clip.mp4``: frames, size, rate, timestamps and sound kept; grain per frame; nothing partial left."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mgsr.cli import main

av = pytest.importorskip("av", reason='video needs PyAV: pip install "mgsr[video]"')

RATE, SAMPLE_RATE = 10, 8000


def make_clip(
    path: Path,
    frames: int = 3,
    size: tuple[int, int] = (32, 24),
    *,
    static: bool = False,
    audio: bool = True,
    video: bool = True,
) -> Path:
    """A tiny H.264 clip at RATE fps (random frames, or one frame repeated) with a mono AAC tone as long as it."""
    rng = np.random.default_rng(0)
    still = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        if video:
            v = out.add_stream("libx264", rate=RATE)
            v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        if audio:
            a = out.add_stream("aac", rate=SAMPLE_RATE)
            a.layout = "mono"
        for _ in range(frames if video else 0):
            img = still if static else rng.integers(0, 256, still.shape, dtype=np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        if video:
            out.mux(v.encode(None))
        if audio:
            t = np.arange(SAMPLE_RATE * frames // RATE) / SAMPLE_RATE
            tone = av.AudioFrame.from_ndarray(
                (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="flt", layout="mono"
            )
            tone.sample_rate, tone.pts = SAMPLE_RATE, 0
            resampler = av.AudioResampler(
                format="fltp", layout="mono", rate=SAMPLE_RATE, frame_size=a.codec_context.frame_size
            )
            for piece in resampler.resample(tone) + resampler.resample(None):
                out.mux(a.encode(piece))
            out.mux(a.encode(None))
    return path


def video_frames(path: Path) -> tuple[list[np.ndarray], list[float], object]:
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="rgb24"), f.time) for f in c.decode(video=0)]
        return [f for f, _ in frames], [t for _, t in frames], c.streams.video[0].average_rate


def audio_of(path: Path) -> tuple[list[bytes], float]:
    """The audio packets' bytes and the audio duration in seconds (the stream's, else the decoded samples')."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        packets = [bytes(p) for p in c.demux(stream) if p.size]
        if stream.duration:  # MP4 records it without the encoder's priming and padding
            return packets, float(stream.duration * stream.time_base)
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    return packets, sum(f.samples for f in frames) / frames[0].sample_rate


def upscale_at_2x(clip: Path, out: Path, *extra: str) -> int:
    """``mgsr upscale CLIP -o OUT`` at 2x, W = 0, untiled, on the CPU, quiet: its exit code."""
    args = ["upscale", str(clip), "-o", str(out), "--scale", "2", "--noise", "0", "--tile", "0", "--device", "cpu"]
    return main([*args, "-q", *extra])


def test_a_clip_comes_back_upscaled_with_its_sound_copied(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out" / "clip_x2.mp4"
    assert upscale_at_2x(clip, out) == 0
    frames, times, rate = video_frames(out)
    _, times_in, rate_in = video_frames(clip)
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3)
    assert rate == rate_in == RATE and times == pytest.approx(times_in)
    packets, seconds = audio_of(out)
    packets_in, seconds_in = audio_of(clip)
    assert packets == packets_in  # remuxed byte for byte, not re-encoded
    assert seconds == pytest.approx(seconds_in) and seconds_in == pytest.approx(0.3, abs=0.03)
    assert "re-encoded" not in capsys.readouterr().err


def test_audio_the_container_cannot_hold_is_reencoded_and_said(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    out = tmp_path / "clip_x2.webm"  # WebM holds Opus or Vorbis, not AAC
    assert upscale_at_2x(clip, out) == 0
    assert "aac audio cannot go into .webm as it is; re-encoded to libopus" in capsys.readouterr().err
    frames, _, rate = video_frames(out)
    assert len(frames) == 2 and frames[0].shape == (48, 64, 3) and rate == RATE
    _, seconds = audio_of(out)
    assert seconds == pytest.approx(audio_of(clip)[1], abs=0.15)  # Opus adds its encoder delay and last frame


@pytest.mark.parametrize("per_frame", [False, True])
def test_grain_is_static_on_a_static_shot_unless_seeded_per_frame(tmp_path, per_frame):
    clip = make_clip(tmp_path / "still.mp4", frames=2, static=True, audio=False)
    out = tmp_path / "still_x2.mkv"
    # --crf 0: lossless H.264, so equal upscaled frames decode equal
    args = [
        "upscale",
        str(clip),
        "-o",
        str(out),
        "--scale",
        "2",
        "--noise",
        "1",
        "--tile",
        "0",
        "--crf",
        "0",
        "--device",
        "cpu",
        "-q",
    ]
    assert main(args + (["--seed-per-frame"] if per_frame else [])) == 0
    a, b = video_frames(out)[0]
    difference = np.abs(a.astype(int) - b.astype(int)).mean()
    assert (difference > 1.0) if per_frame else (difference == 0.0)


def test_a_failure_midway_leaves_no_file(tmp_path):
    from mgsr.assembly.loading import resolve_model
    from mgsr.inference.video import upscale_video

    clip = make_clip(tmp_path / "clip.mp4")
    target = tmp_path / "clip_x2.mp4"

    def stop(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(resolve_model("pirm-r3", "cpu"), clip, target, scale=2, noise=0.0, tile=None, on_frame=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no output, no temporary file


def test_bad_videos_get_one_line_naming_the_file(tmp_path, capsys):
    silent = make_clip(tmp_path / "sound_only.mp4", video=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    for source, says in ((silent, "holds no video stream"), (broken, "cannot read this video")):
        code = main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), "--device", "cpu", "-q"])
        err = capsys.readouterr().err
        assert code == 5 and str(source) in err and says in err, err
    assert not (tmp_path / "out.mp4").exists()


def test_without_pyav_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=1, audio=False)
    monkeypatch.setitem(sys.modules, "av", None)  # what an environment without PyAV gives: ImportError
    assert main(["upscale", str(clip), "-o", str(tmp_path / "x.mp4"), "-q"]) == 1
    assert 'pip install "mgsr[video]"' in capsys.readouterr().err
