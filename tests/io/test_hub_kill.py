"""A download killed outright (issue 29, item 3): its partial file goes on the next fetch once its writer is gone,
never while a live download writes it.  A real HTTP server on 127.0.0.1 and real kill -9."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from mgsr.io import hub

DATA = bytes(range(256)) * 12288  # 3 MiB: half of it is one of hub's 1 MiB chunks, written to the partial file
NAME = f"vgg19-{hashlib.sha256(DATA).hexdigest()[:8]}.pth"


@attrs.define
class StallingServer:
    """Serves DATA; while ``stall`` is clear, a request gets half of it and then waits (a download in flight)."""

    base: str = ""
    stall: threading.Event = attrs.Factory(threading.Event)
    release: threading.Event = attrs.Factory(threading.Event)

    @property
    def url(self) -> str:
        return f"{self.base}/{NAME}"


@pytest.fixture
def stalling() -> Iterator[StallingServer]:
    state = StallingServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            if state.stall.is_set():
                self.wfile.write(DATA[: len(DATA) // 2])
                self.wfile.flush()
                state.release.wait(60)
                self.wfile.write(DATA[len(DATA) // 2 :])
                return
            self.wfile.write(DATA)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".{NAME}.*.tmp")) if folder.is_dir() else []


def _download_in_flight(server: StallingServer, folder: Path) -> subprocess.Popen[bytes]:
    """A process downloading NAME, once its first MiB is in its partial file (the server then waits)."""
    server.stall.set()
    script = "import sys; from mgsr.io import hub; hub.fetch(sys.argv[1], progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", script, server.url])
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size >= 1 << 20 for p in _partials(folder)):
        assert proc.poll() is None and time.monotonic() < deadline, "the download did not start"
        time.sleep(0.02)
    server.stall.clear()  # later requests are served at once
    return proc


def test_a_download_killed_outright_leaves_nothing_after_the_next_fetch(stalling, online):
    """README: "a broken download leaves nothing and is retried next time" -- a kill -9 mid-download too."""
    proc = _download_in_flight(stalling, online)
    proc.kill()
    proc.wait()
    [partial] = _partials(online)
    assert hub.fetch(stalling.url, progress=False).read_bytes() == DATA
    assert sorted(p.name for p in online.iterdir()) == [NAME]
    assert f".{proc.pid}@" in partial.name  # how the next fetch knew: the name says who wrote it


def test_the_partial_file_of_a_live_download_is_never_removed(stalling, online):
    proc = _download_in_flight(stalling, online)
    try:
        [partial] = _partials(online)
        assert hub.fetch(stalling.url, progress=False).read_bytes() == DATA  # a second run, meanwhile
        assert partial.exists()  # still written by the first
        stalling.release.set()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert sorted(p.name for p in online.iterdir()) == [NAME]


def test_partial_files_whose_writer_cannot_be_checked_go_only_when_old(online, monkeypatch):
    """Another host's download, or an older mgsr's (its name has no writer): removed once nothing wrote to it for
    hub.STALE_AGE; files of other names and other tools are never touched."""
    online.mkdir(parents=True)
    old = time.time() - hub.STALE_AGE - 60
    names = {
        f".{NAME}.abcd1234.77@far-away-host.tmp": (old, False),
        f".{NAME}.abcd1235.77@far-away-host.tmp": (time.time(), True),
        f".{NAME}.k2j4_x9q.tmp": (old, False),  # an older mgsr's name
        f".{NAME}.k2j4_x9r.tmp": (time.time(), True),
        ".other-12345678.pth.k2j4_x9q.tmp": (old, True),
        f"{NAME}.1f2e3d.partial": (old, True),  # torch.hub's own
    }
    for name, (mtime, _) in names.items():
        (online / name).write_bytes(b"partial")
        os.utime(online / name, (mtime, mtime))
    monkeypatch.setenv("MGSR_OFFLINE", "1")  # the clean-up runs before anything is fetched
    with pytest.raises(hub.DownloadError):
        hub.fetch(f"http://127.0.0.1:9/{NAME}", progress=False)
    assert sorted(p.name for p in online.iterdir()) == sorted(name for name, (_, kept) in names.items() if kept)
