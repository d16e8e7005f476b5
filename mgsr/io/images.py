"""Image files and PIL images <-> float planes, for every mode a user may hand us.

The network sees RGB in [0, 1].  Everything else is bookkeeping so that what
comes out matches what went in: grey stays grey, alpha is kept (upscaled
separately), 16-bit stays 16-bit, CMYK is converted back where the format can
hold it, EXIF orientation is applied and the metadata (EXIF, DPI, PNG text: :mod:`mgsr.io.metadata`)
travels to the output.  Pillow cannot hold 16-bit RGB, so those
PNGs go through pypng.  Writes go to a temporary file renamed into place, so a
failure never leaves a partial output.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from pathlib import Path
from typing import TextIO

import attrs
import numpy as np
import png  # pypng: 16-bit RGB(A) PNG, which Pillow cannot represent
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mgsr.errors import ImageError
from mgsr.io.atomic import atomic_path
from mgsr.io.metadata import ORIENTATION, Metadata, orient, png_chunks, read_metadata, save_options
from mgsr.io.png_text import without_oversized_text

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".gif": "GIF",
}
_CMYK_FORMATS = frozenset({"JPEG", "TIFF"})
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP", "GIF"})
#: held while a read captures Pillow's warnings (see :func:`read_picture`)
_WARNINGS_CAPTURE = threading.Lock()
_SIXTEEN_BIT_GREY_FORMATS = frozenset({"PNG", "TIFF"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's convert("L")


@attrs.define
class Picture:
    """A decoded image: colour planes in [0, 1], optional alpha, and what the output should be."""

    # float32 in [0, 1], (H, W, 1) grey or (H, W, 3) RGB; a result may hold its final values instead,
    # uint8 / uint16 for 8 / 16 bits (an upscaled image is quantised piece by piece as it is made)
    color: np.ndarray
    alpha: np.ndarray | None = None  # (H, W), float32 in [0, 1] or quantised as ``color``
    bits: int = 8  # 8 or 16 (32 for float "F" images, written unquantised)
    mode: str = "RGB"  # colour family to write back: "L", "RGB" or "CMYK"
    icc_profile: bytes | None = None
    metadata: Metadata = attrs.field(factory=Metadata)  # EXIF, DPI, PNG text, for the output file

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.color.shape[0], self.color.shape[1]

    def rgb(self) -> np.ndarray:
        """The colour planes as (H, W, 3), grey repeated."""
        return np.repeat(self.color, 3, axis=2) if self.color.shape[2] == 1 else self.color


def _scaled(array: np.ndarray, bits: int) -> np.ndarray:
    return array.astype(np.float32) / float((1 << bits) - 1)


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file, or None when it is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE):
        return None
    return head[24], head[25]


def _read_png16(path: Path, chunks: Path | io.BytesIO) -> Picture:
    """Pixels through pypng; metadata and orientation through Pillow, which reads ``chunks`` without the pixels."""
    with Image.open(chunks) as im:
        orientation = im.getexif().get(ORIENTATION, 1)  # before read_metadata resets it
        metadata, icc = read_metadata(im), im.info.get("icc_profile")
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    data = orient(
        np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes), orientation
    )
    alpha = _scaled(data[..., -1], 16) if info["alpha"] else None
    color = _scaled(data[..., : planes - (1 if info["alpha"] else 0)], 16)
    return Picture(
        color=color,
        alpha=alpha,
        bits=16,
        mode="L" if color.shape[2] == 1 else "RGB",
        icc_profile=icc,
        metadata=metadata,
    )


def decode(im: Image.Image, orientation: int | None = None) -> Picture:
    """Turn a PIL image of any mode into a Picture (EXIF orientation applied, metadata kept).

    ``orientation``: the file's EXIF orientation where Pillow applied it on loading (TIFF), else read from ``im``.
    """
    picture = _decode_pixels(ImageOps.exif_transpose(im))
    picture.metadata = read_metadata(im, orientation)
    return picture


def _decode_pixels(im: Image.Image) -> Picture:
    icc = im.info.get("icc_profile")
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        data = np.asarray(im).astype(np.int64)
        if data.min() < 0 or data.max() > 65535:
            raise ValueError(f"32-bit integer image with values outside 0..65535 (mode {mode})")
        return Picture(color=_scaled(data, 16)[..., None], bits=16, mode="L")
    if mode == "F":
        return Picture(color=np.asarray(im, dtype=np.float32)[..., None], bits=32, mode="L")
    if mode in ("1", "L"):
        return Picture(color=_scaled(np.asarray(im.convert("L")), 8)[..., None], mode="L", icc_profile=icc)
    if mode in ("LA", "La", "PA") or (mode == "P" and "transparency" in im.info) or mode in ("RGBA", "RGBa"):
        target = "LA" if mode in ("LA", "La") else "RGBA"
        data = _scaled(np.asarray(im.convert(target)), 8)
        return Picture(
            color=data[..., :-1], alpha=data[..., -1], mode="L" if target == "LA" else "RGB", icc_profile=icc
        )
    if mode == "CMYK":
        return Picture(color=_scaled(np.asarray(im.convert("RGB")), 8), mode="CMYK", icc_profile=icc)
    return Picture(color=_scaled(np.asarray(im.convert("RGB")), 8), mode="RGB", icc_profile=icc)


def read_picture(path: str | os.PathLike[str]) -> Picture:
    """Read any supported image file; every failure is an ImageError naming the file, every warning names it too.

    Pillow warns in its own words while it reads (``Corrupt EXIF data. Expecting to read 2 bytes...``, a
    decompression-bomb size): in a folder job such a line is useless without the file, so each warning raised
    during the read is said again with the path in front.
    """
    path = Path(path)
    heard: list[tuple[Warning | str, type[Warning]]] = []
    reader = threading.get_ident()
    try:
        # warnings' state is the process's: reads in several threads (mgsr serve's requests) take turns, or one
        # read's exit would restore a state another read set and leave warnings going to a finished list
        with _WARNINGS_CAPTURE, warnings.catch_warnings():
            warnings.simplefilter("always")
            shown = warnings.showwarning

            def capture(
                message: Warning | str,
                category: type[Warning],
                filename: str,
                lineno: int,
                file: TextIO | None = None,
                line: str | None = None,
            ) -> None:
                if threading.get_ident() != reader:  # another thread's warning meanwhile: not this file's
                    shown(message, category, filename, lineno, file, line)
                else:
                    heard.append((message, category))

            warnings.showwarning = capture
            return _read_picture(path)
    finally:  # after the block, so they reach the caller's own warning handling; said on failure too
        for message, category in heard:
            warnings.warn(f"{path}: {message}", category, stacklevel=2)


def _read_picture(path: Path) -> Picture:
    """:func:`read_picture` without the warnings' path."""
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an image file")
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        try:
            return _decode_file(path, path)
        except ValueError:  # Pillow refuses a PNG whose text chunks are over its limits: read it without them
            stripped = without_oversized_text(path)
            if stripped is None:
                raise
            for line in stripped[1]:
                warnings.warn(line, stacklevel=2)
            return _decode_file(path, io.BytesIO(stripped[0]))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, png.Error, EOFError) as exc:
        raise ImageError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def _decode_file(path: Path, source: Path | io.BytesIO) -> Picture:
    """Decode the image at ``path``, whose bytes Pillow reads from ``source`` (the file, or a cleaned copy)."""
    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
        return _read_png16(path, source)
    with Image.open(source) as im:
        # Pillow turns a TIFF by its orientation as it loads it and drops the tag: note it first
        turned = im.getexif().get(ORIENTATION) if im.format == "TIFF" else None
        im.load()
        return decode(im, turned)


