"""Video files <-> RGB frames for ``mgsr upscale clip.mp4``: decode, hand each frame over, re-encode, keep the sound.

Why its own module: PyAV (FFmpeg's libraries, ~100 MB installed) is the optional extra ``mgsr[video]`` and is
imported here only, so picture users never need it.  What the user gets back should differ from the clip only
in size, so:

- every frame keeps its timestamp (pts in the input stream's time base, which the output stream adopts), so a
  variable-frame-rate clip keeps its timing and the frame count is the input's;
- the frame rate is recorded as the input's average rate;
- audio packets are copied byte for byte (remuxed) when the output container can hold their codec, else
  decoded and re-encoded with the container's default audio codec (reported through ``on_note``);
- colour goes RGB and back with the clip's own matrix (its tag, else BT.709 from 720 lines up and BT.601
  below, as players assume), and the output is tagged with it, so colours are not shifted;
- the file is written under a temporary name beside the target and renamed at the end
  (:mod:`mgsr.io.atomic`): an interrupted or failed job leaves no broken file.

Video is H.264 (libx264, ``crf`` quality: 0 lossless .. 51, 18 visually near-lossless, preset ``medium``) in
yuv420p for .mp4 / .m4v / .mov / .mkv, VP9 (libvpx-vp9, the same ``crf`` on its 0..63 scale) for .webm, and
the container's default codec with its default settings where neither applies (.avi: MPEG-4 part 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mgsr.errors import ImageError, MgsrError
from mgsr.io.atomic import atomic_path

#: Container formats by file suffix: the temporary file's name ends in .tmp, so FFmpeg is told the format.
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_SUFFIXES = frozenset(_CONTAINERS)
#: Default ``crf``: x264's visually near-lossless setting (the scale is logarithmic; +6 about halves the size).
DEFAULT_CRF = 18
#: FFmpeg colourspace numbers (AVColorSpace) of the matrices swscale knows; others are read as the height says.
_BT709, _BT601 = 1, 5
_KNOWN_MATRICES = {1: _BT709, 5: _BT601, 6: _BT601}

#: ``convert(index, rgb)``: frame ``index`` (0-based, decode order) as (H, W, 3) uint8 -> the output frame.
Convert = Callable[[int, np.ndarray], np.ndarray]


@attrs.frozen
class VideoInfo:
    """What the caller needs before the first frame: the picture size, a frame count for a progress bar."""

    width: int
    height: int
    frames: int | None  # from the header, or duration x rate; None when the container says neither
    rate: Fraction | None  # average frame rate
    audio_streams: int


def is_video(path: str | os.PathLike[str]) -> bool:
    """True for the file suffixes ``mgsr upscale`` treats as video (:data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def require_av() -> Any:
    """The ``av`` module, or an error telling the user how to install it."""
    try:
        import av
    except ImportError:
        raise MgsrError('video needs PyAV, which is not installed: pip install "mgsr[video]"') from None
    return av


def _open_input(av: Any, source: Path) -> Any:
    if not source.is_file():
        raise ImageError(f"{source}: no such file")
    try:
        return av.open(str(source))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ImageError(f"{source}: cannot read this video ({exc}); is it a complete video file?") from None


def _video_stream(source: Path, container: Any) -> Any:
    if not container.streams.video:
        raise ImageError(
            f"{source}: the file holds no video stream (only "
            f"{', '.join(s.type for s in container.streams) or 'nothing'}); nothing to upscale"
        )
    return container.streams.video[0]


def _count(container: Any, stream: Any) -> int | None:
    """The frame count the header gives, else duration x rate (Matroska records only the file's duration)."""
    if stream.frames:
        return int(stream.frames)
    if not stream.average_rate:
        return None
    if stream.duration:
        return round(float(stream.duration * stream.time_base * stream.average_rate))
    if container.duration:  # in microseconds (AV_TIME_BASE)
        return round(container.duration / 1_000_000 * float(stream.average_rate))
    return None


def probe(source: str | os.PathLike[str]) -> VideoInfo:
    """Size, frame count, rate and number of audio streams of ``source``; errors name the file."""
    av = require_av()
    source = Path(source)
    with _open_input(av, source) as container:
        stream = _video_stream(source, container)
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frames=_count(container, stream),
            rate=stream.average_rate,
            audio_streams=len(container.streams.audio),
        )


def _matrix(frame: Any) -> int:
    """The clip's YUV matrix: its tag when swscale knows it, else what players assume for its height."""
    tagged = _KNOWN_MATRICES.get(int(frame.colorspace))
    return tagged if tagged is not None else (_BT709 if frame.height >= 720 else _BT601)


def _open_video_output(av: Any, out: Any, vin: Any, size: tuple[int, int], crf: int) -> Any:
    """The output video stream: H.264 or VP9 at ``crf`` where the container takes them, else its default."""
    supported = out.supported_codecs
    rate = vin.average_rate or vin.guessed_rate
    options: dict[str, str] = {}
    if "h264" in supported and "libx264" in av.codecs_available and out.format.name != "webm":
        codec, options = "libx264", {"crf": str(crf), "preset": "medium"}
    elif "vp9" in supported and "libvpx-vp9" in av.codecs_available:
        codec, options = "libvpx-vp9", {"crf": str(crf), "b": "0", "row-mt": "1"}
    else:
        codec = out.default_video_codec
    stream = out.add_stream(codec, rate=rate, options=options)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.time_base = vin.time_base
    stream.codec_context.time_base = vin.time_base
    return stream


