"""Options several commands share, written once so their names, defaults and help never drift apart."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mgsr.devices import AUTO

if TYPE_CHECKING:
    from mgsr.model.generator import GMGBP


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``, default ``auto``: every command that runs a network picks the card itself when there is one."""
    p.add_argument(
        "--device",
        default=AUTO,
        help="auto (default: CUDA if available, cuda:LOCAL_RANK under torchrun, else Apple MPS, else "
        "CPU), cpu, cuda, cuda:1, mps; the choice is printed once on stderr unless -q",
    )


def detail_noise(model: GMGBP, detail: float, announce: bool) -> float:
    """The W that ``--detail`` means for ``model``, said once on stderr so the user learns the W scale too."""
    from mgsr.model.detail import noise_for_detail

    noise = noise_for_detail(model.card, detail)
    if announce:
        name = model.card.name if model.card is not None else "this model"  # noise_for_detail needs a card
        print(f"mgsr: detail {detail:g} means W = {noise:.6g} for {name}", file=sys.stderr)
    return noise
