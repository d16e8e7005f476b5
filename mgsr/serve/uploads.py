"""Files that arrive from a browser: size and pixel limits checked before anything is decoded.

A web page is an open door: a 40-byte PNG can claim 100 000 x 100 000 pixels and
take the server's memory when decoded.  So an upload is refused on its byte size
first, then on the pixel count its header claims (read without decoding), and
only then decoded, with the same reader as ``mgsr upscale`` so the picture (mode,
bit depth, alpha, EXIF orientation) is exactly what the command line would see.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
from pathlib import Path

import attrs
import numpy as np
from PIL import Image

from mgsr.errors import ImageError
from mgsr.io.images import IMAGE_SUFFIXES, Picture, quantise, read_picture

#: defaults of ``mgsr serve --max-upload-mb`` and ``--max-pixels``
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16_000_000


@attrs.frozen
class Limits:
    """What one upload may be: bytes on the wire and pixels its header claims."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


@attrs.frozen
class Upload:
    """An accepted image: our own copy of its bytes, the decoded picture and an 8-bit RGB view for the page."""

    path: Path
    name: str  # the client's file name, cleaned: for the suggested output and command line only
    picture: Picture
    display: np.ndarray  # uint8 (H, W, 3)


def clean_name(name: str, fallback: str = "image.png") -> str:
    """A file name safe to show and to write into a command line: no folders, only plain characters."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name).replace("\\", "/")).name).strip("._")
    stem, suffix = os.path.splitext(base)
    if not stem:
        return fallback
    return f"{stem[:80]}{suffix.lower() if suffix.lower() in IMAGE_SUFFIXES else '.png'}"


def claimed_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as the file's header claims it, or None when no image reader recognises the file.

    Pillow's format readers are called directly rather than through ``Image.open``, which
    first applies Pillow's own decompression-bomb limit (twice ``Image.MAX_IMAGE_PIXELS``,
    with Pillow's wording): the user is to meet one limit, ``--max-pixels``, in mgsr's words.
    Reading a header decodes no pixels, so skipping Pillow's check here costs nothing.
    """
    Image.init()
    with open(path, "rb") as fh:
        prefix = fh.read(16)
        for kind in list(Image.ID):
            factory, accepts = Image.OPEN[kind]
            verdict = accepts(prefix) if accepts is not None else True
            if not verdict or isinstance(verdict, str):  # a str is Pillow's "almost, but no"
                continue
            fh.seek(0)
            try:
                return factory(fh, str(path)).size
            except (SyntaxError, IndexError, TypeError, struct.error, OSError, ValueError, EOFError):
                continue
    return None


def check_limits(path: Path, limits: Limits, what: str = "image", name: str | None = None) -> None:
    """Refuse a file over the byte limit, or whose header claims more pixels than allowed (no decoding).

    ``name`` is the client's name of the file, for the message; ``path`` (the server's copy)
    never appears in one.
    """
    called = f"the {what}" + (f" {name!r}" if name else "")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageError(
            f"{called} is {size / 2**20:.1f} MB; this server accepts at most "
            f"{limits.max_bytes / 2**20:.3g} MB (mgsr serve --max-upload-mb)"
        )
    if size == 0:
        raise ImageError(f"{called} is an empty file (0 bytes)")
    claimed = claimed_size(path)
    if claimed is None:
        raise ImageError(
            f"{called} is not an image mgsr can read (PNG, JPEG, TIFF, BMP, WebP, PPM/PGM or GIF); choose an image file"
        )
    width, height = claimed
    if width * height > limits.max_pixels:
        raise ImageError(
            f"{called} is {width} x {height} = {width * height / 1e6:.1f} Mpx, over this server's "
            f"--max-pixels of {limits.max_pixels / 1e6:.1f} Mpx; reduce it, or start mgsr serve "
            f"with a larger --max-pixels"
        )


def content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def accept(
    source: str | os.PathLike[str], client_name: str, work: Path, limits: Limits, what: str = "image"
) -> tuple[Path, Picture]:
    """Check an uploaded file, copy it into ``work`` (named by content) and decode it as ``mgsr upscale`` does.

    ``source`` is the file the web framework stored for this upload, never a path from the client.
    """
    source = Path(source)
    check_limits(source, limits, what, clean_name(client_name))
    suffix = Path(clean_name(client_name)).suffix
    folder = work / content_digest(source)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"upload{suffix}"
    if not copy.exists():
        shutil.copyfile(source, copy)
    try:
        picture = read_picture(copy)
    except ImageError as exc:
        # read_picture names the file; ours is an internal copy, so name the client's file instead
        reason = str(exc).replace(str(copy) + ": ", "").replace(str(copy), clean_name(client_name))
        raise ImageError(f"the {what} {clean_name(client_name)!r} cannot be used: {reason}") from None
    return copy, picture


def open_upload(source: str | os.PathLike[str], client_name: str, work: Path, limits: Limits) -> Upload:
    copy, picture = accept(source, client_name, work, limits)
    return Upload(path=copy, name=clean_name(client_name), picture=picture, display=to_display(picture.rgb()))


def to_display(rgb: np.ndarray) -> np.ndarray:
    """Float (H, W, 3) -> uint8 for the page (clamped, rounded); a quantised result is taken to 8 bits."""
    return quantise(rgb, 8)
