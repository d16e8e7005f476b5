"""What travels with the pixels from an input file to its upscale: EXIF, DPI and PNG text chunks.

Why a separate record: the pixels are replaced by the upscale, but a photographer's camera data, the
print size and a PNG's title or parameters belong to the picture, not to its resolution.  The record is
read once, before the EXIF orientation is applied (that tag is then reset to 1 so viewers do not rotate
the result a second time), and turned into each format's options only at the write, where the output
size is known: DPI is multiplied by output pixels / input pixels per axis, so the print size stays,
whatever factor (or later resize) made the output.  The ICC profile stays on
:class:`~mgsr.io.images.Picture`, where it has always been.

Per format (what Pillow and the format can hold): PNG keeps EXIF (``eXIf``), DPI (``pHYs``) and text
chunks; JPEG keeps EXIF (up to 64 KB, its APP1 limit) and DPI (JFIF density); TIFF keeps EXIF (IFD0 tags and
the Exif and GPS sub-IFDs) and DPI, no text chunks; WebP keeps EXIF only (the container has no DPI field:
EXIF's XResolution, scaled, carries it when the input had EXIF).  Text chunks are kept only from PNG to
PNG; XMP is kept only as a PNG text chunk (its orientation reset too).

Scaled DPI is clamped to what each format's field can store (PNG's 32-bit pixels per metre, JPEG's 16-bit
dots per inch, TIFF's and EXIF's 32-bit rationals, BMP's signed 32-bit pixels per metre), with a warning:
a file claiming the largest PNG density is still upscaled, and a JPEG at 65535 dpi does not wrap around
to 65532 at 4x.  Metadata never costs an image: what cannot be stored is clamped or dropped.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib

import attrs
import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_X_RESOLUTION, _Y_RESOLUTION = 0x011A, 0x011B
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003  # in the Exif sub-IFD: the pixel size the EXIF describes
# Tags that describe a TIFF file's own pixel layout (getexif() of a TIFF returns them with the camera tags);
# copied into another file they would describe the wrong pixels.
_TIFF_LAYOUT = frozenset(
    {
        254,
        255,
        256,
        257,
        258,
        259,
        262,
        263,
        266,
        273,
        277,
        278,
        279,
        280,
        281,
        284,
        317,
        320,
        322,
        323,
        324,
        325,
        338,
        339,
        347,
        530,
        531,
        532,
        700,
        33723,
        34377,
        34675,
    }
)
_ROTATED = frozenset({5, 6, 7, 8})  # orientations that swap width and height
_XMP_KEY = "XML:com.adobe.xmp"
_XMP_ORIENTATION = re.compile(r'(tiff:Orientation(?:="|>))[0-9]')
_JPEG_EXIF_LIMIT = 65533  # an APP1 segment's payload
_METRE = 0.0254  # one inch in metres: PNG and BMP count pixels per metre
_U32 = 2**32 - 1
#: (smallest, largest) DPI each format's field holds.  Pillow rounds PNG's and BMP's pixels per metre and
#: JPEG's dots per inch to integers; libjpeg wraps JPEG's above 65535, Pillow's PNG writer overflows above 2**32.
DPI_RANGES = {
    "PNG": (_METRE, _U32 * _METRE),
    "JPEG": (1.0, 65535.0),
    "TIFF": (1 / _U32, float(_U32)),
    "BMP": (_METRE, (2**31 - 1) * _METRE),
}
#: what an EXIF RATIONAL (XResolution, YResolution) can hold: 32-bit numerator and denominator
_RATIONAL_RANGE = (1 / _U32, float(_U32))


@attrs.define(frozen=True)
class Metadata:
    """The metadata of a picture as displayed (orientation applied), and the pixel size it describes."""

    exif: bytes | None = None  # Pillow's Exif.tobytes(), orientation tag 1, layout tags removed
    dpi: tuple[float, float] | None = None  # (x, y) at ``size``
    size: tuple[int, int] | None = None  # (height, width) of the picture this record was read with
    text: dict[str, str] = attrs.field(factory=dict)  # PNG tEXt / zTXt / iTXt chunks


def read_metadata(im: Image.Image, orientation: int | None = None) -> Metadata:
    """The metadata of an opened image file, read *before* its EXIF orientation is applied.

    ``orientation``: the tag's value when Pillow applied and removed it already (it does so on loading a TIFF).
    """
    exif = Image.Exif()  # a copy: the caller's image keeps its own tags
    try:
        exif.load(im.getexif().tobytes())
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, struct.error) as exc:
        # a camera's broken EXIF must not make the picture unreadable: the pixels are still good
        warnings.warn(f"unreadable EXIF dropped ({type(exc).__name__}: {exc})", stacklevel=3)
        exif = Image.Exif()
    orientation_given = orientation is not None  # then ``im`` is turned already, its tags are not
    if orientation is None:
        orientation = exif.get(ORIENTATION, 1)
    else:
        exif[ORIENTATION] = orientation
    rotated = orientation in _ROTATED
    for tag in _TIFF_LAYOUT & set(exif):
        del exif[tag]
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    if rotated and _X_RESOLUTION in exif and _Y_RESOLUTION in exif:  # the picture is turned: so are its axes
        exif[_X_RESOLUTION], exif[_Y_RESOLUTION] = exif[_Y_RESOLUTION], exif[_X_RESOLUTION]
    dpi = im.info.get("dpi")
    if dpi is not None:
        dpi = (float(dpi[1]), float(dpi[0])) if rotated else (float(dpi[0]), float(dpi[1]))
        dpi = dpi if dpi[0] > 0 and dpi[1] > 0 else None
    width, height = im.size if orientation_given or not rotated else im.size[::-1]  # as shown
    text = {str(k): str(v) for k, v in (getattr(im, "text", None) or {}).items()}
    if _XMP_KEY in text:
        text[_XMP_KEY] = _XMP_ORIENTATION.sub(r"\g<1>1", text[_XMP_KEY])
    return Metadata(exif=exif.tobytes() if len(exif) else None, dpi=dpi, size=(height, width), text=text)


def _factors(meta: Metadata, size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) output pixels per input pixel."""
    if meta.size is None:
        return 1.0, 1.0
    return size[1] / meta.size[1], size[0] / meta.size[0]


