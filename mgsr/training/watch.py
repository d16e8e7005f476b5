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

The period-2 limit is calibrated per run, per W, at its first step (:func:`period2_limits`), because no one
number fits every image set: the released models' own worst-image ratio is 0.5-1.1x at W = 0 and 0.9-4.3x at
W = 1 on natural photos, but up to 8.5x at W = 0 and 20x at W = 1 on textures with little Nyquist energy of
their own (the bundled retina and gravel crops: their HR share is tiny, so any synthesized detail is a large
multiple of it).  A run that starts from weights is compared with its own start (a fine-tune of ``pirm-r3``
is silent at step 0); a run from random weights, or from its own pre-training (whose W = 1 is untrained),
with the released ``pirm-r3`` on the same validation images.  The limit is 1.5x that reference, and never
below 2x the HR's share.  A +-1 % phase split of R3's filter raises the worst ratio 5-24x over R3's own on the
same images, and the trained grids of docs/knob_experiments.md held 12-31x the HR's share: both far above it.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence

#: the period-2 limit is never below this many times the HR's share (natural images stay near 1)
PERIOD2_RATIO_LIMIT = 2.0
#: an output may hold this many times its reference model's period-2 ratio before the watch calls it a grid
PERIOD2_GROWTH_LIMIT = 1.5
#: above this relative spread of the four phase gains, a flat input comes out striped
PHASE_SPREAD_LIMIT = 0.01


def worst_ratio(output_shares: Sequence[float], hr_shares: Sequence[float]) -> float:
    """The largest ``output / HR`` period-2 share over the images (see the module docstring for why the max)."""
    if not output_shares or len(output_shares) != len(hr_shares):
        raise ValueError(f"need one HR share per output share, got {len(output_shares)} and {len(hr_shares)}")
    return max(out / hr for out, hr in zip(output_shares, hr_shares, strict=True))


def period2_limits(reference: Mapping[str, float]) -> dict[str, float]:
    """Each ``val/period2_ratio_w<W>`` limit from a reference model's scores on the run's validation images:
    :data:`PERIOD2_GROWTH_LIMIT` times the reference's ratio, never below :data:`PERIOD2_RATIO_LIMIT`."""
    return {
        key: max(PERIOD2_RATIO_LIMIT, PERIOD2_GROWTH_LIMIT * value)
        for key, value in reference.items()
        if key.startswith("val/period2_ratio_")
    }


def alarms(
    step: int,
    scores: Mapping[str, float],
    trained_w: Collection[float] | None = None,
    limits: Mapping[str, float] | None = None,
) -> list[str]:
    """What is out of bounds in one validation's ``scores``, each line naming the step and the number.

    ``trained_w``: the W the stage's losses read (None: all).  A W nothing trains says nothing about the
    run: the L1 pre-training never reads W = 1, whose noise path stays at its random start (and its grid).
    ``limits``: the run's :func:`period2_limits` (:data:`PERIOD2_RATIO_LIMIT` for a key it lacks).
    """
    found = []
    quiet = set() if trained_w is None else {f"val/period2_ratio_w{w:g}" for w in (0.0, 1.0) if w not in trained_w}
    for key, value in scores.items():
        if key in quiet or not key.startswith("val/period2_ratio_"):
            continue
        limit = (limits or {}).get(key, PERIOD2_RATIO_LIMIT)
        if value > limit:
            found.append(
                f"step {step}: {key} = {value:.3g}: an output holds {value:.3g}x its HR's period-2 "
                f"(grid) energy (limit {limit:.3g}x); look at the samples for a checkerboard"
            )
    spread = scores.get("val/phase_spread")
    if spread is not None and spread > PHASE_SPREAD_LIMIT:
        found.append(
            f"step {step}: val/phase_spread = {spread:.3g}: the classic upscaler's four phase gains "
            f"differ by {100 * spread:.2g} % (limit {100 * PHASE_SPREAD_LIMIT:g} %), which draws a "
            f"period-2 grid; pre-train (L1 at W = 0) or start from released weights"
        )
    return found


def warn_alarms(
    step: int,
    scores: Mapping[str, float],
    trained_w: Collection[float] | None = None,
    limits: Mapping[str, float] | None = None,
) -> None:
    """:func:`alarms` as warnings (the CLI prints them as ``mgsr: warning: ...``)."""
    for line in alarms(step, scores, trained_w, limits):
        warnings.warn(line, stacklevel=2)
