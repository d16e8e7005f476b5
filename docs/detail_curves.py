"""Draw docs/detail_curves.png, README's figure: each bundled model's curve from its card, with detail ticks.

    python docs/detail_curves.py

The curves themselves are measured by ``mgsr calibrate --curve`` (the command is recorded in each card);
this only draws what the cards hold.
"""

from __future__ import annotations

from pathlib import Path

from mgsr.assembly.loading import load_generator
from mgsr.evaluation.curve import plot_curves
from mgsr.model.weights import BUNDLED

if __name__ == "__main__":
    cards = {name: load_generator(name).card for name in BUNDLED}
    curve = cards["pirm-r3"].curve
    title = (
        f"bundled models on {', '.join(Path(n).stem for n in curve.images)} "
        f"(x{curve.scale}, {curve.protocol.get('name', '')}): dots at detail t = 0, 0.1, .., 1"
    )
    plot_curves(Path(__file__).with_name("detail_curves.png"), cards, title)
