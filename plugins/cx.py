"""``cx``: the contextual similarity of an output to its reference (Mechrez et al.), as an evaluation metric.

The same CX as the contextual loss (``contextual_similarity``), over the same
feature extractor (VGG-19 relu3_4 by default), so the paper's figure-7 CX
curve is measured with the quantity training optimises.  Higher is better;
the set score is the mean.  CX compares every feature position with every
other, so images are cut to ``max_side`` pixels per side at their centre first.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import torch

from mgsr import hookimpl
from mgsr.interfaces import Composite, FeatureExtractorSpec, Metric, PartBuilder
from mgsr.ops.contextual import contextual_similarity


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y : y + side, x : x + side]


class ContextualSimilarity(Metric, Composite):
    """CX(Φ(output), Φ(reference)) in [0, 1]; 1 when the two feature distributions coincide."""

    name = "cx"
    needs_reference = True
    higher_is_better = True

    @attrs.frozen
    class Config:
        features: FeatureExtractorSpec = FeatureExtractorSpec("vgg19")
        bandwidth: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
        max_side: int = attrs.field(default=256, validator=attrs.validators.gt(0))

    def __init__(self, config: Config, *, build: PartBuilder) -> None:
        super().__init__(config)
        self.features = build(config.features).eval()

    @torch.no_grad()
    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        if reference is None:
            raise ValueError("cx compares an output with its reference; give the HR images")
        pair = [
            torch.from_numpy(np.ascontiguousarray(_centre(a, self.config.max_side)))
            .permute(2, 0, 1)[None]
            .float()
            .div(255)
            for a in (output, reference)
        ]
        cx = contextual_similarity(self.features(pair[0]), self.features(pair[1]), self.config.bandwidth)
        return float(cx.item())

    def aggregate(self, scores: Sequence[float]) -> float:
        return float(np.mean(scores))


@hookimpl
def mgsr_metrics() -> list[type]:
    return [ContextualSimilarity]
