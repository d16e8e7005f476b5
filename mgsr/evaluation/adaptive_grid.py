"""Scoring W maps without a network pass each: the set's outputs at a grid of global W, kept as what the
scores are made of, and a map's set RMSE and NIQE read off them.

Why this is allowed: a set's RMSE is a sum of squared errors over pixels, and
NIQE's 36 features of a 96x96 block depend on that block's pixels (and a few
around it, for MSCN's 7x7 window and the half-scale resize); so where a map is
constant over a region the output there is, away from the region's edge, the
output of the global W of that value.  Each image's outputs at the grid W are
therefore kept as squared errors summed per LR pixel and NIQE features per block;
a map's score takes each pixel's squared error and each block's features by
linear interpolation between the two grid W around the pixel's W (the block's
mean W).  At the grid points this is the protocol's own score exactly (tested);
between them and across a map's edges it is an estimate, which is why a fit
checks its winner with one real pass.  The point is the price: the grid costs a
fixed number of passes, after which thousands of candidate maps cost
milliseconds each instead of a pass each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import numpy as np

from mgsr.errors import EvaluationError
from mgsr.evaluation.upscalers import SetEvaluator
from mgsr.ops.color import shaved_y
from mgsr.ops.niqe import niqe_distance, niqe_features, pristine_model

#: global W of the grid: dense across pirm-r3's cliff (its whole perception-distortion path lies in W <= 0.04)
DEFAULT_GRID = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03, 0.045)


@attrs.frozen(eq=False)
class GridImage:
    """One image's outputs at every grid W, as the protocol's scores see them."""

    name: str
    lr: np.ndarray  #: the uint8 LR input the maps are computed from
    grid: np.ndarray  #: (K,) increasing global W
    features: np.ndarray  #: (K, blocks, 36) NIQE features, blocks in NIQE's order (column-major)
    cell_errors: np.ndarray  #: (K, h, w) squared Y error summed over each LR pixel's scale x scale HR pixels
    scored_pixels: int  #: HR pixels the RMSE averages over (after the shave)
    block_slices: tuple[tuple[slice, slice], ...]  #: each block's footprint on the LR grid

    def bracket(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the grid W at or below each value (clipped to the grid) and the fraction towards the next."""
        g = self.grid
        w = np.clip(w, g[0], g[-1])
        k = np.clip(np.searchsorted(g, w, side="right") - 1, 0, len(g) - 2)
        return k, (w - g[k]) / (g[k + 1] - g[k])

    def score(self, w_map: np.ndarray) -> tuple[float, float]:
        """(MSE, NIQE) of this image upscaled with ``w_map`` (W per LR pixel), estimated from the grid."""
        k, t = self.bracket(w_map)
        rows, cols = np.indices(w_map.shape)
        errors = (1 - t) * self.cell_errors[k, rows, cols] + t * self.cell_errors[k + 1, rows, cols]
        kb, tb = self.bracket(np.array([w_map[s].mean() for s in self.block_slices]))
        blocks = np.arange(len(kb))
        features = (1 - tb)[:, None] * self.features[kb, blocks] + tb[:, None] * self.features[kb + 1, blocks]
        return float(errors.sum() / self.scored_pixels), niqe_distance(features, *pristine_model())


def _block_slices(shape: tuple[int, int], scale: int, shave: int, block: int) -> tuple[tuple[slice, slice], ...]:
    """LR footprints of NIQE's blocks (NIQE's order: columns outer, rows inner) of a shaved HR image."""
    rows, cols = (shape[0] - 2 * shave) // block, (shape[1] - 2 * shave) // block

    def span(i: int) -> slice:
        return slice((shave + i * block) // scale, -(-(shave + (i + 1) * block) // scale))

    return tuple((span(r), span(c)) for c in range(cols) for r in range(rows))


def _metric_setting(evaluator: SetEvaluator, name: str, key: str) -> int:
    for metric in evaluator.metrics:
        if metric.name == name:
            return int(getattr(metric.config, key))
    raise EvaluationError(f"scoring W maps needs the protocol's '{name}' metric; use a protocol that computes it")


def measure_grid(
    evaluator: SetEvaluator,
    scale: int,
    grid: Sequence[float] = DEFAULT_GRID,
    progress: Callable[[str], None] | None = None,
) -> list[GridImage]:
    """Upscale every image of the set at every grid W (one pass per W) and keep what the scores need."""
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
        raise EvaluationError(f"the W grid must hold at least two increasing values, got {list(grid)}")
    shave, block = _metric_setting(evaluator, "niqe", "shave"), _metric_setting(evaluator, "niqe", "block")
    if _metric_setting(evaluator, "rmse", "shave") != shave:
        raise EvaluationError("scoring W maps needs the protocol's RMSE and NIQE to shave the same border")
    per_image: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in evaluator.images]
    references = [shaved_y(image.hr, shave) for image in evaluator.images]
    for w in grid:
        for image, reference, (features, errors) in zip(evaluator.images, references, per_image, strict=True):
            y = shaved_y(evaluator.output(image, float(w)), shave)
            features.append(niqe_features(y, block))
            squared = np.zeros(image.hr.shape[:2])
            squared[shave : shave + y.shape[0], shave : shave + y.shape[1]] = (y - reference) ** 2
            h, w_ = image.lr.shape[:2]
            errors.append(squared.reshape(h, scale, w_, scale).sum(axis=(1, 3)))
        if progress:
            progress(f"grid W={w:g}: {len(evaluator.images)} images")
    return [
        GridImage(
            image.name,
            image.lr,
            np.asarray(grid, dtype=np.float64),
            np.stack(features),
            np.stack(errors),
            (image.hr.shape[0] - 2 * shave) * (image.hr.shape[1] - 2 * shave),
            _block_slices(image.hr.shape[:2], scale, shave, block),
        )
        for image, (features, errors) in zip(evaluator.images, per_image, strict=True)
    ]


def set_scores(images: Sequence[GridImage], w_maps: Sequence[np.ndarray]) -> tuple[float, float]:
    """The set's (RMSE, NIQE) as the protocol aggregates them (RMSE: root of the mean MSE; NIQE: the mean)."""
    scores = [im.score(m) for im, m in zip(images, w_maps, strict=True)]
    return float(np.sqrt(np.mean([s[0] for s in scores]))), float(np.mean([s[1] for s in scores]))


def global_points(images: Sequence[GridImage]) -> list[tuple[float, float, float]]:
    """(W, set RMSE, set NIQE) of every grid W: exact, these are the protocol's scores of those passes."""
    return [(float(w), *set_scores(images, [np.full(im.lr.shape[:2], w) for im in images])) for w in images[0].grid]
