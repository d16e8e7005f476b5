"""A job spread over processes by torchrun: this process's rank, its device, and what the ranks agree on.

Data-parallel training (:mod:`mgsr.training`) and folder upscaling (``mgsr upscale`` under torchrun, each
image on one rank) both run this way, so it sits at the toolkit level beside :mod:`mgsr.runtime.devices`.

Rank and world size come from the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``); there is no
``--local-rank`` argument.  NCCL on GPUs, gloo on CPU.  A failing rank prints
one line naming itself and exits non-zero; torchrun then stops the others, so
the job fails instead of hanging.
"""

from __future__ import annotations

import os
from datetime import timedelta

import attrs
import torch
import torch.distributed as dist

from mgsr.runtime.devices import announce_device, resolve_device


@attrs.frozen
class Context:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Context()


def from_environment(device: str, *, announce: bool = False) -> tuple[Context, str]:
    """Join the process group torchrun describes (if any); returns the context and this rank's device.

    ``device`` may be ``auto`` (:func:`mgsr.runtime.devices.resolve_device`); under torchrun a CUDA choice becomes
    ``cuda:LOCAL_RANK``.  ``announce`` prints the device line once per process (each rank its own).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        ctx, placed = SINGLE, resolve_device(device)
    else:
        ctx = Context(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
        placed = resolve_device(device, local_rank=ctx.local_rank)
        if placed.startswith("cuda"):
            torch.cuda.set_device(placed)
        if not dist.is_initialized():
            timeout = timedelta(seconds=float(os.environ.get("MGSR_DIST_TIMEOUT", "600")))
            dist.init_process_group(backend="nccl" if placed.startswith("cuda") else "gloo", timeout=timeout)
    if announce:
        announce_device(device, placed, ctx.rank, ctx.world_size)
    return ctx, placed


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def any_rank(ctx: Context, flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop at the same step).

    ``device`` must be the rank's CUDA device under NCCL.
    """
    if not ctx.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def shutdown(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
