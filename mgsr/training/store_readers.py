"""Who reads a prepared store: one small file per reading process, so a rebuild never deletes what a run reads.

Why: a training run memory-maps ``arrays/<sha>.npy`` afresh for every patch, for hours, without a lock.  A
rebuild of the store (``mgsr data prepare``, or the trainer updating a cached store) writes new arrays and a
new manifest, and would then delete the arrays the new manifest no longer lists -- the very files a running
run is still reading.  So a reader records the arrays of the manifest version it loaded in
``readers/<host>-<pid>-<token>.json`` (written atomically), and the rebuild's clean-up keeps every array that a
live reader names.  A reader's file goes when its process exits (``atexit``) or when it is released; the file
of a process that died without cleaning up (kill -9, a crash) is recognised by its pid being gone on this host,
and removed by the next clean-up.  Files from other hosts (a shared filesystem) are kept: their processes
cannot be checked from here.

The same liveness questions serve the writer: :func:`die_with_parent` makes a preparation's decoding workers end
with the process that started them (see there why).

Consistency without a lock: the rebuild writes its manifest first, then reads the readers' files; a reader
writes its file, then checks that the manifest is still the one it loaded (see
:func:`mgsr.training.store.open_store`).  Either the rebuild sees the reader's file, or the reader sees the new
manifest and loads that instead.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mgsr.io.atomic import atomic_path

#: sub-folder of a store that holds one file per reading process
READERS = "readers"
#: seconds between a decoding worker's checks that the process that started it still runs
PARENT_POLL = 0.5
#: prctl(2)'s option: the signal a process gets when its parent ends (Linux)
_PR_SET_PDEATHSIG = 1


def write_hold(folder: Path, arrays: Iterable[str], path: Path | None = None) -> Path | None:
    """Record (or, given ``path``, re-record) that this process reads ``arrays`` of the store ``folder``.

    The file is removed when this process exits.  None when the store cannot be written (a read-only copy,
    which nobody can rebuild under the reader either): the store is then read without a record.
    """
    readers = folder / READERS
    host, pid = socket.gethostname(), os.getpid()
    fresh = path is None
    if path is None:
        path = readers / f"{_safe(host)}-{pid}-{secrets.token_hex(4)}.json"
    try:
        readers.mkdir(exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"host": host, "pid": pid, "arrays": sorted(set(arrays))}))
    except OSError:
        return None
    if fresh:
        atexit.register(release_hold, path, pid)
    return path


def release_hold(path: Path | None, pid: int | None = None) -> None:
    """Drop a reader's record (at exit, or when its arrays are no longer read); only by the process that made
    it (``pid``), so that a forked child exiting does not drop its parent's."""
    if path is None or (pid is not None and pid != os.getpid()):
        return
    with contextlib.suppress(OSError):  # a read-only store: nothing to clean
        path.unlink(missing_ok=True)


def held_arrays(folder: Path) -> set[str] | None:
    """The array names that live readers of the store ``folder`` hold; files of dead readers are removed.

    A record that does not parse (edited by hand) protects nothing and is removed too; None when a record
    cannot be read at all (permissions): then nobody can tell what is read, and the caller keeps every array.
    """
    readers = folder / READERS
    if not readers.is_dir():
        return set()
    held: set[str] = set()
    for path in readers.iterdir():
        if path.name.startswith(".") or path.suffix != ".json":
            continue  # a record being written (atomic_path's temporary file)
        try:
            record = json.loads(path.read_text())
            arrays = {str(name) for name in record["arrays"]}
            alive = process_alive(str(record["host"]), int(record["pid"]))
        except FileNotFoundError:
            continue  # released meanwhile
        except OSError:
            return None
        except (ValueError, KeyError, TypeError):
            alive = False
        if alive:
            held |= arrays
        else:
            release_hold(path)
    return held


def process_alive(host: str, pid: int) -> bool:
    """Whether the process ``pid`` of ``host`` may still run: only this host's processes can be checked (and
    only on POSIX, where signal 0 merely asks; on Windows ``os.kill`` would end the process)."""
    if host != socket.gethostname() or os.name != "posix":
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def lock_holders(lock: Path) -> list[int]:
    """The processes of this user that hold ``lock``'s flock, this one excepted (Linux: read from /proc, where
    an open file that holds a lock shows it in its fdinfo; a waiter's open file does not); [] elsewhere."""
    target, found = os.path.realpath(lock), []
    with contextlib.suppress(OSError):
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid() and _holds(proc, target):
                found.append(int(proc.name))
    return sorted(found)


def _holds(proc: Path, target: str) -> bool:
    """Whether the process ``/proc/<pid>`` has the file ``target`` open with a flock on it."""
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:  # another user's process, or gone
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) == target and "FLOCK" in (proc / "fdinfo" / fd.name).read_text():
                return True
    return False


def _safe(host: str) -> str:
    """A host name fit for a file name (the record inside keeps the real one)."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in host)[:64] or "host"


def die_with_parent(parent: int) -> None:
    """End this process (a decoding worker) as soon as ``parent``, the process that started it, is gone.

    Why: killed outright (kill -9, the out-of-memory killer), a preparation leaves its workers waiting for work
    for ever -- and holding the store's lock, since a ``flock`` belongs to every process that shares the open
    file, so the next run would wait for ever too.  On Linux the kernel ends the worker at once
    (``PR_SET_PDEATHSIG``); everywhere (and for a parent gone before that was set) a thread checks every
    PARENT_POLL seconds whether this process was handed to another parent or ``parent`` ended.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl in this libc: the thread still watches
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    first_parent, host = os.getppid(), socket.gethostname()

    def watch() -> None:
        while os.getppid() == first_parent and process_alive(host, parent):
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="mgsr-parent-watch", daemon=True).start()
