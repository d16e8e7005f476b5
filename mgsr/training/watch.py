"""Early signs of the period-2 collapse, logged at every validation and warned about above a limit.

Why: the failure the paper's recipes are most prone to without pre-training is a fine grid that repeats every
two pixels: the learned bicubic filter's four phases drift apart, or the generator finds a pattern
its discriminator misses.  PSNR and NIQE barely move when it starts; two cheap numbers do:

- ``val/period2_ratio_w<W>``: the output's period-2 share (the ``period2`` metric: Nyquist-line energy of the
  Y spectrum) over its HR's, for the *worst* validation image.  The worst rather than the set mean because a
  grid shows first on smooth images (little energy of their own at the Nyquist lines), and a mean over
  textured images would dilute exactly the image that reveals it.
- ``val/phase_spread`` (:func:`mgsr.evaluation.knob.phase_spread`): (max - min) / mean of the classic
  upscaler's four phase gains (its :meth:`~mgsr.interfaces.ClassicUpscaler.phase_gains`), the largest over the
  channels.  A phase split of
  only +-1 % of the released R3 filter already gives 7-17x the HR's period-2 share.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence

#: above this many times the HR's period-2 share, an output shows a grid (natural images stay near 1)
PERIOD2_RATIO_LIMIT = 2.0
#: above this relative spread of the four phase gains, a flat input comes out striped
PHASE_SPREAD_LIMIT = 0.01


def worst_ratio(output_shares: Sequence[float], hr_shares: Sequence[float]) -> float:
    """The largest ``output / HR`` period-2 share over the images (see the module docstring for why the max)."""
    if not output_shares or len(output_shares) != len(hr_shares):
        raise ValueError(f"need one HR share per output share, got {len(output_shares)} and {len(hr_shares)}")
    return max(out / hr for out, hr in zip(output_shares, hr_shares, strict=True))


def alarms(step: int, scores: Mapping[str, float], trained_w: Collection[float] | None = None) -> list[str]:
    """What is out of bounds in one validation's ``scores``, each line naming the step and the number.

    ``trained_w``: the W the stage's losses read (None: all).  A W nothing trains says nothing about the
    run: the L1 pre-training never reads W = 1, whose noise path stays at its random start (and its grid).
    """
    found = []
    quiet = set() if trained_w is None else {f"val/period2_ratio_w{w:g}" for w in (0.0, 1.0) if w not in trained_w}
    for key, value in scores.items():
        if key in quiet:
            continue
        if key.startswith("val/period2_ratio_") and value > PERIOD2_RATIO_LIMIT:
            found.append(
                f"step {step}: {key} = {value:.3g}: an output holds {value:.3g}x its HR's period-2 "
                f"(grid) energy (limit {PERIOD2_RATIO_LIMIT:g}x); look at the samples for a checkerboard"
            )
    spread = scores.get("val/phase_spread")
    if spread is not None and spread > PHASE_SPREAD_LIMIT:
        found.append(
            f"step {step}: val/phase_spread = {spread:.3g}: the classic upscaler's four phase gains "
            f"differ by {100 * spread:.2g} % (limit {100 * PHASE_SPREAD_LIMIT:g} %), which draws a "
            f"period-2 grid; pre-train (L1 at W = 0) or start from released weights"
        )
    return found


def warn_alarms(step: int, scores: Mapping[str, float], trained_w: Collection[float] | None = None) -> None:
    """:func:`alarms` as warnings (the CLI prints them as ``mgsr: warning: ...``)."""
    for line in alarms(step, scores, trained_w):
        warnings.warn(line, stacklevel=2)
