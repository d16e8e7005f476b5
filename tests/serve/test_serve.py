"""mgsr serve without a server: uploads are checked before decoding, and one request's work equals mgsr upscale.

The server itself (Gradio, HTTP) is tested in test_serve_server.py; the page in a
browser in test_serve_browser.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import png
import pytest
from PIL import Image

from mgsr.cli import main
from mgsr.cli.serve import is_local
from mgsr.errors import ImageError, MgsrError, WeightsError
from mgsr.evaluation.calibration_model import fitted_model
from mgsr.model.card import ModelCard
from mgsr.model.weights import bundled_path, write_card
from mgsr.serve import jobs, maps
from mgsr.serve.catalog import Catalog
from mgsr.serve.crop import crop_box
from mgsr.serve.failures import public_message
from mgsr.serve.server import Server, remove_old_files, request_folder
from mgsr.serve.settings import (
    BY_DETAIL,
    BY_W,
    Knobs,
    Settings,
    detail_says,
    level_for_output,
    model_start,
    page_settings,
)
from mgsr.serve.uploads import Limits, check_limits, claimed_size, clean_name, open_upload

from ..helpers import png_claiming, smooth_rgb
from ..serve_helpers import half_flat_photo, write_adaptive_calibration


def stroke_layer(size: tuple[int, int], box: tuple[int, int, int, int], grey: int, alpha: int = 255) -> np.ndarray:
    """An RGBA brush layer: transparent except a ``grey`` rectangle (y0, y1, x0, x1)."""
    layer = np.zeros((*size, 4), dtype=np.uint8)
    y0, y1, x0, x1 = box
    layer[y0:y1, x0:x1] = (grey, grey, grey, alpha)
    return layer


def test_uploads_over_the_limits_are_refused_before_decoding(tmp_path, monkeypatch):
    limits = Limits(max_bytes=4096, max_pixels=1_000_000)
    # Pillow's own bomb limit is the server's (mgsr serve sets it); ours must speak first, with its numbers
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limits.max_pixels)
    for width, height in [(100_000, 100_000), (5000, 5000)]:
        with pytest.raises(
            ImageError,
            match=rf"'b.png' is {width} x {height} = .* Mpx, over this server's "
            r"--max-pixels of 1.0 Mpx",
        ):
            check_limits(png_claiming(tmp_path / "b.png", width, height), limits, name="b.png")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(ImageError, match="at most 0.00391 MB"):
        check_limits(big, limits)
    text = tmp_path / "t.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="'t.png' is not an image mgsr can read") as caught:
        check_limits(text, limits, name="t.png")
    assert str(tmp_path) not in str(caught.value)
    ok = tmp_path / "ok.png"
    Image.fromarray(smooth_rgb(8, 12)).save(ok)
    check_limits(ok, limits)
    assert claimed_size(ok) == (12, 8) and claimed_size(text) is None


def test_messages_for_the_page_name_no_server_folder():
    said = public_message(
        "the image 'a.png' cannot be used: cannot identify image file "
        "'/tmp/gradio/3f9c2e/notes.png' (C:\\Temp\\x\\b.png)"
    )
    assert said == "the image 'a.png' cannot be used: cannot identify image file 'notes.png' (b.png)"
    assert public_message("W 0.5/1 at --max-pixels") == "W 0.5/1 at --max-pixels"


def test_preview_line_names_its_settings_and_mask(tmp_path):
    settings = Settings.make("pirm-r1", 4, 0.25, None, 3)
    assert jobs.describe(settings, None) == "pirm-r1 · 4x · W 0.25 · seed 3 · no painted regions"
    folder = tmp_path / "f"
    folder.mkdir()
    grey = maps.painted_mask([stroke_layer((4, 5), (0, 2, 0, 5), 0)], (4, 5))
    line = jobs.describe(Settings.make("pirm-r3", 8, 0.5, [0.1, 0.2, 0.3], 0), maps.save_painted(grey, folder, "p"))
    assert line.startswith("pirm-r3 · 8x · W per level 0.1,0.2,0.3 · seed 0 · painted: W lowered on 50.0 % ")
    other = maps.painted_mask([stroke_layer((4, 5), (0, 2, 0, 4), 0)], (4, 5))
    assert jobs.describe(settings, maps.save_painted(other, folder, "q")) != line  # the mask's digest


def test_client_names_never_become_paths():
    assert clean_name("../../etc/passwd") == "passwd.png"
    assert clean_name("C:\\Users\\me\\photo 1.JPG") == "photo_1.jpg"
    assert clean_name("..") == "image.png"
    assert clean_name("a;rm -rf ~.png") == "a_rm_-rf_.png"


def test_catalog_offers_only_its_models(tmp_path):
    catalog = Catalog()
    assert catalog.labels == ["pirm-r1", "pirm-r2", "pirm-r3"] and catalog.default == "pirm-r3"
    assert catalog.get("pirm-r2").default_noise == 0.275
    with pytest.raises(MgsrError, match="not offered"):
        catalog.get("/etc/passwd")
    own = tmp_path / "mine.safetensors"
    shutil.copy(bundled_path("pirm-r2"), own)
    catalog = Catalog(["pirm-r1", str(own)])
    assert catalog.labels == ["pirm-r1", "pirm-r2", "pirm-r3", "pirm-r2 (mine.safetensors)"]
    assert catalog.default == "pirm-r1"  # the operator's first --model
    assert catalog.get("pirm-r2 (mine.safetensors)").ref == str(own)
    with pytest.raises(WeightsError, match="unknown model"):
        Catalog([str(tmp_path / "missing.safetensors")])


def test_old_uploads_and_results_are_swept(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    remove_old_files(tmp_path)
    assert new.is_dir() and not old.exists()


def test_settings_are_checked():
    assert Settings.make("pirm-r1", "8", 0.5, [0.1, 0.2, 0.3, 0.9], 3).noise == (0.1, 0.2, 0.3)
    assert Settings.make("pirm-r1", 2, 0.5, None, 0.0).noise_arg == 0.5
    for scale, w, seed, message in [
        (3, 0.5, 0, "choose 2, 4 or 8"),
        (4, -1.0, 0, ">= 0"),
        (4, float("nan"), 0, "finite"),
        (4, 0.5, 1.5, "whole number"),
        (4, 0.5, None, "whole number"),
    ]:
        with pytest.raises(MgsrError, match=message):
            Settings.make("pirm-r1", scale, w, None, seed)


def test_painted_mask_is_white_where_unpainted():
    assert maps.painted_mask([], (4, 6)) is None
    assert maps.painted_mask([np.zeros((4, 6, 4), np.uint8)], (4, 6)) is None  # an empty layer
    half_black = stroke_layer((4, 6), (0, 2, 0, 3), 0, alpha=150)  # half-transparent paint counts in full
    mask = maps.painted_mask([half_black, stroke_layer((4, 6), (1, 4, 2, 6), 128)], (4, 6))
    expected = np.full((4, 6), 255, np.uint8)
    expected[0:2, 0:3] = 0
    expected[1:4, 2:6] = 128  # the later layer covers the earlier one
    np.testing.assert_array_equal(mask, expected)


def test_one_request_gives_the_bytes_of_its_command_line(tmp_path, monkeypatch):
    """The page's result, run through the command line it prints (files named as offered), byte for byte."""
    source = tmp_path / "client" / "my photo.png"
    source.parent.mkdir()
    pixels = smooth_rgb(12, 10).astype(np.uint16) * 257  # 16-bit RGB: depth must be kept
    png.Writer(width=10, height=12, greyscale=False, bitdepth=16).write(source.open("wb"), pixels.reshape(12, 30))
    work = tmp_path / "work"
    upload = open_upload(source, source.name, work, Limits())
    assert upload.name == "my_photo.png" and upload.picture.bits == 16 and upload.display.dtype == np.uint8
    settings = Settings.make("pirm-r1", 2, 0.8, None, 7)
    folder = request_folder(work)
    grey = maps.painted_mask([stroke_layer((12, 10), (0, 12, 0, 5), 0)], upload.picture.size)
    mask = maps.save_painted(grey, folder, "my_photo")
    catalog = Catalog()
    seen: list[tuple[int, int]] = []
    result = jobs.upscale_full(catalog, upload, settings, mask, folder, on_tile=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1]
    assert result.command == (
        "mgsr upscale my_photo.png -o my_photo_x2.png --model pirm-r1 --scale 2 "
        "--noise 0.8 --noise-map my_photo_mask.png --seed 7"
    )
    assert result.before.shape == result.after.shape == (24, 20, 3)

    user = tmp_path / "user"  # the user's folder: their photo and the downloaded mask
    user.mkdir()
    shutil.copy(source, user / "my_photo.png")
    shutil.copy(result.files[0], user / result.files[0].name)
    monkeypatch.chdir(user)
    argv = shlex.split(result.command)
    assert main([*argv[1:], "-q"]) == 0
    assert (user / "my_photo_x2.png").read_bytes() == result.output.read_bytes()
    with Image.open(result.output) as im:
        assert im.size == (20, 24)
    # the mask is what changed the result: without it, other bytes
    plain = jobs.upscale_full(catalog, upload, settings, None, request_folder(work))
    assert plain.output.read_bytes() != result.output.read_bytes() and "--noise-map" not in plain.command


