"""Metadata kept by `mgsr upscale`: EXIF (orientation applied, then reset to 1), ICC, DPI scaled by the
factor so the print size stays, PNG text chunks; per output format, read back with Pillow."""

from __future__ import annotations

import numpy as np
import png
import pytest
from PIL import Image, ImageCms

from mgsr.cli import main
from mgsr.io.images import Picture, read_picture, write_picture
from mgsr.io.metadata import ORIENTATION, Metadata

EXIF_IFD, MAKE, DATE_TAKEN, PIXEL_X, PIXEL_Y, X_RES, Y_RES = 0x8769, 0x010F, 0x9003, 0xA002, 0xA003, 0x011A, 0x011B
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
RNG = np.random.default_rng(0)


def camera_exif(orientation: int, width: int, height: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Acme"
    exif[X_RES], exif[Y_RES] = 100.0, 200.0
    exif.get_ifd(EXIF_IFD).update({DATE_TAKEN: "2021:06:01 12:00:00", PIXEL_X: width, PIXEL_Y: height})
    return exif


def photo(path, fmt: str) -> np.ndarray:
    """A 6 x 4 (w x h) photo stored turned (orientation 6: shown rotated 90 degrees clockwise, 4 x 6)."""
    pixels = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    exif = camera_exif(6, 6, 4)
    options: dict = {"exif": exif, "icc_profile": SRGB}
    if fmt == "TIFF":  # Pillow's TIFF writer keeps the Exif sub-IFD only as a tag
        options = {"tiffinfo": {**exif, EXIF_IFD: exif.get_ifd(EXIF_IFD)}, "icc_profile": SRGB}
    if fmt in ("PNG", "JPEG", "TIFF"):
        options["dpi"] = (100, 200)
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("parameters", "steps: 20")
        info.add_itxt("Title", "Zoë's café ✓")
        options["pnginfo"] = info
    if fmt == "JPEG":
        options["quality"] = 100
    if fmt == "WEBP":
        options["lossless"] = True
    Image.fromarray(pixels).save(path, fmt, **options)
    return pixels


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("TIFF", ".tif"), ("WEBP", ".webp")])
def test_upscale_keeps_metadata(tmp_path, fmt, suffix):
    source, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    photo(source, fmt)
    assert main(["upscale", str(source), "-o", str(out), "--scale", "2", "--noise", "0", "-q"]) == 0
    with Image.open(out) as im:
        im.load()
        assert im.size == (8, 12)  # the orientation was applied: 4 x 6 shown, upscaled 2x
        exif = im.getexif()
        assert exif.get(ORIENTATION) == 1  # and reset, so viewers do not turn it again
        assert exif[MAKE] == "Acme"
        sub = exif.get_ifd(EXIF_IFD)
        assert sub[DATE_TAKEN] == "2021:06:01 12:00:00"
        assert (sub[PIXEL_X], sub[PIXEL_Y]) == (8, 12)
        # stored 100 x 200 DPI turned a quarter: 200 x 100 shown; 2x the pixels on the same paper
        assert (float(exif[X_RES]), float(exif[Y_RES])) == (400.0, 200.0)
        assert im.info.get("icc_profile") == SRGB
        if fmt != "WEBP":  # WebP has no DPI field (EXIF's resolution above carries it)
            assert np.allclose(im.info["dpi"], (400, 200), atol=0.01)
        if fmt == "PNG":
            assert im.text == {"parameters": "steps: 20", "Title": "Zoë's café ✓"}


def test_metadata_moves_between_formats(tmp_path):
    """PNG in, JPEG out: EXIF and DPI are kept; text chunks have no place in a JPEG."""
    source, out = tmp_path / "in.png", tmp_path / "out.jpg"
    photo(source, "PNG")
    assert main(["upscale", str(source), "-o", str(out), "--scale", "2", "--noise", "0", "-q"]) == 0
    with Image.open(out) as im:
        assert im.getexif()[MAKE] == "Acme"
        assert im.info["dpi"] == (400, 200)


def test_sixteen_bit_png_keeps_metadata_and_is_turned(tmp_path):
    """16-bit RGB goes through pypng, which has no metadata options: the chunks are added by mgsr."""
    stored = RNG.integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    turned_exif = camera_exif(8, 6, 4).tobytes()  # orientation 8: shown rotated 90 degrees counter-clockwise
    picture = Picture(
        color=stored.astype(np.float32) / 65535,
        bits=16,
        icc_profile=SRGB,
        metadata=Metadata(exif=turned_exif, dpi=(100.0, 200.0), size=(4, 6), text={"k": "v ✓"}),
    )
    path = tmp_path / "deep.png"
    write_picture(path, picture)
    assert png.Reader(filename=str(path)).asDirect()[3]["bitdepth"] == 16
    with Image.open(path) as im:  # Pillow reads what pypng's file now holds
        assert im.info["icc_profile"] == SRGB and im.text == {"k": "v ✓"}
        assert im.getexif()[ORIENTATION] == 8
        assert np.allclose(im.info["dpi"], (100, 200), atol=0.01)

    back = read_picture(path)
    assert back.size == (6, 4)
    assert np.array_equal(np.round(back.color * 65535).astype(np.uint16), np.rot90(stored, 1))
    assert Image.Exif().load(back.metadata.exif) is None
    exif = Image.Exif()
    exif.load(back.metadata.exif)
    assert exif[ORIENTATION] == 1 and back.metadata.dpi == pytest.approx((200, 100), abs=0.01)
    assert back.icc_profile == SRGB


def test_no_metadata_writes_none(tmp_path):
    """A picture made in memory (no file behind it) writes no EXIF, DPI or text."""
    path = tmp_path / "plain.png"
    write_picture(path, Picture(color=np.zeros((3, 5, 3), np.float32)))
    with Image.open(path) as im:
        assert "dpi" not in im.info and not im.getexif() and not im.text