def read_rgb(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image as a ``(1, 3, H, W)`` float32 tensor in [0, 1] (alpha dropped, grey repeated)."""
    return torch.from_numpy(np.ascontiguousarray(read_picture(path).rgb())).permute(2, 0, 1).unsqueeze(0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` float in [0, 1] -> ``(H, W, C)`` uint8, clamped and rounded."""
    if image.dim() == 4:
        image = image[0]
    return image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W, 1) with ITU-R 601 luma weights (exact for grey input)."""
    return (rgb @ _LUMA)[..., None]


def format_for(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMAT_BY_SUFFIX:
        raise ImageError(f"{path}: unknown image format '{suffix}'; use one of {', '.join(sorted(_FORMAT_BY_SUFFIX))}")
    return _FORMAT_BY_SUFFIX[suffix]


def quantise(array: np.ndarray, bits: int) -> np.ndarray:
    """Float in [0, 1] -> uint8 / uint16 at ``bits`` (clamped, rounded half to even); quantised input is kept
    (16-bit values asked for at 8 bits are rescaled, within one grey level of quantising the float).
    """
    dtype = np.uint16 if bits == 16 else np.uint8
    if array.dtype == dtype:
        return array
    if array.dtype == np.uint16:  # at 8 bits
        return np.round(array / 257.0).astype(np.uint8)
    if array.dtype == np.uint8:  # at 16 bits
        return array.astype(np.uint16) * 257
    top = (1 << bits) - 1
    return np.round(np.clip(array, 0.0, 1.0) * top).astype(dtype)


def encode(picture: Picture, fmt: str) -> Image.Image | np.ndarray:
    """A PIL image to save, or a uint16 (H, W, planes) array for pypng when Pillow cannot hold it.

    One value whose type says which, so a caller cannot reach for the image that is not there.
    """
    color, alpha, bits = picture.color, picture.alpha, picture.bits
    if alpha is not None and fmt not in _ALPHA_FORMATS:
        warnings.warn(f"{fmt} cannot store transparency; the alpha channel is dropped", stacklevel=3)
        alpha = None
    if bits == 32:
        if fmt != "TIFF":
            bits = 16
        else:
            return Image.fromarray(color[..., 0].astype(np.float32), mode="F")
    if bits == 16:
        if fmt == "PNG" and (color.shape[2] == 3 or alpha is not None):
            planes = color if alpha is None else np.concatenate([color, alpha[..., None]], axis=2)
            return quantise(planes, 16)
        if color.shape[2] == 1 and alpha is None and fmt in _SIXTEEN_BIT_GREY_FORMATS:
            return Image.fromarray(quantise(color[..., 0], 16))
        warnings.warn(f"{fmt} cannot store this image at 16 bits; writing 8 bits", stacklevel=3)
    planes = color if alpha is None else np.concatenate([color, alpha[..., None]], axis=2)
    data = quantise(planes, 8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
    im = Image.fromarray(data[..., 0] if mode == "L" else data, mode=mode)
    if picture.mode == "CMYK" and fmt in _CMYK_FORMATS and alpha is None:
        im = im.convert("CMYK")
    return im


def write_picture(
    path: str | os.PathLike[str], picture: Picture, *, fmt: str | None = None, quality: int | None = None
) -> None:
    """Write a Picture through a temporary file renamed into place (no partial output on failure).

    Metadata never costs the image: when the file cannot be written with it (a value Pillow or the format
    cannot hold), it is written again without the metadata, with a warning saying why.
    """
    path = Path(path)
    fmt = fmt or format_for(path)
    im = encode(picture, fmt)
    options: dict[str, object] = {}
    if quality is not None and fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    try:
        try:
            _write(path, im, fmt, options, picture, with_metadata=True)
        except _METADATA_FAILURES as exc:
            _write(path, im, fmt, options, picture, with_metadata=False)
            warnings.warn(
                f"the metadata could not be written ({type(exc).__name__}: {exc}); the image is written without "
                "its EXIF, ICC profile, DPI and text",
                stacklevel=2,
            )
    except (OSError, ValueError, png.Error, *_METADATA_FAILURES) as exc:
        raise ImageError(f"{path}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None


#: what Pillow and pypng raise for a metadata value they cannot encode (OSError is left out: a full disk
#: fails the same way without the metadata)
_METADATA_FAILURES = (ValueError, OverflowError, struct.error, TypeError, png.Error)


def _write(
    path: Path,
    im: Image.Image | np.ndarray,
    fmt: str,
    options: dict[str, object],
    picture: Picture,
    *,
    with_metadata: bool,
) -> None:
    """One attempt at writing ``im`` to ``path`` atomically, with or without ``picture``'s metadata."""
    meta = picture.metadata if with_metadata else Metadata()
    icc = picture.icc_profile if with_metadata else None
    with atomic_path(path) as tmp:
        if isinstance(im, np.ndarray):
            h, w, planes = im.shape
            writer = png.Writer(width=w, height=h, greyscale=planes in (1, 2), alpha=planes in (2, 4), bitdepth=16)
            with open(tmp, "wb") as fh:
                writer.write(fh, im.reshape(h, w * planes))
            _add_png_chunks(tmp, png_chunks(meta, picture.size, icc))
        else:
            extra = _icc_option(picture, im) if with_metadata else {}
            im.save(tmp, format=fmt, **options, **extra, **save_options(meta, fmt, picture.size))


