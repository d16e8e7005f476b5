"""Which torch device a command runs on, and the one stderr line that says so.

``auto`` is resolved here and nowhere else, so ``mgsr upscale``, ``mgsr train`` (one process or under
torchrun), evaluation and ``mgsr serve`` pick the same device on the same machine.  The module sits at the
toolkit level (it imports only torch and :mod:`mgsr.errors`) because inference, evaluation, training and the
command line all need it, and a lower layer may not import a higher one.

The line is printed because a user who types the paper's command on a GPU machine must see, before the first
step, whether it trains on the card or on 2 CPU threads; the reason (card name, or why not a card) is part
of it so that a fallback to the CPU is never silent.
"""

from __future__ import annotations

import sys

import torch

from mgsr.errors import MgsrError

#: The device name that lets the machine choose: CUDA, else MPS (Apple), else CPU.
AUTO = "auto"


def check_device(name: str) -> None:
    """Refuse a device this machine does not have with one clear line, before any work starts.

    ``auto`` always passes: it falls back to the CPU instead of failing.
    """
    if name == AUTO:
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MgsrError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MgsrError(
                f"--device {name}: no CUDA device is available here (this torch build: "
                f"{torch.__version__}); use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MgsrError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise MgsrError(f"--device {name}: MPS is not available here; use --device cpu or auto")


def resolve_device(name: str = AUTO, local_rank: int | None = None) -> str:
    """The torch device string to run on for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    ``auto`` is CUDA when torch sees a card, else MPS when ``torch.backends.mps`` is available, else the CPU.
    ``local_rank`` is given under torchrun: any CUDA choice becomes ``cuda:LOCAL_RANK``, one card per process
    on each node, as NCCL needs.  Explicit names are checked by :func:`check_device` and returned as given.
    """
    if name == AUTO:
        if torch.cuda.is_available():
            device = "cuda:0"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    else:
        check_device(name)
        device = name
    if local_rank is not None and torch.device(device).type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise MgsrError(
                f"--device {name}: torchrun started local rank {local_rank} but this node has only "
                f"{count} CUDA device(s); start at most {count} processes per node "
                f"(--nproc_per_node={count}) or use --device cpu"
            )
        device = f"cuda:{local_rank}"
    return device


def describe_device(requested: str | None, device: str) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3)``, ``cpu (no CUDA device; 2 threads)`` or ``cpu (--device cpu; 2 threads)``.

    ``requested`` is what the user asked for (``auto`` or an explicit name; None: not said), ``device`` what it
    resolved to.
    """
    kind = torch.device(device)
    if kind.type == "cuda":
        index = kind.index if kind.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if kind.type == "mps":
        return "mps (Apple GPU)"
    why = "" if requested is None else "no CUDA device; " if requested == AUTO else f"--device {requested}; "
    threads = torch.get_num_threads()
    return f"{device} ({why}{threads} thread{'' if threads == 1 else 's'})"


def device_line(requested: str, device: str, rank: int = 0, world_size: int = 1) -> str:
    """The line a command prints once: ``mgsr: running on ...``, or ``mgsr: rank R of N running on ...``.

    Under torchrun every rank prints its own line: ranks may sit on different nodes, and a node whose card is
    missing would otherwise fall back to the CPU unseen while rank 0 reports a GPU.
    """
    who = f"rank {rank} of {world_size} " if world_size > 1 else ""
    return f"mgsr: {who}running on {describe_device(requested, device)}"


def announce_device(requested: str, device: str, rank: int = 0, world_size: int = 1) -> None:
    """Print :func:`device_line` to stderr in one flushed write (ranks share the pipe under torchrun)."""
    sys.stderr.write(device_line(requested, device, rank, world_size) + "\n")
    sys.stderr.flush()


__all__ = ["AUTO", "announce_device", "check_device", "describe_device", "device_line", "resolve_device"]
