"""Hostile metadata (issue 29): densities no format can hold, broken EXIF, text chunks over Pillow's limits.

The files are written byte by byte here, as a camera, an editor or an attacker could have written them; the
rule they check is the README's: "the other images are still processed", and metadata never costs an image.
"""

from __future__ import annotations

import concurrent.futures
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.io.images import Picture, read_picture, write_picture
from mgsr.io.metadata import Metadata

U32 = 2**32 - 1
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_file(path: Path, *, bits: int = 8, before: bytes = b"", after: bytes = b"") -> Path:
    """A 6 x 5 RGB PNG (8 or 16 bits) with raw chunks ``before`` and ``after`` its pixels."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 2**bits, (5, 6 * 3), dtype=np.uint16 if bits == 16 else np.uint8)
    rows = pixels.astype(">u2" if bits == 16 else np.uint8).tobytes()
    stride = len(rows) // 5
    raw = b"".join(b"\0" + rows[i * stride : (i + 1) * stride] for i in range(5))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 6, 5, bits, 2, 0, 0, 0))
    path.write_bytes(SIGNATURE + ihdr + before + chunk(b"IDAT", zlib.compress(raw)) + after + chunk(b"IEND", b""))
    return path


def chunks_of(path: Path) -> dict[bytes, list[bytes]]:
    """The bodies of a PNG's chunks by type."""
    data, at, found = path.read_bytes(), len(SIGNATURE), {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.setdefault(data[at + 4 : at + 8], []).append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return found


def upscale(*args: str) -> int:
    return main(["upscale", *args, "--scale", "2", "--noise", "0", "--tile", "0", "--device", "cpu", "-q"])


def test_the_largest_png_density_costs_no_image_of_a_folder_job(tmp_path, capsys):
    """README: "the other images are still processed" -- and a density is no reason for an error at all:
    4294967295 px/m (pHYs's largest) at 2x is stored as the largest, where it aborted the whole job."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    densest = chunk(b"pHYs", struct.pack(">IIB", U32, U32, 1))
    png_file(folder / "dense8.png", before=densest)
    png_file(folder / "dense16.png", bits=16, before=densest)  # pypng's path: struct.pack overflowed there
    png_file(folder / "plain.png")
    code = upscale(str(folder), "-o", str(out))
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    assert sorted(p.name for p in out.iterdir()) == ["dense16_x2.png", "dense8_x2.png", "plain_x2.png"]
    for name in ("dense8_x2.png", "dense16_x2.png"):
        assert chunks_of(out / name)[b"pHYs"] == [struct.pack(">IIB", U32, U32, 1)]
        assert f"mgsr: warning: {out / name}: PNG DPI" in err  # the user is told the print size moved


def test_jpeg_dpi_is_clamped_to_16_bits_not_wrapped(tmp_path):
    """65535 dpi at 2x is 131070, more than JFIF's 16 bits: written as 65535 (libjpeg wrapped it to 65534)."""
    source, target = tmp_path / "dense.jpg", tmp_path / "out.jpg"
    Image.fromarray(np.full((5, 6, 3), 120, np.uint8)).save(source, dpi=(65535, 65535))
    assert upscale(str(source), "-o", str(target)) == 0
    with Image.open(target) as im:
        assert im.info["dpi"] == (65535, 65535)


def test_metadata_the_writer_refuses_is_dropped_not_the_image(tmp_path):
    """A text key Pillow cannot encode (PNG keys are latin-1): the image is written without its metadata."""
    picture = Picture(
        color=np.full((4, 5, 3), 0.5, np.float32), metadata=Metadata(dpi=(72.0, 72.0), text={"Zoë ✓": "v"})
    )
    target = tmp_path / "out.png"
    with pytest.warns(UserWarning, match="metadata could not be written"):
        write_picture(target, picture)
    with Image.open(target) as im:
        assert im.size == (5, 4) and np.asarray(im).mean() == 128


def broken_exif_jpeg(path: Path) -> Path:
    """A JPEG whose APP1 EXIF claims five IFD entries and holds one cut short."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((5, 6, 3), 120, np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    app1 = b"Exif\0\0" + b"II*\0\x08\0\0\0" + struct.pack("<H", 5) + b"\x0f\x01\x02\0"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    return path


def test_pillows_warnings_while_reading_name_the_file(tmp_path):
    """Issue 29: 'mgsr: warning: Corrupt EXIF data. ...' named no file; every warning of the read names it."""
    source = broken_exif_jpeg(tmp_path / "broken_exif.jpg")
    with pytest.warns(UserWarning) as heard:
        read_picture(source)
    messages = [str(w.message) for w in heard]
    assert any(m.startswith(f"{source}: Corrupt EXIF data") for m in messages), messages
    assert all(m.startswith(f"{source}: ") for m in messages), messages


def text_chunk(kind: bytes, key: bytes, text: bytes) -> bytes:
    """A zTXt, or a compressed iTXt, holding ``text``."""
    if kind == b"zTXt":
        return chunk(kind, key + b"\0\0" + zlib.compress(text))
    return chunk(kind, key + b"\0\1\0\0\0" + zlib.compress(text))


def test_a_text_chunk_over_pillows_limit_is_dropped_and_the_image_kept(tmp_path, capsys):
    """Pillow refuses a whole PNG whose one text chunk inflates past 1 MB: the chunk goes, with a warning."""
    big = b"y" * (2**20 + 100)
    title = chunk(b"tEXt", b"Title\0kept")
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    png_file(folder / "before.png", before=title + text_chunk(b"zTXt", b"parameters", big))
    png_file(folder / "after.png", before=title, after=text_chunk(b"iTXt", b"workflow", big))
    png_file(folder / "deep.png", bits=16, before=title + text_chunk(b"zTXt", b"parameters", big))
    for name, key in (("before", "parameters"), ("after", "workflow"), ("deep", "parameters")):
        source = folder / f"{name}.png"
        with pytest.warns(UserWarning, match=f"^{source}: text chunk '{key}' inflates to more than Pillow's"):
            assert read_picture(source).metadata.text == {"Title": "kept"}
    assert upscale(str(folder), "-o", str(out)) == 0, capsys.readouterr().err
    for name in ("before", "after", "deep"):
        with Image.open(out / f"{name}_x2.png") as im:
            im.load()
            assert im.size == (12, 10) and im.text == {"Title": "kept"}


def test_a_sixteen_bit_png_is_written_without_a_resource_warning(tmp_path):
    """pypng's Reader(filename=) left the file open: each 16-bit output printed 'unclosed file' in a folder job,
    whose write records every warning."""
    picture = Picture(color=np.full((4, 5, 3), 0.5, np.float32), bits=16, metadata=Metadata(dpi=(72.0, 72.0)))
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        write_picture(tmp_path / "deep.png", picture)
    assert [str(w.message) for w in heard] == []


def test_text_chunks_over_pillows_total_are_dropped_from_the_one_that_crosses_it(tmp_path):
    """65 chunks of 1 MB each pass Pillow's per-chunk limit, not its 64 MB in all: the 65th is left out."""
    megabyte = zlib.compress(b"z" * 2**20)
    chunks = b"".join(chunk(b"zTXt", f"part{i}".encode() + b"\0\0" + megabyte) for i in range(65))
    source = png_file(tmp_path / "many.png", before=chunks)
    with pytest.warns(UserWarning, match="part64' .* over Pillow's limit of 64 MB in all"):
        picture = read_picture(source)
    assert len(picture.metadata.text) == 64 and "part64" not in picture.metadata.text


def test_reads_in_several_threads_keep_each_files_warnings_and_the_process_state(tmp_path):
    """mgsr serve reads uploads in worker threads: each read's warnings name its own file, none is lost, and the
    process's warning state is as before once all reads are done (overlapping captures used to restore each
    other's state, leaving warnings going to a finished read's list)."""
    broken = [broken_exif_jpeg(tmp_path / f"broken_{i}.jpg") for i in range(2)]
    shown_before, filters_before = warnings.showwarning, list(warnings.filters)
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        recorder = warnings.showwarning
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(read_picture, broken * 40))
        assert warnings.showwarning is recorder, "a read left its own warning hook installed"
        warnings.warn("after the reads", stacklevel=1)  # still reaches the caller's handling
    messages = [str(w.message) for w in heard]
    assert messages[-1] == "after the reads"
    for path in broken:  # Pillow says one line per read, now with the file in front
        assert sum(m.startswith(f"{path}: Corrupt EXIF data") for m in messages) == 40, messages[:4]
    assert all(m.startswith(tuple(f"{p}: " for p in broken)) for m in messages[:-1])
    assert warnings.showwarning is shown_before and warnings.filters == filters_before
