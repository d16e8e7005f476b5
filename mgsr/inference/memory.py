"""Keeping freed memory for reuse during inference (glibc), instead of returning it to the kernel.

A forward pass allocates and frees maps of tens of megabytes hundreds of times.
glibc serves every block over 32 MB with a fresh ``mmap`` and unmaps it on free,
so each map is page-faulted (and zeroed by the kernel) again on the next
allocation: on the 2-core test machine that tripled the cost of the
element-wise passes (3.6x the page faults; see benchmarks/upscale_bench.py).
Serving them from the heap and not trimming it makes later passes reuse warm
pages.  The peak memory is unchanged (the same blocks are live at the peak);
the settings are restored, and the heap trimmed, when the block ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

from mgsr.ops.shared_setting import SharedSetting

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536
_DEFAULT_TRIM_THRESHOLD = 128 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # glibc only: musl has no mallopt knobs to set
        return libc if hasattr(libc, "gnu_get_libc_version") else None
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def _keep_freed() -> None:
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_MAX, 0)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def _release_freed(_: None) -> None:
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        _LIBC.malloc_trim(0)


#: ``with reuse_freed_memory():`` large freed blocks stay in the process for reuse (no-op off glibc).
reuse_freed_memory = SharedSetting(_keep_freed, _release_freed)
