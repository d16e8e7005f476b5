"""Options several commands share, written once so their names, defaults and help never drift apart."""

from __future__ import annotations

import argparse

from mgsr.devices import AUTO


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``, default ``auto``: every command that runs a network picks the card itself when there is one."""
    p.add_argument("--device", default=AUTO,
                   help="auto (default: CUDA if available, cuda:LOCAL_RANK under torchrun, else Apple MPS, else "
                        "CPU), cpu, cuda, cuda:1, mps; the choice is printed once on stderr unless -q")