def _audio_route(av: Any, out: Any, ain: Any) -> tuple[Any, Any]:
    """(output stream, resampler): resampler ``None`` when the packets are copied as they are."""
    if ain.codec_context.name in out.supported_codecs:
        return out.add_stream_from_template(ain), None
    codec = out.default_audio_codec
    rates = av.Codec(codec, "w").audio_rates or ()
    rate = ain.codec_context.sample_rate
    if rates and rate not in rates:  # the supported rate nearest above (else the highest)
        rate = min((r for r in rates if r >= rate), default=max(rates))
    stream = out.add_stream(codec, rate=rate)
    stream.layout = ain.codec_context.layout
    encoder = stream.codec_context
    fmt = encoder.codec.audio_formats[0].name if encoder.codec.audio_formats else "fltp"
    stream.format = fmt
    resampler = av.AudioResampler(
        format=fmt, layout=ain.codec_context.layout, rate=rate, frame_size=encoder.frame_size or None
    )
    return stream, resampler


def _encode_audio(out: Any, stream: Any, resampler: Any, frame: Any) -> None:
    """Resample ``frame`` (``None``: flush) to the encoder's format and frame size, encode and mux it."""
    for piece in resampler.resample(frame):
        out.mux(stream.encode(piece))
    if frame is None:
        out.mux(stream.encode(None))


def transcode(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    convert: Convert,
    size: tuple[int, int],
    *,
    crf: int = DEFAULT_CRF,
    on_note: Callable[[str], None] | None = None,
) -> int:
    """Write ``target``: ``source``'s frames through ``convert`` (each to ``size`` = (width, height)), its sound kept.

    Returns the number of frames written.  Nothing exists at ``target`` unless the whole clip was written;
    an exception from ``convert`` (or Ctrl-C) propagates after the temporary file is removed.
    ``on_note`` receives one line per audio stream that had to be re-encoded.
    """
    av = require_av()
    source, target = Path(source), Path(target)
    container_format = _CONTAINERS.get(target.suffix.lower())
    if container_format is None:
        raise ImageError(f"{target}: unknown video file type; use one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    if not 0 <= crf <= 63:
        raise MgsrError(f"--crf {crf}: give 0 (lossless) .. 51 for H.264 (63 for VP9); 18 is near-lossless")
    with _open_input(av, source) as inp:
        vin = _video_stream(source, inp)
        vin.thread_type = "AUTO"
        try:
            with atomic_path(target) as tmp, av.open(str(tmp), "w", format=container_format) as out:
                vout = _open_video_output(av, out, vin, size, crf)
                routes = _audio_routes(av, out, inp, target, on_note)
                frames = _convert_packets(av, inp, vin, out, vout, routes, convert)
                out.mux(vout.encode(None))
                for stream, resampler in routes.values():
                    if resampler is not None:
                        _encode_audio(out, stream, resampler, None)
        except av.FFmpegError as exc:
            raise ImageError(
                f"{source} -> {target}: video could not be converted ({exc}); nothing was written"
            ) from None
    if frames == 0:
        raise ImageError(f"{source}: the video stream holds no frames that decode")
    return frames


def _audio_routes(
    av: Any, out: Any, inp: Any, target: Path, on_note: Callable[[str], None] | None
) -> dict[int, tuple[Any, Any]]:
    """Each input audio stream's (output stream, resampler) by its index; ``on_note`` is told of each one
    that has to be re-encoded."""
    routes = {}
    for ain in inp.streams.audio:
        routes[ain.index] = _audio_route(av, out, ain)
        if routes[ain.index][1] is not None and on_note is not None:
            on_note(
                f"{target}: {ain.codec_context.name} audio cannot go into {target.suffix} as it "
                f"is; re-encoded to {routes[ain.index][0].codec_context.name}"
            )
    return routes


def _convert_packets(
    av: Any, inp: Any, vin: Any, out: Any, vout: Any, routes: dict[int, tuple[Any, Any]], convert: Convert
) -> int:
    """Demux ``inp`` in file order: video frames through ``convert`` into ``vout``, audio copied or re-encoded
    along ``routes``; the number of frames written (the encoders are flushed by the caller)."""
    frames = 0
    matrix = None
    for packet in inp.demux(vin, *inp.streams.audio):
        if packet.stream.type == "video":
            for frame in packet.decode():
                if matrix is None:
                    matrix = _matrix(frame)
                    vout.codec_context.colorspace = matrix
                frames = _write_frame(
                    av,
                    out,
                    vout,
                    frame,
                    convert(frames, frame.to_ndarray(format="rgb24", src_colorspace=matrix)),
                    frames,
                    matrix,
                )
            continue
        stream, resampler = routes[packet.stream.index]
        if resampler is None:
            if packet.dts is not None:  # the demuxer's empty flush packet has none
                packet.stream = stream
                out.mux(packet)
        else:
            for frame in packet.decode():
                _encode_audio(out, stream, resampler, frame)
    return frames


def _write_frame(av: Any, out: Any, vout: Any, frame: Any, rgb: np.ndarray, index: int, matrix: int) -> int:
    """Encode ``rgb`` at ``frame``'s timestamp (frame order when the clip has none); the next frame's index."""
    if rgb.shape[:2] != (vout.height, vout.width):
        raise ValueError(
            f"frame {index} was converted to {rgb.shape[1]}x{rgb.shape[0]}, the stream is {vout.width}x{vout.height}"
        )
    image = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    image = image.reformat(format="yuv420p", dst_colorspace=matrix)
    image.colorspace = matrix
    if frame.pts is not None:
        image.pts, image.time_base = frame.pts, frame.time_base
    else:
        image.pts, image.time_base = index, 1 / Fraction(vout.average_rate or 25)
    out.mux(vout.encode(image))
    return index + 1
