"""A store is immutable while read: a rebuild never takes away the arrays of the version a run loaded, old
arrays go once no live run holds them, and a filesystem without ``flock`` gets a clear lock, not a traceback."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from mgsr.training import store as store_module
from mgsr.training.data import PatchDataset, scan_images
from mgsr.training.prepared import cached_store, store_lock, training_sources
from mgsr.training.store import StoreError, open_store, prepare
from mgsr.training.store_readers import READERS

from ..helpers import make_images

MP = 0.0012


def _raw(tmp_path):
    return make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])


def _rebuild_with_other_images(tmp_path, raw, store):
    """img1 replaced by other pixels, img2 removed, img3 added; then the store prepared again."""
    other = make_images(tmp_path / "other", [(44, 52), (38, 46)])
    shutil.copy(other / "img0.png", raw / "img1.png")
    (raw / "img2.png").unlink()
    shutil.copy(other / "img1.png", raw / "img3.png")
    return prepare([raw], store, workers=0, progress=False).store


def _digests(images):
    return [hashlib.sha256(np.ascontiguousarray(i.array()).tobytes()).hexdigest() for i in images]


def _arrays(store):
    return sorted(p.name for p in (store / "arrays").iterdir())


def test_a_training_dataset_reads_the_same_pixels_while_its_store_is_rebuilt(tmp_path):
    raw, store = _raw(tmp_path), tmp_path / "store"
    prepare([raw], store, workers=0, progress=False)
    dataset = PatchDataset(scan_images([store], 16, None).usable, 16, None, augment=True)
    before = torch.stack([dataset[(i, 7)] for i in range(3)])
    pixels = _digests(dataset.images)
    rebuilt = _rebuild_with_other_images(tmp_path, raw, store)
    assert [os.path.basename(i.source) for i in rebuilt.images] == ["img0.png", "img1.png", "img3.png"]
    assert _digests(rebuilt.images)[1] != pixels[1]  # the rebuild did change the store
    torch.testing.assert_close(torch.stack([dataset[(i, 7)] for i in range(3)]), before, rtol=0, atol=0)
    assert _digests(dataset.images) == pixels


def test_old_arrays_are_removed_once_no_reader_holds_them(tmp_path):
    raw, store = _raw(tmp_path), tmp_path / "store"
    prepare([raw], store, workers=0, progress=False)
    held = open_store(store, hold=True)
    rebuilt = _rebuild_with_other_images(tmp_path, raw, store)
    old = {i.array_path.name for i in held.images} - {i.array_path.name for i in rebuilt.images}
    assert len(old) == 2 and old <= set(_arrays(store))  # img1's and img2's old arrays: still read
    held.release()
    again = prepare([raw], store, workers=0, progress=False)
    assert again.decoded == 0 and _arrays(store) == sorted(i.array_path.name for i in again.store.images)
    assert not list((store / READERS).iterdir())


def test_a_reader_in_another_process_keeps_its_version_until_it_exits(tmp_path):
    raw, store = _raw(tmp_path), tmp_path / "store"
    expected = _digests(prepare([raw], store, workers=0, progress=False).store.images)
    script = (
        "import hashlib, json, sys\nimport numpy as np\nfrom mgsr.training.store import open_store\n"
        "s = open_store(sys.argv[1], hold=True)\nprint('ready', flush=True)\nsys.stdin.readline()\n"
        "print(json.dumps([hashlib.sha256(np.ascontiguousarray(i.array()).tobytes()).hexdigest() "
        "for i in s.images]), flush=True)\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        rebuilt = _rebuild_with_other_images(tmp_path, raw, store)
        out, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0 and json.loads(out) == expected
    assert not list((store / READERS).iterdir())  # released at exit
    prepare([raw], store, workers=0, progress=False)
    assert _arrays(store) == sorted(i.array_path.name for i in rebuilt.images)


def test_the_record_of_a_killed_reader_does_not_keep_arrays(tmp_path):
    raw, store = _raw(tmp_path), tmp_path / "store"
    prepare([raw], store, workers=0, progress=False)
    script = "import os, sys\nfrom mgsr.training.store import open_store\n"
    script += "open_store(sys.argv[1], hold=True)\nos._exit(0)"
    subprocess.run([sys.executable, "-c", script, str(store)], check=True)  # os._exit: no clean-up, as kill -9
    [record] = (store / READERS).iterdir()
    assert json.loads(record.read_text())["host"] == socket.gethostname()
    rebuilt = _rebuild_with_other_images(tmp_path, raw, store)
    assert _arrays(store) == sorted(i.array_path.name for i in rebuilt.images) and not record.exists()


def test_a_reader_registering_while_a_rebuild_cleans_up_loads_the_new_version(tmp_path, monkeypatch):
    """The worst moment: the rebuild writes its manifest and removes old arrays after the reader loaded the
    old manifest but before its record is written; the reader must notice and load the new version."""
    raw, store = _raw(tmp_path), tmp_path / "store"
    prepare([raw], store, workers=0, progress=False)
    real_write_hold, rebuilt = store_module.write_hold, []

    def rebuild_first(*args):
        if not rebuilt:
            rebuilt.append(_rebuild_with_other_images(tmp_path, raw, store))
        return real_write_hold(*args)

    monkeypatch.setattr(store_module, "write_hold", rebuild_first)
    opened = open_store(store, hold=True)
    assert opened.images == rebuilt[0].images
    assert _digests(opened.images) == _digests(rebuilt[0].images)


def test_a_corrupt_cached_manifest_is_rebuilt_without_deleting_held_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))
    raw = _raw(tmp_path)
    [store] = training_sources([str(raw)], MP, progress=False, workers=0)
    held = scan_images([store], 16, MP).usable
    pixels = _digests(held)
    (cached_store(raw, MP) / "manifest.json").write_text("{")
    (raw / "img2.png").unlink()
    with pytest.warns(UserWarning, match="unreadable manifest"):
        training_sources([str(raw)], MP, progress=False, workers=0)
    assert len(open_store(store).images) == 2 and _digests(held) == pixels


@pytest.fixture
def no_flock(tmp_path, monkeypatch):
    """A filesystem without locks (NFS without lockd, some FUSE mounts): flock raises ENOLCK."""

    def refuse(*args):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fcntl, "flock", refuse)


def test_without_flock_an_owner_file_locks_the_store(tmp_path, no_flock):
    raw = _raw(tmp_path)
    store = cached_store(raw, MP)
    owner = store.with_name(store.name + ".lock.owner")
    with store_lock(store):
        assert owner.read_text().split() == [socket.gethostname(), str(os.getpid())]
        with pytest.raises(StoreError, match=f"being prepared by another process .*{owner.name} exists.*No locks"):
            training_sources([str(raw)], MP, progress=False, workers=0)
    assert not owner.exists()
    assert training_sources([str(raw)], MP, progress=False, workers=0) == [str(store)]
    assert not owner.exists() and len(open_store(store).images) == 3


def test_without_flock_a_dead_owners_file_is_taken_over(tmp_path, no_flock):
    raw = _raw(tmp_path)
    store = cached_store(raw, MP)
    owner = store.with_name(store.name + ".lock.owner")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    owner.parent.mkdir(parents=True)
    owner.write_text(f"{socket.gethostname()} {gone.pid}\n")
    assert training_sources([str(raw)], MP, progress=False, workers=0) == [str(store)]
    assert not owner.exists()
    owner.write_text("a-host-far-away 12345\n")  # cannot be checked from here: refused, naming the file
    with pytest.raises(StoreError, match=f"a-host-far-away 12345.*delete {owner}"):
        training_sources([str(raw)], MP, progress=False, workers=0)
