"""``niqe``: NIQE on the protocol's luminance (the math: :mod:`mgsr.ops.niqe`, the MATLAB release's details)."""

from __future__ import annotations

import attrs
import numpy as np

from mgsr import hookimpl
from mgsr.interfaces import Metric
from mgsr.ops.color import ShaveConfig, shaved_y
from mgsr.ops.niqe import niqe


def _even_positive(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 2 or value % 2:
        raise ValueError(f"{attribute.name} must be an even number of pixels >= 2 (halved at the second scale)")


class NIQE(Metric):
    """No-reference NIQE on Y; the score of a set is the mean per-image NIQE."""

    name = "niqe"
    needs_reference = False
    higher_is_better = False

    @attrs.frozen
    class Config(ShaveConfig):
        block: int = attrs.field(default=96, validator=[attrs.validators.instance_of(int), _even_positive])

    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        return niqe(shaved_y(output, self.config.shave), self.config.block)


@hookimpl
def mgsr_metrics() -> list[type]:
    return [NIQE]
