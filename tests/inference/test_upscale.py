"""mgsr upscale: parity through the CLI, tiling, seeds, noise control, every image mode, bad inputs."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

import mgsr
from mgsr.cli import main
from mgsr.inference.pictures import super_resolve
from mgsr.io.images import read_picture
from mgsr.training.checkpoint import save_checkpoint

from ..helpers import smooth_rgb

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def r3():
    return mgsr.pretrained("pirm-r3")


def upscale_cli(tmp_path: Path, source: Path, *extra: str, name: str = "out.png") -> tuple[int, Path]:
    out = tmp_path / name
    code = main(["upscale", str(source), "-o", str(out), "--scale", "2", "-q", *extra])
    return code, out


@pytest.mark.compat
def test_cli_matches_the_release_at_w0(reference, tmp_path):
    data = np.load(reference / "official-parity" / "r3_x4_w0_chelsea.npz")
    lr = np.round(data["lr"][0].transpose(1, 2, 0) * 255).astype(np.uint8)
    src = tmp_path / "lr.png"
    Image.fromarray(lr).save(src)
    out = tmp_path / "sr.png"
    assert main(["upscale", str(src), "-o", str(out), "--model", "pirm-r3", "--scale", "4", "--noise", "0", "-q"]) == 0
    ours = np.asarray(Image.open(out)).astype(int)
    theirs = np.round(np.clip(data["sr"][0].transpose(1, 2, 0), 0, 1) * 255).astype(int)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1


@pytest.mark.compat
@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_tiled_equals_untiled(r3, noise):
    rgb = smooth_rgb(70, 58).astype(np.float32) / 255
    whole = super_resolve(r3, rgb, scale=2, noise=noise, seed=5)
    tiled = super_resolve(r3, rgb, scale=2, noise=noise, seed=5, tile=24, margin=24)
    assert np.abs(whole - tiled).max() < 1e-5


@pytest.mark.parametrize("bits", [8, 16])
def test_tiles_keep_a_picture_within_its_rounding(r3, bits):
    """Pictures get the tile context their depth needs (less for 8-bit: faster): tiled stays within one
    level of the untiled result, and almost every value is the same."""
    from mgsr.inference.pictures import picture_from_array, upscale_picture

    top = 2**bits - 1
    rng = np.random.default_rng(0)  # texture at every frequency: the context matters most there
    rgb = smooth_rgb(64, 64).astype(np.float64) / 255 * 0.6 + 0.4 * rng.random((64, 64, 3))
    picture = picture_from_array(np.round(rgb * top).astype(np.uint8 if bits == 8 else np.uint16))
    run = lambda tile: upscale_picture(r3, picture, scale=2, noise=1.0, seed=2, tile=tile).color.astype(int)  # noqa: E731
    whole, tiled = run(None), run(20)
    levels = np.abs(whole - tiled)
    # measured at 2x: 8-bit with 12 pixels of context 0.11 % of values off, 16 0.002 %; 16-bit with 16
    # pixels 0.5 % off, 24 none
    assert levels.max() <= 1 and (levels > 0).mean() < 1e-3, (levels.max(), (levels > 0).mean())


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(20, 24)).save(src)
    runs = [upscale_cli(tmp_path, src, "--noise", "1", "--seed", s, name=f"o{i}.png") for i, s in enumerate("778")]
    blobs = [path.read_bytes() for _, path in runs]
    assert blobs[0] == blobs[1] and blobs[0] != blobs[2]


def test_noise_per_level_and_noise_map(r3, tmp_path):
    rgb = smooth_rgb(24, 32).astype(np.float32) / 255
    run = lambda **kw: super_resolve(r3, rgb, scale=4, seed=1, **kw)  # noqa: E731
    np.testing.assert_allclose(run(noise=[0.5, 0.5]), run(noise=0.5), atol=1e-6)
    assert np.abs(run(noise=[0.0, 1.0]) - run(noise=0.0)).max() > 1e-3
    w0, w1 = run(noise=0.0), run(noise=1.0)
    np.testing.assert_allclose(run(noise=1.0, noise_map=np.zeros((24, 32), np.float32)), w0, atol=1e-6)
    np.testing.assert_allclose(run(noise=1.0, noise_map=np.ones((24, 32), np.float32)), w1, atol=1e-6)
    half = np.zeros((24, 32), np.float32)
    half[:, 16:] = 1
    mixed = run(noise=1.0, noise_map=half)
    # far from the boundary each side behaves like its W (the map is resized to every level)
    assert np.abs(mixed[:, :24] - w0[:, :24]).max() < 0.02
    assert np.abs(mixed[:, 104:] - w1[:, 104:]).max() < 0.02
    assert np.abs(mixed[:, 104:] - w0[:, 104:]).max() > 0.02


def test_noise_map_through_the_cli(tmp_path):
    src, black = tmp_path / "in.png", tmp_path / "map.png"
    Image.fromarray(smooth_rgb(16, 16)).save(src)
    Image.new("L", (8, 8), 0).save(black)  # any size: resized to the image
    _, with_map = upscale_cli(tmp_path, src, "--noise", "1", "--noise-map", str(black), name="a.png")
    _, plain = upscale_cli(tmp_path, src, "--noise", "0", name="b.png")
    assert np.abs(np.asarray(Image.open(with_map)).astype(int) - np.asarray(Image.open(plain)).astype(int)).max() <= 1


def test_calibration_file_sets_w(tmp_path):
    src, calib = tmp_path / "in.png", tmp_path / "calib.json"
    Image.fromarray(smooth_rgb(12, 12)).save(src)
    calib.write_text('{"model": "pirm-r3", "noise": 0.0}')
    _, a = upscale_cli(tmp_path, src, "--noise", str(calib), name="a.png")
    _, b = upscale_cli(tmp_path, src, "--noise", "0", name="b.png")
    assert a.read_bytes() == b.read_bytes()
    calib.write_text("{}")
    assert upscale_cli(tmp_path, src, "--noise", str(calib), name="c.png")[0] != 0


# --- image modes ----------------------------------------------------------------------------------


def roundtrip(tmp_path: Path, im: Image.Image, suffix: str = ".png", **save) -> Image.Image:
    src = tmp_path / f"in{suffix}"
    im.save(src, **save)
    code, out = upscale_cli(tmp_path, src, "--noise", "0", "--overwrite", name=f"out{suffix}")  # reused names
    assert code == 0
    return Image.open(out)


def test_grey_stays_grey(tmp_path):
    grey = Image.fromarray(smooth_rgb(10, 12)[..., 0])
    out = roundtrip(tmp_path, grey)
    assert out.mode == "L" and out.size == (24, 20)
    # the same picture given as RGB (three equal planes) gives the same luminance
    rgb = roundtrip(tmp_path, grey.convert("RGB"), suffix=".bmp")
    assert np.abs(np.asarray(rgb.convert("L")).astype(int) - np.asarray(out).astype(int)).max() <= 1


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_upscaled_separately_and_kept(tmp_path, mode):
    rgb = smooth_rgb(12, 12)
    alpha = np.full((12, 12), 200, np.uint8)
    alpha[:, :6] = 0
    im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA").convert(mode)
    out = roundtrip(tmp_path, im)
    assert out.mode == mode and out.size == (24, 24)
    a = np.asarray(out)[..., -1]
    assert (a[:, :9] == 0).all() and (a[:, 15:] == 200).all()


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.fromarray(smooth_rgb(10, 10)).quantize(16)
    assert roundtrip(tmp_path, pal).mode == "RGB"
    pal.info["transparency"] = 0
    assert roundtrip(tmp_path, pal, transparency=0).mode == "RGBA"


def test_sixteen_bit_grey_keeps_depth(tmp_path):
    data = (smooth_rgb(10, 10)[..., 1].astype(np.uint16) * 257 + RNG.integers(0, 200, (10, 10))).astype(np.uint16)
    out = roundtrip(tmp_path, Image.fromarray(data))
    assert out.mode.startswith("I;16") or out.mode == "I"
    values = np.asarray(out)
    assert values.max() > 255 and len(np.unique(values % 257)) > 10  # not 8-bit values scaled up


def test_sixteen_bit_rgb_keeps_depth(tmp_path):
    data = (smooth_rgb(8, 9).astype(np.uint16) * 257 + RNG.integers(0, 200, (8, 9, 3))).astype(np.uint16)
    src = tmp_path / "in16.png"
    with open(src, "wb") as fh:
        png.Writer(width=9, height=8, bitdepth=16, greyscale=False).write(fh, data.reshape(8, 27))
    code, out = upscale_cli(tmp_path, src, "--noise", "0")
    assert code == 0
    _, _, rows, info = png.Reader(filename=str(out)).asDirect()
    assert info["bitdepth"] == 16 and info["planes"] == 3
    values = np.vstack([np.asarray(r, np.uint16) for r in rows])
    assert values.shape == (16, 54) and len(np.unique(values % 257)) > 10
    assert read_picture(out).bits == 16


def test_cmyk_jpeg_stays_cmyk(tmp_path):
    out = roundtrip(tmp_path, Image.fromarray(smooth_rgb(12, 10)).convert("CMYK"), suffix=".jpg", quality=95)
    assert out.mode == "CMYK" and out.size == (20, 24)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(smooth_rgb(8, 14))  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display: portrait
    out = roundtrip(tmp_path, im, suffix=".jpg", exif=exif.tobytes())
    assert out.size == (16, 28)


@pytest.mark.parametrize("size", [(1, 1), (2, 3)])
def test_tiny_images(tmp_path, size):
    out = roundtrip(tmp_path, Image.fromarray(smooth_rgb(*size)))
    assert out.size == (2 * size[1], 2 * size[0])


def test_python_api_keeps_type_mode_and_dtype():
    im = Image.fromarray(smooth_rgb(8, 8)).convert("LA")
    out = mgsr.upscale(im, scale=2, noise=0.0)
    assert isinstance(out, Image.Image) and out.mode == "LA" and out.size == (16, 16)
    arr = smooth_rgb(6, 7).astype(np.uint16) * 257
    res = mgsr.upscale(arr, scale=2, noise=0.0, tile=None)
    assert res.dtype == np.uint16 and res.shape == (12, 14, 3)


# --- bad inputs -----------------------------------------------------------------------------------


def bomb_png(path: Path) -> None:
    """A valid PNG header announcing 100000 x 100000 pixels (no data needed to trip the check)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_bad_inputs_are_reported_and_the_rest_processed(tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(smooth_rgb(8, 8)).save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello, not an image")
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(32, 32)).save(buf, format="PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    bomb = tmp_path / "bomb.png"
    bomb_png(bomb)
    empty_dir = tmp_path / "nothing_here"
    empty_dir.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "blocked_x2.png").mkdir()  # a folder where the output file must go: unwritable target
    blocked = tmp_path / "blocked.png"
    Image.fromarray(smooth_rgb(8, 8)).save(blocked)
    inputs = [empty, text, truncated, bomb, tmp_path / "missing.png", empty_dir, blocked, good]
    code = main(["upscale", *map(str, inputs), "-o", str(out), "--scale", "2", "-q"])
    err = capsys.readouterr().err
    assert code == 5
    lines = [line for line in err.splitlines() if line.startswith("mgsr: error:")]
    assert len(lines) == 7
    for path in inputs[:-1]:
        assert any(path.name in line for line in lines), path.name
    assert "decompression bomb" in err and "0 bytes" in err
    produced = sorted(p.name for p in out.iterdir())
    assert produced == ["blocked_x2.png", "good_x2.png"]  # nothing partial, no temp files