def _icc_option(picture: Picture, im: Image.Image) -> dict[str, object]:
    """``icc_profile=`` where the written image is in the colour family the profile describes."""
    usable = picture.icc_profile and im.mode in ("RGB", "RGBA", "CMYK") and picture.mode != "L"
    if usable and (im.mode == "CMYK") == (picture.mode == "CMYK"):
        return {"icc_profile": picture.icc_profile}
    return {}


def _add_png_chunks(path: Path, chunks: list[tuple[bytes, bytes]]) -> None:
    """Insert ``chunks`` after the IHDR of the PNG at ``path`` (pypng writes no metadata of its own)."""
    if not chunks:
        return
    with open(path, "rb") as fh:  # pypng's Reader(filename=) never closes its file: a ResourceWarning per image
        existing = list(png.Reader(file=fh).chunks())
    buffer = io.BytesIO()
    png.write_chunks(buffer, existing[:1] + chunks + existing[1:])
    path.write_bytes(buffer.getvalue())


def noise_map_of(picture: Picture) -> np.ndarray:
    """The (H, W) W multiplier of a mask picture, by the rule of ``mgsr upscale --noise-map``."""
    if picture.bits == 32:
        return np.clip(picture.color[..., 0], 0, 1)
    return picture.color.mean(axis=2)
