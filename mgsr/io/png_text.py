"""PNG text chunks over Pillow's limits: left out with a warning, so the picture itself is still read.

Pillow refuses a whole PNG when one zTXt or iTXt chunk inflates to more than ``PngImagePlugin.MAX_TEXT_CHUNK``
(1 MB), or when the text chunks together hold more than ``MAX_TEXT_MEMORY`` (64 MB): its defence against
decompression bombs hidden in metadata.  The pixels of such a file are good, and what a chunk that large
usually holds (an embedded workflow, a long prompt) is not worth the image.  So when Pillow refuses a PNG,
its chunks are walked, those over the limits are left out of an in-memory copy, and the copy is read instead.
Raising the limits would lift the defence for every file, and they are module globals shared by every thread.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import PngImagePlugin

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


def _text_size(kind: bytes, body: bytes, limit: int) -> tuple[int, bool]:
    """(bytes of text ``body`` gives Pillow, whether they were compressed); compressed text is inflated up to
    ``limit + 1`` bytes only, so a bomb is never inflated here either."""
    rest = body.partition(b"\0")[2]
    if kind == b"tEXt":
        return len(rest), False
    if kind == b"zTXt":
        compressed = rest[1:]
    else:  # iTXt: compression flag, method, language\0, translated keyword\0, text
        if len(rest) < 2:
            return 0, False
        flag, text = rest[0], rest[2:].split(b"\0", 2)[-1]
        if flag == 0:
            return len(text), False
        compressed = text
    try:
        return len(zlib.decompressobj().decompress(compressed, limit + 1)), True
    except zlib.error:
        return 0, True  # Pillow skips a chunk that does not inflate


def _chunks(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(type, body, whole chunk bytes) of each chunk after the signature; a cut-off tail is one last piece."""
    chunks, at = [], len(_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if end > len(data):
            break
        chunks.append((data[at + 4 : at + 8], data[at + 8 : end - 4], data[at:end]))
        at = end
    if at < len(data):
        chunks.append((b"", b"", data[at:]))  # kept as it was: Pillow says what is wrong with it
    return chunks


def without_oversized_text(path: Path) -> tuple[bytes, list[str]] | None:
    """The PNG at ``path`` without its text chunks over Pillow's limits, and one line per chunk left out.

    None when the file is not a PNG or no text chunk is over the limits (Pillow refused it for another reason).
    """
    with open(path, "rb") as fh:
        if fh.read(len(_SIGNATURE)) != _SIGNATURE:
            return None
        data = _SIGNATURE + fh.read()
    per_chunk, total = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    kept, dropped, held = [_SIGNATURE], [], 0
    for kind, body, whole in _chunks(data):
        if kind in _TEXT_TYPES:
            size, compressed = _text_size(kind, body, per_chunk)
            name = body.partition(b"\0")[0].decode("latin-1")
            too_big = compressed and size > per_chunk  # Pillow bounds inflated text only, chunk by chunk
            if too_big or held + size > total:
                why = (
                    f"inflates to more than Pillow's limit of {per_chunk // 2**20} MB for one chunk"
                    if too_big
                    else f"({size:,} bytes) takes the text over Pillow's limit of {total // 2**20} MB in all"
                )
                dropped.append(f"text chunk {name!r} {why}; the chunk is left out, the image is kept")
                continue
            held += size
        kept.append(whole)
    return (b"".join(kept), dropped) if dropped else None