def test_unwritable_output_location(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    code = main(["upscale", str(src), "-o", str(a_file / "out.png"), "-q"])
    assert code == 5 and "plain.txt" in capsys.readouterr().err


def test_bad_options(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--noise", "abc"]) != 0
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--noise", "1,1,1", "--scale", "4"]) != 0
    assert main(["upscale", str(src), str(src), "-o", str(tmp_path / "o.png")]) != 0
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--tile", "-3"]) != 0
    err = capsys.readouterr().err
    assert "--noise 'abc'" in err and "3 values" in err and "output folder" in err and "--tile" in err


def test_non_finite_noise_is_refused(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    for bad in ("nan", "inf", "0.5,-1"):
        assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--noise", bad, "-q"]) != 0
    assert "finite and >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_outputs_get_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        src = tmp_path / "in.png"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
        assert main(["upscale", str(src), "-o", str(tmp_path / "o.jpg"), "--format", "jpeg", "-q", "--scale", "2"]) == 0
        save_checkpoint(tmp_path / "ck", 1, {})
    finally:
        os.umask(old)
    for path in (tmp_path / "o.jpg", tmp_path / "ck" / "step-000000001.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_cmyk_pil_image_comes_back_cmyk():
    im = Image.new("CMYK", (6, 5), (10, 20, 30, 40))
    out = mgsr.upscale(im, scale=2, noise=0.0)
    assert out.mode == "CMYK" and out.size == (12, 10)


def test_a_tile_string_other_than_auto_is_refused(r3):
    from mgsr.errors import MgsrError
    from mgsr.inference.pictures import picture_from_array, upscale_picture

    picture = picture_from_array(smooth_rgb(8, 8))
    with pytest.raises(MgsrError, match=r"tile '64px': give a tile side in pixels, 'auto' or None"):
        upscale_picture(r3, picture, scale=2, tile="64px")
