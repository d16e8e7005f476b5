"""mgsr.io.hub: weights fetched on first use, against a real HTTP server on 127.0.0.1 started here."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.cli import main
from mgsr.errors import DownloadError, WeightsError
from mgsr.io import hub

from ..conftest import RECIPES
from ..helpers import tiny_paper_recipe
from ..http_helpers import hashed_name, serve_fake_vgg19


def wrong_name(stem: str, data: bytes) -> str:
    good = hashlib.sha256(data).hexdigest()[:8]
    return f"{stem}-{'0' * 8 if good != '0' * 8 else '1' * 8}.bin"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_first_call_downloads_into_the_hub_cache_and_the_second_does_not(server, online):
    data = bytes(range(256)) * 5000
    name = hashed_name("weights", data)
    server.files[name] = data
    path = hub.fetch(server.url(name), progress=False)
    assert path == online / name and path.read_bytes() == data
    assert leftovers(online) == [name]  # no temporary file stays
    assert hub.fetch(server.url(name), progress=False) == path
    assert server.hits == [name]


def test_hash_mismatch_keeps_nothing_and_says_what_to_do(server, online):
    data = b"not what the name promises" * 100
    name = wrong_name("weights", data)
    server.files[name] = data
    with pytest.raises(DownloadError) as info:
        hub.fetch(server.url(name), progress=False)
    message = str(info.value)
    assert server.url(name) in message and str(online / name) in message and "does not start with" in message
    assert "\n" not in message and info.value.exit_code == 4
    assert leftovers(online) == []


def test_server_gone_midway_keeps_nothing_and_the_next_call_retries(server, online):
    data = b"x" * 300_000
    name = hashed_name("weights", data)
    server.files[name] = data
    server.cut.add(name)
    with pytest.raises(DownloadError, match="closed the connection|broke off") as info:
        hub.fetch(server.url(name), progress=False)
    assert server.url(name) in str(info.value) and "tries again" in str(info.value)
    assert leftovers(online) == []
    server.cut.clear()
    assert hub.fetch(server.url(name), progress=False).read_bytes() == data
    assert server.hits == [name, name]


def test_a_cache_folder_that_cannot_be_written_is_one_line_naming_it(server, online):
    data = b"z" * 1000
    name = hashed_name("weights", data)
    server.files[name] = data
    online.parent.mkdir(parents=True)
    online.write_bytes(b"a file where the cache folder should be")
    with pytest.raises(DownloadError, match="cannot write to the cache folder") as info:
        hub.fetch(server.url(name), progress=False)
    assert str(online) in str(info.value) and "TORCH_HOME" in str(info.value) and "\n" not in str(info.value)
    assert server.hits == []  # refused before the download


def test_a_downloaded_file_gets_the_usual_file_mode(server, online):
    """Staged under a private (0600) temporary name, the cache file ends as readable as any file of the user."""
    data = b"m" * 1000
    name = hashed_name("weights", data)
    server.files[name] = data
    mask = os.umask(0o022)
    try:
        path = hub.fetch(server.url(name), progress=False)
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_http_errors_and_no_server_are_one_line(server, online):
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        hub.fetch(server.url("missing-00000000.bin"), progress=False)
    assert str(online / "missing-00000000.bin") in str(info.value)
    dead = "http://127.0.0.1:9/gone-00000000.bin"  # the discard port: nothing listens there
    with pytest.raises(DownloadError, match="check the network") as info:
        hub.fetch(dead, progress=False)
    assert dead in str(info.value) and leftovers(online) == []


def test_offline_switch_forbids_the_network(server, online, monkeypatch):
    data = b"y" * 1000
    name = hashed_name("weights", data)
    server.files[name] = data
    monkeypatch.setenv("MGSR_OFFLINE", "1")
    with pytest.raises(DownloadError, match="MGSR_OFFLINE=1 forbids") as info:
        hub.fetch(server.url(name), progress=False)
    assert str(online / name) in str(info.value) and server.url(name) in str(info.value)
    assert server.hits == []
    (online).mkdir(parents=True)
    (online / name).write_bytes(data)  # a file already there needs no network
    assert hub.fetch(server.url(name), progress=False) == online / name


def test_contextual_loss_downloads_vgg19_through_the_url_override(server, online, monkeypatch, tmp_path):
    name, state = serve_fake_vgg19(server, tmp_path)
    monkeypatch.setenv("MGSR_VGG19_URL", server.url(name))
    built = mgsr.build(RECIPES / "pirm_r3.toml", training=True)  # the contextual loss: vgg19 at relu3_4
    contextual = next(loss for loss in built.losses if type(loss).name == "contextual")
    assert torch.equal(contextual.features.features[0].weight, state["features.0.weight"])
    assert leftovers(online) == [name] and server.hits == [name]
    mgsr.build(RECIPES / "pirm_r3.toml", training=True)
    assert server.hits == [name]  # cached: the second build does not ask the server


def test_vgg19_download_failure_exits_4_with_one_line(server, online, monkeypatch, tmp_path, capsys):
    image = tmp_path / "hr"
    image.mkdir()
    pixels = (np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(image / "a.png")
    monkeypatch.setenv("MGSR_VGG19_URL", server.url("vgg19-dcbb9e9d.pth"))  # the server has no such file
    code = main(["eval", "--sr", str(image), "--hr", str(image), "--metric", "cx"])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "HTTP 404" in err and server.url("vgg19-dcbb9e9d.pth") in err
    assert str(online / "vgg19-dcbb9e9d.pth") in err


def test_download_error_is_a_weights_error():
    assert issubclass(DownloadError, WeightsError) and DownloadError.exit_code == 4


def test_training_the_paper_recipe_downloads_vgg19_once(server, online, monkeypatch, tmp_path, capsys):
    """The paper's recipe from a fresh cache: the VGG-19 file served through MGSR_VGG19_URL, `mgsr train
    recipes/pirm_r3.toml --data DIR` made small with --set; the weights come down once and the run completes."""
    from mgsr.samples import sample_folder

    name, _ = serve_fake_vgg19(server, tmp_path)
    monkeypatch.setenv("MGSR_VGG19_URL", server.url(name))
    sets = tiny_paper_recipe("data.target_megapixels=none", "pretrain.steps=1")
    try:
        for run in ("a", "b"):
            code = main(
                [
                    "train",
                    str(RECIPES / "pirm_r3.toml"),
                    "--data",
                    str(sample_folder("train")),
                    "--out",
                    str(tmp_path / run),
                    "-q",
                    *sets,
                ]
            )
            err = capsys.readouterr().err
            assert code == 0, err
            assert name not in err  # -q: no progress bar for the download either
    finally:
        torch.use_deterministic_algorithms(False)
    assert (tmp_path / "a" / "generator.safetensors").is_file() and (tmp_path / "b" / "generator.safetensors").is_file()
    assert server.hits == [name] and leftovers(online) == [name]
