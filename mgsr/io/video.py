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
  (:mod:`mgsr.io.atomic`): an interrupted or failed job leaves no broken file;
- a clip cut short or damaged is not passed off as whole: the frames read are counted against the container's
  own count (less the frames its edit list drops), and when frames are missing the output is kept under a
  marked name (``clip_x4.incomplete.mp4``) and :class:`IncompleteVideo` says how many were read of how many.
  Decoding uses slice threads only: frame threads drop the frames in flight at a damaged packet (a clip cut
  at 60 % gave 8 of its 10 whole frames with them, all 10 without).

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
from mgsr.io.atomic import atomic_path, publish

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


class IncompleteVideo(ImageError):
    """Frames are missing from a clip (cut short or damaged): those read were written to ``output``, a name
    marked ``.incomplete`` so a resumed job does not take it for done; the requested target was not written."""

    def __init__(self, message: str, frames: int, output: Path) -> None:
        super().__init__(message)
        self.frames = frames
        self.output = output


@attrs.define
class _Tally:
    """What the demux loop saw of the video stream."""

    frames: int = 0  # written
    discarded: int = 0  # packets the container's edit list drops (decoded, never shown)
    damaged: int = 0  # packets the decoder refused


def incomplete_path(target: Path) -> Path:
    """Where the frames of a clip with missing frames go instead of ``target``: ``NAME.incomplete.EXT``."""
    return target.with_name(f"{target.stem}.incomplete{target.suffix}")


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
    an exception from ``convert`` (or Ctrl-C) propagates after the temporary file is removed.  When frames
    are missing (a file cut short), those read are kept at :func:`incomplete_path` and
    :class:`IncompleteVideo` is raised.
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
        vin.thread_type = "SLICE"  # not frame threads: they lose the frames in flight at a damaged packet
        try:
            with atomic_path(target) as tmp:
                with av.open(str(tmp), "w", format=container_format) as out:
                    vout = _open_video_output(av, out, vin, size, crf)
                    routes = _audio_routes(av, out, inp, target, on_note)
                    tally = _convert_packets(av, inp, vin, out, vout, routes, convert)
                    out.mux(vout.encode(None))
                    for stream, resampler in routes.values():
                        if resampler is not None:
                            _encode_audio(out, stream, resampler, None)
                _check_complete(source, target, tmp, tally, _missing(tally, inp, vin), on_note)
        except av.FFmpegError as exc:
            raise ImageError(
                f"{source} -> {target}: video could not be converted ({exc}); nothing was written"
            ) from None
    return tally.frames


def _missing(tally: _Tally, inp: Any, vin: Any) -> str | None:
    """How the frames read fall short of the clip, in words, or None when none are missing.

    The header's count is exact (less the frames the edit list drops); a count from the duration (Matroska)
    is an estimate, so only a shortfall beyond rounding and timing jitter counts there.
    """
    if vin.frames:
        expected = int(vin.frames) - tally.discarded
        if tally.frames < expected:
            return f"{tally.frames} of the {expected} frames the container lists could be read"
        return None
    estimate = _count(inp, vin)
    if estimate is not None and tally.frames < estimate - max(2, estimate // 50):
        return f"{tally.frames} frames could be read where the clip's duration makes about {estimate}"
    if estimate is None and tally.damaged:
        return f"{tally.frames} frames could be read and {tally.damaged} video packets did not decode"
    return None


def _check_complete(
    source: Path, target: Path, tmp: Path, tally: _Tally, missing: str | None, on_note: Callable[[str], None] | None
) -> None:
    """Inside the atomic block: refuse a clip without frames (nothing is written), keep one with frames missing
    under its marked name (:class:`IncompleteVideo`), note damaged packets that cost no frame."""
    if tally.frames == 0:
        raise ImageError(f"{source}: the video stream holds no frames that decode; nothing was written")
    if missing is None:
        if tally.damaged and on_note is not None:
            on_note(f"{source}: {tally.damaged} video packets did not decode; every frame was still read")
        return
    marked = incomplete_path(target)
    if marked.exists() and marked.samefile(source):
        raise ImageError(f"{source}: {missing} (cut short or damaged); nothing was written")
    publish(tmp, marked)
    raise IncompleteVideo(
        f"{source}: {missing} (the file is cut short or damaged); the {tally.frames} frames read were upscaled "
        f"into {marked}, and {target} was not written",
        tally.frames,
        marked,
    )


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
) -> _Tally:
    """Demux ``inp`` in file order: video frames through ``convert`` into ``vout``, audio copied or re-encoded
    along ``routes``; what was seen of the video (the encoders are flushed by the caller).  A video packet
    the decoder refuses is counted and skipped: the frames around it are still good."""
    tally = _Tally()
    matrix = None
    for packet in inp.demux(vin, *inp.streams.audio):
        if packet.stream.type == "video":
            tally.discarded += bool(packet.size and packet.is_discard)
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                tally.damaged += 1
                continue
            for frame in decoded:
                if matrix is None:
                    matrix = _matrix(frame)
                    vout.codec_context.colorspace = matrix
                rgb = convert(tally.frames, frame.to_ndarray(format="rgb24", src_colorspace=matrix))
                tally.frames = _write_frame(av, out, vout, frame, rgb, tally.frames, matrix)
            continue
        stream, resampler = routes[packet.stream.index]
        if resampler is None:
            if packet.dts is not None:  # the demuxer's empty flush packet has none
                packet.stream = stream
                out.mux(packet)
        else:
            for frame in packet.decode():
                _encode_audio(out, stream, resampler, frame)
    return tally


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