def scaled_dpi(meta: Metadata, size: tuple[int, int]) -> tuple[float, float] | None:
    """The DPI that keeps the print size of the input at the output's (height, width)."""
    if meta.dpi is None:
        return None
    fx, fy = _factors(meta, size)
    return meta.dpi[0] * fx, meta.dpi[1] * fy


def _clamped(values: tuple[float, ...], limits: tuple[float, float], field: str) -> tuple[float, ...]:
    """``values`` within ``limits`` (one warning when they were not): a number the field cannot hold must not
    abort the write (Pillow overflows) nor be wrapped around (libjpeg), and the user should know it moved."""
    low, high = limits
    kept = tuple(min(max(value, low), high) for value in values)
    if kept != values:
        said, wrote = (" x ".join(f"{v:.10g}" for v in vs) for vs in (values, kept))
        warnings.warn(f"{field} {said} is outside what the file can store; written as {wrote}", stacklevel=4)
    return kept


def stored_dpi(meta: Metadata, fmt: str, size: tuple[int, int]) -> tuple[float, float] | None:
    """:func:`scaled_dpi` within what ``fmt``'s DPI field holds (:data:`DPI_RANGES`); None where it has none."""
    dpi, limits = scaled_dpi(meta, size), DPI_RANGES.get(fmt)
    if dpi is None or limits is None:
        return None
    x, y = _clamped(dpi, limits, f"{fmt} DPI")
    return x, y


def scaled_exif(meta: Metadata, size: tuple[int, int]) -> Image.Exif | None:
    """The EXIF for an output of (height, width): resolution and pixel dimensions follow the new size."""
    if meta.exif is None:
        return None
    exif = Image.Exif()
    exif.load(meta.exif)
    fx, fy = _factors(meta, size)
    for tag, factor in ((_X_RESOLUTION, fx), (_Y_RESOLUTION, fy)):
        if tag in exif:
            exif[tag] = _clamped((float(exif[tag]) * factor,), _RATIONAL_RANGE, "EXIF resolution")[0]
    sub = exif.get_ifd(_EXIF_IFD)
    for tag, value in ((_PIXEL_X, size[1]), (_PIXEL_Y, size[0])):
        if tag in sub:
            sub[tag] = value
    return exif


def save_options(meta: Metadata, fmt: str, size: tuple[int, int]) -> dict[str, object]:
    """Pillow ``save`` options that write ``meta`` into ``fmt`` for an output of (height, width)."""
    options: dict[str, object] = {}
    dpi, exif = stored_dpi(meta, fmt, size), scaled_exif(meta, size)
    if dpi is not None:
        options["dpi"] = dpi
    if exif is not None and fmt == "TIFF":
        # Pillow's TIFF writer drops sub-IFDs given as exif=; as tags they are written
        tags = {tag: value for tag, value in exif.items() if tag not in (_EXIF_IFD, _GPS_IFD)}
        for tag in (_EXIF_IFD, _GPS_IFD):
            if tag in exif:
                sub = dict(exif.get_ifd(tag))
                if _INTEROP_IFD in sub:
                    sub[_INTEROP_IFD] = exif.get_ifd(_INTEROP_IFD)
                tags[tag] = sub
        options["tiffinfo"] = tags
    elif exif is not None and fmt in ("PNG", "JPEG", "WEBP"):
        data = exif.tobytes()
        if fmt == "JPEG" and len(data) > _JPEG_EXIF_LIMIT:
            warnings.warn(f"the EXIF data ({len(data)} bytes) exceeds JPEG's 64 KB limit; it is dropped", stacklevel=3)
        else:
            options["exif"] = data
    if meta.text and fmt == "PNG":
        info = PngInfo()
        for key, value in meta.text.items():
            info.add_text(key, value)  # Pillow writes iTXt for text that latin-1 cannot hold
        options["pnginfo"] = info
    return options


def png_chunks(meta: Metadata, size: tuple[int, int], icc_profile: bytes | None) -> list[tuple[bytes, bytes]]:
    """The metadata as raw PNG chunks, for the 16-bit RGB files pypng writes (it has no metadata options)."""
    chunks: list[tuple[bytes, bytes]] = []
    if icc_profile:
        chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
    dpi, exif = stored_dpi(meta, "PNG", size), scaled_exif(meta, size)
    if dpi is not None:
        x, y = (min(max(round(d / _METRE), 1), _U32) for d in dpi)  # in range to the last rounding
        chunks.append((b"pHYs", struct.pack(">IIB", x, y, 1)))
    if exif is not None:
        chunks.append((b"eXIf", exif.tobytes()[len(b"Exif\0\0") :]))
    for key, value in meta.text.items():
        try:
            chunks.append((b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
        except UnicodeEncodeError:  # iTXt: uncompressed, no language, no translated keyword
            chunks.append((b"iTXt", key.encode("utf-8") + b"\0\0\0\0\0" + value.encode("utf-8")))
    return chunks


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """An (H, W, C) array turned as EXIF ``orientation`` asks (what ImageOps.exif_transpose does to images)."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    turn = turns.get(orientation)
    return array if turn is None else np.ascontiguousarray(turn(array))
