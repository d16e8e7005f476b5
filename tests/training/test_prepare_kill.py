"""kill -9 during a preparation (issue 29, item 1): the decoding workers die with their parent, so the store's
lock goes with it, and a run that waits for the lock says for what, for how long, and gives up naming the lock
and its holder instead of hanging.  Real processes and real kill -9 throughout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from mgsr.cli import main
from mgsr.training.prepared import cached_store, store_lock
from mgsr.training.store import StoreError, open_store, prepare

from ..helpers import make_images, tiny_recipe

MP = 0.0012
#: enough images that the workers are still busy when the first array appears
MANY = [(160, 120)] * 60


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))  # inherited by the processes started below
    return tmp_path / "cache"


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Pids a test saw; whichever still runs at the end is killed, so a failing test leaves no orphan behind."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that its new parent has not reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc: the prepare's decoding workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.01)


def _arrays(store: Path) -> int:
    arrays = store / "arrays"
    return len(list(arrays.glob("*.npy"))) if arrays.is_dir() else 0


def _kill_while_decoding(args: list[str], store: Path, reap: list[int], workers: int = 2) -> list[int]:
    """Start ``mgsr ARGS``, kill -9 it (the main process only, as the out-of-memory killer does) once its
    ``workers`` decoding processes run and the first array is written; the workers' pids."""
    proc = subprocess.Popen([sys.executable, "-m", "mgsr", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reap.append(proc.pid)
    try:
        _wait_for(lambda: _arrays(store) >= 1 or proc.poll() is not None, 120, "the first array is written")
        assert proc.poll() is None, "the preparation ended before it could be killed: give it more images"
        children = _children(proc.pid)
        reap.extend(children)
        assert len(children) >= workers, f"expected {workers} decoding workers, found {children}"
    finally:
        proc.kill()
        proc.wait()
    assert _arrays(store) < len(MANY)
    return children


def _no_orphans(workers: list[int]) -> None:
    """The issue's promise: "Workers must die with their parent"."""
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 10, f"the workers {workers} are gone")


def test_resume_auto_after_the_train_process_is_killed_during_auto_prepare(tmp_path, cache, reap):
    """Issue 29.1: "`--resume auto` hangs for ever after the main process is killed during auto-prepare"."""
    raw = make_images(tmp_path / "raw", MANY)
    recipe = tiny_recipe(tmp_path, steps=1, validate_every=10, sample_every=10, checkpoint_every=10)
    args = ["train", str(recipe), "--data", str(raw), "--set", f"data.target_megapixels={MP}", "--set", "data.val=[]"]
    args += ["--out", str(tmp_path / "run"), "-q"]
    store = cached_store(raw, MP)
    _no_orphans(_kill_while_decoding(args, store, reap))
    resumed = subprocess.run(
        [sys.executable, "-m", "mgsr", *args, "--resume", "auto"], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(open_store(store).images) == len(MANY)
    assert (tmp_path / "run" / "generator.safetensors").is_file()


def test_data_prepare_killed_with_its_default_workers_leaves_none_and_is_completed(tmp_path, reap):
    raw = make_images(tmp_path / "raw", MANY)
    store = tmp_path / "store"
    args = ["data", "prepare", str(raw), "-o", str(store), "--target-megapixels", str(MP), "-q"]
    _no_orphans(_kill_while_decoding(args, store, reap, workers=min(2, os.cpu_count() or 1)))
    assert main(args) == 0
    again = prepare([raw], tmp_path / "fresh", target_megapixels=MP, workers=0, progress=False).store
    completed = open_store(store)
    assert [i.source for i in completed.images] == [i.source for i in again.images]
    for a, b in zip(completed.images, again.images, strict=True):
        assert np.array_equal(a.array(), b.array())


_PREPARE = """
import sys, time
from mgsr.training import store
from mgsr.training.prepared import training_sources
if sys.argv[3] == "slow":  # 2 s more per image, in the forked workers too: it still prepares when killed
    decode = store.load_rgb_uint8
    store.load_rgb_uint8 = lambda *args: time.sleep(2) or decode(*args)
print(training_sources([sys.argv[1]], float(sys.argv[2]), progress=True, workers=2)[0], flush=True)
"""


def _lines(stream: IO[str]) -> list[str]:
    """The lines of ``stream`` as they come, read by a thread (a pipe read never blocks the test)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines


def test_kill_of_one_of_two_runs_sharing_a_store_while_it_holds_the_lock(tmp_path, cache, reap):
    """The survivor says what it waits for and whom, then prepares the store itself once the holder is gone."""
    raw = make_images(tmp_path / "raw", MANY)
    store = cached_store(raw, MP)
    lock = store.with_name(store.name + ".lock")
    script = [sys.executable, "-c", _PREPARE, str(raw), str(MP)]
    holder = subprocess.Popen([*script, "slow"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reap.append(holder.pid)
    _wait_for(lambda: _arrays(store) >= 1, 120, "the first run prepares")
    workers = _children(holder.pid)
    reap.extend(workers)
    waiter = subprocess.Popen([*script, "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reap.append(waiter.pid)
    assert waiter.stderr is not None and waiter.stdout is not None
    err = _lines(waiter.stderr)
    said = f"mgsr: waiting for the lock {lock}: process {holder.pid} on {socket.gethostname()} prepares {store}"
    _wait_for(lambda: any(line.startswith(said) for line in err), 60, f"the second run says {said!r}: {err}")
    assert _arrays(store) < len(MANY)
    holder.kill()
    holder.wait()
    assert waiter.wait(timeout=120) == 0, "".join(err)[-3000:]
    assert waiter.stdout.read().strip() == str(store) and len(open_store(store).images) == len(MANY)
    assert any(line.startswith(f"mgsr: got the lock {lock} after ") for line in err)
    _no_orphans(workers)


_HOLD = """
import os, sys, time
from pathlib import Path
from mgsr.training.prepared import store_lock
with store_lock(Path(sys.argv[1])):
    if sys.argv[2] == "fork" and os.fork() == 0:  # a child that inherits the lock and outlives its parent
        time.sleep(60)
        os._exit(0)
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(store: Path, fork: bool, reap: list[int]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(store), "fork" if fork else "-"], stdout=subprocess.PIPE, text=True
    )
    reap.append(proc.pid)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    reap.extend(_children(proc.pid))
    return proc


def test_a_waiting_run_says_for_what_and_gives_up_naming_the_lock_and_its_holder(tmp_path, reap, capsys):
    """Issue 29.1: "a waiting run must say what it waits for, for how long, and give up with a clear error naming
    the lock and its holder's pid"."""
    store = tmp_path / "cache" / "stores" / "raw-0123"
    lock = store.with_name(store.name + ".lock")
    proc = _holder(store, False, reap)
    started = time.monotonic()
    with pytest.raises(StoreError) as caught, store_lock(store, timeout=1.5):
        pass
    assert 1.5 <= time.monotonic() - started < 30
    message = str(caught.value)
    assert f"{lock}" in message and f"process {proc.pid} on {socket.gethostname()}" in message
    assert f"kill {proc.pid}" in message
    err = capsys.readouterr().err
    assert f"mgsr: waiting for the lock {lock}: process {proc.pid} on {socket.gethostname()} prepares {store}" in err
    assert "gives up after 1.5 s without progress" in err
    proc.kill()
    proc.wait()
    with store_lock(store, timeout=1.5):  # its holder killed: the lock is free at once
        assert lock.read_text().split() == [socket.gethostname(), str(os.getpid())]


def test_a_lock_kept_by_the_children_of_a_killed_holder_is_named_at_once(tmp_path, reap):
    """The lock of a process killed outright, held on by a child it started (an older mgsr's decoding worker):
    the waiter does not wait out its whole limit but names the lock, the dead holder and the child."""
    store = tmp_path / "cache" / "stores" / "raw-4567"
    proc = _holder(store, True, reap)
    [child] = _children(proc.pid)
    proc.kill()
    proc.wait()
    started = time.monotonic()
    with pytest.raises(StoreError) as caught, store_lock(store, timeout=600):
        pass
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert f"{store.name}.lock" in message and f"process {proc.pid}" in message and "is gone" in message
    assert f"kill {child}" in message
    os.kill(child, signal.SIGKILL)
    with store_lock(store, timeout=5):
        pass


def _summary(run: Path) -> dict:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return next(line for line in lines if "data/skipped" in line)


def test_images_skipped_by_the_auto_prepare_are_counted_in_the_metrics(tmp_path, cache, capsys):
    """Issue 29.8: "a truncated PNG is named in a warning, but `metrics.jsonl` says `data/skipped: 0`"."""
    raw = make_images(tmp_path / "raw", [(40, 48), (36, 36), (50, 40)])
    broken = raw / "img1.png"
    broken.write_bytes(broken.read_bytes()[:60])  # truncated: its header reads, its pixels do not
    recipe = tiny_recipe(tmp_path, steps=1, validate_every=10, sample_every=10, checkpoint_every=10)
    args = ["train", str(recipe), "--data", str(raw), "--set", f"data.target_megapixels={MP}", "--set", "data.val=[]"]
    for run in ("first", "second"):  # preparing the store, then reusing it
        with pytest.warns(UserWarning, match=f"skipping {broken.resolve()}: unreadable"):
            assert main([*args, "--out", str(tmp_path / run), "-q"]) == 0
        assert _summary(tmp_path / run)["data/skipped"] == 1
        assert _summary(tmp_path / run)["data/images"] == 2