def test_preview_of_a_crop_follows_the_settings(tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(smooth_rgb(20, 30)).save(source)
    upload = open_upload(source, "p.png", tmp_path / "work", Limits())
    catalog = Catalog()
    assert crop_box((20, 30), (29, 0), 8) == (0, 8, 22, 30)  # kept inside the image
    sharp = jobs.preview(catalog, upload, Settings.make("pirm-r1", 2, 0.0, None, 0), None, (29, 0), 16)
    noisy = jobs.preview(catalog, upload, Settings.make("pirm-r1", 2, 1.0, None, 0), None, (29, 0), 16)
    assert sharp[0].shape == sharp[1].shape == (16, 16, 3)
    np.testing.assert_array_equal(sharp[0], noisy[0])  # the bicubic side does not move
    assert not np.array_equal(sharp[1], noisy[1])
    # the crop of a W = 0 full result (no noise: crops agree up to the border context)
    full = jobs.upscale_full(
        catalog, upload, Settings.make("pirm-r1", 2, 0.0, None, 0), None, request_folder(tmp_path / "work")
    )
    region = full.after[0:16, 44:60].astype(int)
    assert np.abs(region - sharp[1].astype(int))[2:-2, 2:-2].max() <= 1
    # with noise too: the preview draws the full result's noise at the crop's place, not its own
    full = jobs.upscale_full(
        catalog, upload, Settings.make("pirm-r1", 2, 1.0, None, 0), None, request_folder(tmp_path / "work")
    )
    region = full.after[0:16, 44:60].astype(int)
    assert np.abs(region - noisy[1].astype(int))[2:-2, 2:-2].max() <= 1


def test_serve_says_what_to_install_without_gradio():
    code = (
        "import sys; sys.modules['gradio'] = None\n"
        "from mgsr.cli import main; sys.exit(main(['serve', '--port', '7999']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == MgsrError.exit_code
    assert 'pip install "mgsr[web]"' in done.stderr


def test_a_port_outside_1_to_65535_is_refused_before_anything_loads(capsys):
    """Port 0 made Gradio check its own start-up on port 0 and fail with a connection error traceback."""
    refused = (("0", "0 is out of range: choose 1 to 65535"), ("65536", "65536 is out of"), ("http", "'http' is not"))
    for bad, said in refused:
        with pytest.raises(SystemExit) as code:
            main(["serve", "--port", bad])
        assert code.value.code == 2 and said in capsys.readouterr().err


def test_only_loopback_counts_as_local():
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1") and is_local("127.0.0.2")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.5") and not is_local("example.org")


def test_w_per_level_and_an_uploaded_grey_mask_reach_the_command_line(tmp_path, monkeypatch):
    source = tmp_path / "g.png"
    Image.fromarray(smooth_rgb(8, 8)[..., 0]).save(source)  # grey stays grey
    mask_source = tmp_path / "m.png"
    Image.fromarray(np.linspace(0, 255, 64).reshape(8, 8).astype(np.uint8)).save(mask_source)
    work = tmp_path / "work"
    upload = open_upload(source, "g.png", work, Limits())
    folder = request_folder(work)
    mask = maps.uploaded_mask(str(mask_source), "m.png", work, folder, "g", Limits())
    settings = Settings.make("pirm-r3", 4, 0.5, [0.3, 1.0, 0.7], 2)
    result = jobs.upscale_full(Catalog(), upload, settings, mask, folder)
    assert "--noise 0.3,1.0 --noise-map g_mask.png --seed 2" in result.command
    assert mask.path.read_bytes() == mask_source.read_bytes()
    monkeypatch.chdir(tmp_path)
    shutil.copy(mask.path, tmp_path / "g_mask.png")
    assert main([*shlex.split(result.command)[1:], "-q"]) == 0
    assert (tmp_path / "g_x4.png").read_bytes() == result.output.read_bytes()
    with Image.open(result.output) as im:
        assert im.mode == "L"


def run_printed_command(result: jobs.Result, source, user, monkeypatch) -> bytes:
    """Run the page's printed command in the user's folder (their photo and the downloaded files): its bytes."""
    user.mkdir()
    shutil.copy(source, user / shlex.split(result.command)[2])
    for needed in result.files:
        shutil.copy(needed, user / needed.name)
    monkeypatch.chdir(user)
    argv = shlex.split(result.command)
    assert main([*argv[1:], "-q"]) == 0
    return (user / argv[4]).read_bytes()


def test_w_chosen_by_detail_prints_detail_and_gives_the_same_bytes(tmp_path, monkeypatch):
    source = tmp_path / "d.png"
    Image.fromarray(smooth_rgb(12, 10)).save(source)
    work = tmp_path / "work"
    upload = open_upload(source, "d.png", work, Limits())
    catalog = Catalog()
    settings = page_settings(catalog, "pirm-r3", 2, None, BY_DETAIL, 0.5, 0.9, None, 1)
    w = catalog.noise_for_detail("pirm-r3", 0.5)
    assert settings.noise == (w,) and 0 < w < 0.9 and settings.detail == 0.5  # the W slider's 0.9 is not used
    assert jobs.describe(settings, None) == f"pirm-r3 · 2x · detail 0.5 = W {w:.4g} · seed 1 · no painted regions"
    assert detail_says(catalog, "pirm-r3", BY_DETAIL, 0.5, 0.9) == f"W = {w:.4g}"
    result = jobs.upscale_full(catalog, upload, settings, None, request_folder(work))
    assert result.command == "mgsr upscale d.png -o d_x2.png --model pirm-r3 --scale 2 --detail 0.5 --seed 1"
    assert run_printed_command(result, source, tmp_path / "user", monkeypatch) == result.output.read_bytes()
    # W set directly: the command gives W, and the line beside detail says where that W is on the scale
    by_w = page_settings(catalog, "pirm-r3", 2, None, BY_W, 0.5, w, None, 1)
    assert by_w.noise == settings.noise and by_w.detail is None
    assert jobs.command_line("d.png", "d_x2.png", catalog.get("pirm-r3"), by_w, None).endswith(
        f"--noise {w!r} --seed 1"
    )
    assert detail_says(catalog, "pirm-r3", BY_W, 0.0, w).endswith("detail 0.500")
    assert "beyond detail 1 (W = 0.0632)" in detail_says(catalog, "pirm-r1", BY_W, 1.0, 0.29)
    # W per level is the expert's: it wins over detail
    levels = page_settings(catalog, "pirm-r3", 4, None, BY_DETAIL, 0.5, 1.0, [0.1, 0.2, 0.3], 1)
    assert levels.noise == (0.1, 0.2) and levels.detail is None


def test_a_model_without_a_curve_has_no_detail_scale_but_w_works(tmp_path):
    own = tmp_path / "run.safetensors"
    shutil.copy(bundled_path("pirm-r1"), own)
    write_card(own, ModelCard("run", 0.5))
    catalog = Catalog([str(own)])
    label = catalog.default
    assert not catalog.has_curve(label) and catalog.has_curve("pirm-r1")
    assert catalog.detail_for_noise(label, 0.5) is None
    note = detail_says(catalog, label, BY_W, 1.0, 0.5)
    assert "`mgsr calibrate --curve --model RUN --hr DIR --write-card`" in note
    with pytest.raises(WeightsError, match="no perception-distortion curve.*mgsr calibrate --curve"):
        page_settings(catalog, label, 4, None, BY_DETAIL, 0.5, 0.5, None, 0)
    assert page_settings(catalog, label, 4, None, BY_W, 0.5, 0.3, None, 0).noise == (0.3,)
    assert catalog.detail_note("pirm-r1") == ""
    assert model_start(catalog, label) == {"w": 0.5, "t": 1.0, "by": BY_W}
    assert model_start(catalog, "pirm-r2") == {"w": 0.275, "t": 1.0, "by": BY_DETAIL}


def test_any_output_factor_rounds_up_to_a_level_and_gives_the_same_bytes(tmp_path, monkeypatch):
    source = tmp_path / "o.png"
    Image.fromarray(smooth_rgb(12, 10)).save(source)
    work = tmp_path / "work"
    upload = open_upload(source, "o.png", work, Limits())
    catalog = Catalog()
    settings = page_settings(catalog, "pirm-r1", 8, "3", BY_W, 1.0, 0.5, None, 2)
    assert (settings.scale, settings.outscale, settings.factor) == (4, 3.0, 3.0)  # the factor wins over the radio
    assert level_for_output(8, 2.5) == 4 and level_for_output(2, None) == 2
    assert " 3x (from 4x) · " in jobs.describe(settings, None)
    result = jobs.upscale_full(catalog, upload, settings, None, request_folder(work))
    assert result.command == "mgsr upscale o.png -o o_x3.png --model pirm-r1 --outscale 3 --noise 0.5 --seed 2"
    with Image.open(result.output) as im:
        assert im.size == (30, 36)
    assert result.before.shape == result.after.shape == (36, 30, 3)
    assert run_printed_command(result, source, tmp_path / "user", monkeypatch) == result.output.read_bytes()
    # a factor that is a level is that level; empty is the radio's
    assert page_settings(catalog, "pirm-r1", 2, 4.0, BY_W, 1.0, 0.5, None, 2).outscale is None
    assert page_settings(catalog, "pirm-r1", 2, " ", BY_W, 1.0, 0.5, None, 2).scale == 2
    for bad, says in [("x3", "give a number in"), (1.0, "must be > 1"), (9, "beyond 8x")]:
        with pytest.raises(MgsrError, match=says):
            page_settings(catalog, "pirm-r1", 4, bad, BY_W, 1.0, 0.5, None, 2)


def test_preview_at_an_output_factor_is_the_full_results_crop(tmp_path):
    source = tmp_path / "p.png"
    Image.fromarray(smooth_rgb(20, 30)).save(source)
    upload = open_upload(source, "p.png", tmp_path / "work", Limits())
    catalog = Catalog()
    settings = Settings.make("pirm-r1", 2, 0.0, None, 0, outscale=3)
    before, after = jobs.preview(catalog, upload, settings, None, (15, 10), 24)
    assert before.shape == after.shape == (24, 24, 3)  # an 8 px crop, 3x
    full = jobs.upscale_full(catalog, upload, settings, None, request_folder(tmp_path / "work"))
    y0, _, x0, _ = crop_box((20, 30), (15, 10), 8)
    region = full.after[y0 * 3 : y0 * 3 + 24, x0 * 3 : x0 * 3 + 24].astype(int)
    assert np.abs(region - after.astype(int))[3:-3, 3:-3].max() <= 2


def page_knobs(path, automatic: str, **changed) -> Knobs:
    """The knobs the page sends for an image: pirm-r3 at 4x, W by detail 1, seed 3, nothing painted."""
    values = dict(path=str(path), model="pirm-r3", scale=4, outscale="", by="detail", detail=1.0, w=1.0)
    values |= dict(per_level_on=False, w1=1.0, w2=1.0, w3=1.0, seed=3, automatic=automatic)
    return Knobs(**(values | changed))


def test_the_automatic_map_unpainted_and_painted_over_gives_the_bytes_of_its_command_line(tmp_path, monkeypatch):
    calib = write_adaptive_calibration(tmp_path / "calib.json")
    (tmp_path / "client").mkdir()
    source = half_flat_photo(tmp_path / "client" / "photo.png")
    server = Server(Catalog(), Limits(), tmp_path / "work", 32, maps.operator_calibration(calib))
    key = server.calibration.key
    values = server.automatic_map(server.upload(str(source)), key)
    assert values.dtype == np.float32 and values[:, :6].min() > 0.9 and values[:, -6:].max() < 0.1

    # unpainted: the float map itself, and the command reads the calibration file as mgsr upscale does
    result = server.result(page_knobs(source, key))
    assert (
        result.command == "mgsr upscale photo.png -o photo_x4.png --model pirm-r3 --scale 4 --noise calib.json --seed 3"
    )
    assert [f.name for f in result.files] == ["calib.json"] and result.files[0].read_bytes() == calib.read_bytes()
    unpainted = result.output.read_bytes()
    assert run_printed_command(result, source, tmp_path / "user", monkeypatch) == unpainted
    _, made_with = server.preview(page_knobs(source, key), None)
    assert "W per level 0.02,0.6 of calib.json · seed 3 · automatic map: W x " in made_with

    # painted over: black on the flat left top corner; the rest keeps the map (8 bits, as --noise-map reads it)
    editor = {"layers": [stroke_layer((16, 20), (0, 4, 0, 4), 0)]}
    result = server.result(page_knobs(source, key, editor=editor))
    assert result.command == (
        "mgsr upscale photo.png -o photo_x4.png --model pirm-r3 --scale 4 --noise 0.02,0.6 "
        "--noise-map photo_mask.png --seed 3"
    )
    grey = np.asarray(Image.open(result.files[0]))
    expected = maps.map_grey(values)
    expected[0:4, 0:4] = 0
    np.testing.assert_array_equal(grey, expected)
    assert result.output.read_bytes() != unpainted
    assert run_printed_command(result, source, tmp_path / "painted", monkeypatch) == result.output.read_bytes()
    assert "· painted map: W x " in server.preview(page_knobs(source, key, editor=editor), None)[1]

    # a scale it was not fitted at is refused as mgsr upscale refuses it; a key it never loaded too
    with pytest.raises(MgsrError, match=r"fitted for 2 2x levels \(4x\), 8x has 3"):
        server.result(page_knobs(source, key, scale=8))
    with pytest.raises(MgsrError, match="not loaded on this server"):
        server.result(page_knobs(source, "0" * 20))


def test_calibration_files_from_the_page(tmp_path):
    server = Server(Catalog(), Limits(), tmp_path / "work", 32, None)
    assert server.start() == model_start(server.catalog, "pirm-r3")
    upload = tmp_path / "gradio" / "0123abcd" / "my fit.json"
    upload.parent.mkdir(parents=True)
    write_adaptive_calibration(upload, levels=(0.01,))
    found = server.add_calibration(str(upload))
    assert found.name == "my_fit.json" and server.automatic(found.key) is found and "for 2x" in found.about()
    with pytest.raises(MgsrError, match=r"my_fit.json: fitted for 1 2x levels \(2x\), 4x has 2"):
        found.check_levels(4)
    broken = upload.with_name("notes.json")
    broken.write_text("shopping list")
    with pytest.raises(MgsrError, match="notes.json: not a calibration file") as caught:
        server.add_calibration(str(broken))
    assert str(tmp_path) not in str(caught.value)
    # a global calibration sets W, from the command line's --noise too
    single = tmp_path / "global.json"
    single.write_text(json.dumps({"noise": 0.0125}))
    assert server.add_calibration(str(single)).rule is None
    with pytest.raises(MgsrError, match="not loaded"):
        server.automatic(maps.read_calibration(single.read_bytes(), "global.json").key)
    with pytest.raises(MgsrError, match="nope.json: calibration file not found"):
        maps.operator_calibration(tmp_path / "nope.json")
    started = Server(Catalog(), Limits(), tmp_path / "work", 32, maps.operator_calibration(single)).start()
    assert started["w"] == 0.0125 and started["by"] == BY_W and 0 < started["t"] < 1


def test_a_calibration_for_another_model_is_refused_by_the_page(tmp_path):
    """As ``mgsr upscale --noise calib.json --model M`` refuses a file fitted for other weights: on loading the file
    (the model chosen then), on every request with its automatic map (the model may change after), and at start
    for the operator's ``--noise FILE`` (it sets the default model's W); the error names the user's file only."""
    server = Server(Catalog(), Limits(), tmp_path / "work", 32, None)
    upload = tmp_path / "gradio" / "0123abcd" / "r3 map.json"
    upload.parent.mkdir(parents=True)
    found = server.add_calibration(str(write_adaptive_calibration(upload)))
    server.check_calibration(found, "pirm-r3")
    with pytest.raises(MgsrError, match="r3_map.json was fitted for the model 'pirm-r3', not for --model pirm-r1") as e:
        server.check_calibration(found, "pirm-r1")
    assert str(tmp_path) not in str(e.value) and "mgsr-calibration-" not in str(e.value)
    source = half_flat_photo(tmp_path / "photo.png")
    assert server.result(page_knobs(source, found.key)).output.is_file()
    with pytest.raises(MgsrError, match="fitted for the model 'pirm-r3', not for --model pirm-r1"):
        server.result(page_knobs(source, found.key, model="pirm-r1"))
    single = tmp_path / "r1.json"
    single.write_text(json.dumps({"noise": 0.03, **fitted_model("pirm-r1")}))
    with pytest.raises(MgsrError, match="r1.json was fitted for the model 'pirm-r1', not for --model pirm-r3"):
        Server(Catalog(), Limits(), tmp_path / "work", 32, maps.operator_calibration(single))
    assert Server(Catalog(["pirm-r1"]), Limits(), tmp_path / "work", 32, maps.operator_calibration(single)).start()
