"""Files fetched on first use (e.g. a feature extractor's ImageNet weights) — a toolkit for plugins.

Why not ``torch.hub.download_url_to_file``: its failures are tracebacks of
urllib, and mgsr's rule is one line that names the URL, the file and what to
do.  The contract is torch.hub's own, so files it saved are found here and
vice versa:

- the cache is ``<torch.hub.get_dir()>/checkpoints`` (``TORCH_HOME`` moves it);
- a name ending in ``-<hex>.<ext>`` promises a SHA-256 starting with that hex;
- the download goes to a temporary name in the cache folder (:func:`mgsr.io.atomic.atomic_path`) and is
  renamed only after the hash matched, so an interrupted or corrupt download leaves nothing behind and the
  next call simply tries again.  A process killed outright (kill -9, a power cut) cannot remove its partial
  file, so the name says who writes it (``.<name>.<random>.<pid>@<host>.tmp``) and every :func:`fetch` removes
  the partial files of its name whose writer is gone, or that nothing wrote to for STALE_AGE seconds (a live
  download writes every few seconds, or gives up after TIMEOUT), never one that a live download writes.

``MGSR_OFFLINE=1`` (or true/yes/on) forbids any network access: a missing file
is then an error saying where to put it.  :func:`download_progress` turns the
progress bars of every download in a block on or off (``mgsr train -q``), for
the plugins that fetch files without knowing how the run was started.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from tqdm import tqdm

from mgsr.errors import DownloadError, WeightsError
from mgsr.io.atomic import atomic_path

__all__ = ["DownloadError", "cache_dir", "download_progress", "expected_sha256_prefix", "fetch", "offline"]

OFFLINE_ENV = "MGSR_OFFLINE"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")
_CHUNK = 1 << 20
#: seconds without a byte from the server before giving up (not the whole download's limit)
TIMEOUT = 60.0
#: seconds after its last byte that a partial download whose writer cannot be checked (another host, an older
#: mgsr that did not name itself) counts as abandoned: a live download writes at least every TIMEOUT seconds
STALE_AGE = 24 * 3600.0
#: what may follow ``.<name>.`` in the name of a partial download: mkstemp's random part, the writer, ".tmp"
_PARTIAL = re.compile(r"[a-z0-9_]+(?:\.(\d+)@([A-Za-z0-9_-]+))?\.tmp")
#: whether a download whose caller did not say shows a progress bar (see download_progress)
_SHOW_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("mgsr_download_progress", default=True)


@contextlib.contextmanager
def download_progress(enabled: bool) -> Iterator[None]:
    """Within the block, :func:`fetch` calls that pass no ``progress`` show a bar only when ``enabled``."""
    token = _SHOW_PROGRESS.set(enabled)
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


def offline() -> bool:
    """Whether ``MGSR_OFFLINE`` forbids network access."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """torch.hub's checkpoint folder, where downloaded weights live (follows ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def expected_sha256_prefix(filename: str) -> str | None:
    """The hex a torch.hub-style name promises (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``); None if it has none."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def filename_of(url: str) -> str:
    """The last path component of ``url`` — the name the file gets in the cache."""
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise DownloadError(f"{url} does not end in a file name; give one (e.g. 'vgg19-dcbb9e9d.pth')")
    return name


def fetch(
    url: str,
    *,
    filename: str | None = None,
    sha256_prefix: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    label: str = "",
    hint: str = "",
) -> Path:
    """The cached file for ``url``, downloaded first if it is not in ``folder`` yet.

    ``filename`` defaults to the URL's file name and ``sha256_prefix`` to the
    hex in that name (no check when it has none); ``folder`` defaults to
    :func:`cache_dir`.  ``label`` says what the file is in messages (e.g.
    "VGG-19 ImageNet weights"); ``hint`` is appended to every error (e.g. how to name
    a local copy instead).  ``progress`` defaults to the enclosing :func:`download_progress` (on
    outside any).  Raises :class:`DownloadError` (exit code 4) when
    the file is missing and cannot be downloaded: offline, no network, an
    HTTP error, a transfer cut short or a hash mismatch.
    """
    name = filename or filename_of(url)
    target = (Path(folder) if folder is not None else cache_dir()) / name
    _remove_abandoned(target)
    if target.is_file():
        return target
    prefix = sha256_prefix if sha256_prefix is not None else expected_sha256_prefix(name)
    where = " (the torch hub cache; TORCH_HOME moves it)" if folder is None else ""
    todo = f"download {url} yourself and put it at {target}{where}{', ' + hint if hint else ''}"
    if offline():
        raise DownloadError(
            f"{label + ' ' if label else ''}{target} not found and {OFFLINE_ENV}=1 forbids downloading it: {todo}",
            url=url,
            target=str(target),
        )
    try:
        with contextlib.ExitStack() as staging:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = staging.enter_context(atomic_path(target, suffix=f".{os.getpid()}@{_host()}.tmp"))
                out = staging.enter_context(open(partial, "wb"))  # closed before atomic_path renames it
            except OSError as exc:
                raise DownloadError(
                    f"cannot write to the cache folder {target.parent} ({exc.strerror or exc}); "
                    f"make it writable, set TORCH_HOME to another folder, or {todo}"
                ) from None
            digest = _download(url, out, name, _SHOW_PROGRESS.get() if progress is None else progress)
            if prefix is not None and not digest.startswith(prefix):  # raised in the block: nothing is renamed
                raise DownloadError(
                    f"downloaded {url} but its SHA-256 {digest[:16]}... does not start with "
                    f"'{prefix}' as the name {name} promises (nothing was kept in {target.parent}); "
                    f"check the URL or mirror (a changed or corrupt file), or {todo}"
                )
    except DownloadError:
        raise
    except (http.client.HTTPException, OSError) as exc:  # urllib's errors are OSErrors too
        raise _failure(exc, url, target, todo) from None
    return target


def _remove_abandoned(target: Path) -> None:
    """Remove the partial downloads of ``target`` (in its folder) that no live process writes any more.

    Why: a download killed outright leaves its temporary file (548 MB for VGG-19) where nothing else would
    ever remove it.  A file whose name names a process of this host that is gone is removed at once; one of
    another host, or of an older mgsr (no writer in its name), once nothing wrote to it for STALE_AGE seconds.
    Best effort: a file that cannot be examined or removed stays.
    """
    prefix = f".{target.name}."
    try:
        entries = [entry for entry in target.parent.iterdir() if entry.name.startswith(prefix)]
    except OSError:  # no cache folder yet
        return
    for entry in entries:
        match = _PARTIAL.fullmatch(entry.name[len(prefix) :])
        if match is None:
            continue
        pid, host = match.groups()
        with contextlib.suppress(OSError):
            writer_gone = pid is not None and host == _host() and not _running(int(pid))
            if writer_gone or time.time() - entry.stat().st_mtime > STALE_AGE:
                entry.unlink()


def _host() -> str:
    """This host's name as a partial download's name carries it (letters, digits, '-' and '_' only)."""
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:64] or "host"


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (POSIX: signal 0 only asks; elsewhere it is assumed)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _failure(exc: http.client.HTTPException | OSError, url: str, target: Path, todo: str) -> DownloadError:
    """The one-line error for a download that failed with ``exc``, with what to do about it."""
    if isinstance(exc, urllib.error.HTTPError):
        return DownloadError(
            f"cannot download {url} to {target}: HTTP {exc.code} {exc.reason}; check the URL or mirror, or {todo}"
        )
    if isinstance(exc, urllib.error.URLError):
        return DownloadError(
            f"cannot download {url} to {target}: {exc.reason}; check the network (or proxy settings), or {todo}"
        )
    # cut short, reset, timed out, disk full
    return DownloadError(
        f"cannot download {url} to {target}: {_describe(exc)} (nothing was kept; the next run "
        f"tries again); retry, or {todo}"
    )


def _download(url: str, out: BinaryIO, name: str, progress: bool) -> str:
    """Stream ``url`` into ``out``; the SHA-256 hex of what was received, which is all that was promised."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "mgsr"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not progress, leave=False
        ) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise http.client.IncompleteRead(b"", total - received)
    return digest.hexdigest()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "the server closed the connection before the end of the file"
    if isinstance(exc, TimeoutError):
        return f"no data for {TIMEOUT:.0f} s"
    if isinstance(exc, http.client.HTTPException):
        return f"the server broke off the transfer ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


def read_state_dict(path: Path, what: str) -> Mapping[str, torch.Tensor]:
    """The tensors of a fetched state-dict file (loaded with ``weights_only=True``: never unpickled code), with
    errors naming the file and ``what`` it should hold (e.g. "VGG-19 weights")."""
    if not path.is_file():
        raise WeightsError(f"{what} file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise WeightsError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict (a mapping of names to tensors); expected the {what}")
    return state


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why ``url`` cannot be downloaded now (None when it answers 2xx): a plan's check, which opens the
    response and reads no body (a GET asking for one byte: not every mirror answers HEAD)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mgsr", "Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (http.client.HTTPException, OSError) as exc:
        return str(exc) or type(exc).__name__
