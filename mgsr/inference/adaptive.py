"""Adaptive W maps: a W per pixel computed from the low-resolution input itself, by a rule of a few parameters.

Why from the LR input only: the map must exist before the network runs, so that
it enters where the noise enters (one pass, no second W = 0 pass: an adaptive
upscale costs a plain one plus a few small convolutions on the input), and so
that a tile sees the map of the whole image: the map is computed once for the
whole input and each tile takes its crop through the core's per-region noise
path (:func:`mgsr.inference.noise.amplitude_region`), which keeps tiled ==
untiled and the per-block seeded draws unchanged.

The rule: ``s = log10(1 + sigma + g * grad)`` per LR pixel (``sigma`` the local
standard deviation of studio-range Y in a Gaussian window, ``grad`` the local RMS
gradient, both in grey levels); ``m = floor + (1 - floor) * sigmoid((centre - s)
/ softness)`` (``softness > 0`` puts the noise on flat regions, ``< 0`` on busy
ones); ``centre`` is absolute, or with ``relative`` the image's own quantile of
``s`` (so every photo spends the same share of its area on noise, however flat
it is); ``m`` is then blurred by ``smooth`` pixels.  Level ``j`` gets
``W_j(x) = levels[j] * m(x)``.  Fitted by ``mgsr calibrate --adaptive``
(:mod:`mgsr.evaluation.adaptive_fit`) and saved in the calibration file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from mgsr.errors import MgsrError
from mgsr.inference.core import NoiseSetting
from mgsr.model.amplitude import check_amplitude
from mgsr.ops.color import rgb_to_y
from mgsr.ops.local_stats import gaussian_taps

#: ``kind`` of a calibration file holding an adaptive rule (a global one has no ``kind``)
ADAPTIVE_KIND = "adaptive"
#: version of the rule's record; a reader refuses others rather than guess
ADAPTIVE_FORMAT = 1
#: Gaussian window of the local statistics, in LR pixels: 5x5 taps (radius 2), sigma 1
STAT_RADIUS, STAT_SIGMA = 2, 1.0


@attrs.frozen
class AdaptiveRule:
    """The parameters of an adaptive W map (see the module docstring for the formula)."""

    levels: tuple[float, ...]
    centre: float = 1.0
    softness: float = 0.15
    floor: float = 0.0
    gradient: float = 0.0
    smooth: float = 2.0
    relative: bool = False

    def __attrs_post_init__(self) -> None:
        values = [*self.levels, self.centre, self.softness, self.floor, self.gradient, self.smooth]
        if not self.levels or not all(math.isfinite(v) for v in values):
            raise MgsrError(f"adaptive rule: every parameter must be a finite number, got {self}")
        for w in self.levels:  # W per level at map value 1: the one rule for any W
            check_amplitude(w, f"adaptive rule {self}: its W per level")
        if not 0 <= self.floor <= 1 or self.softness == 0 or self.smooth < 0 or self.gradient < 0:
            raise MgsrError(
                f"adaptive rule: need 0 <= floor <= 1, softness != 0, smooth >= 0, gradient >= 0; got {self}"
            )
        if self.relative and not 0 <= self.centre <= 1:
            raise MgsrError(f"adaptive rule: a relative centre is a quantile in [0, 1], got {self.centre}")

    def scaled(self, factor: float) -> AdaptiveRule:
        """The same map with every level's W multiplied by ``factor`` (how fitting meets an RMSE budget)."""
        return attrs.evolve(self, levels=tuple(w * factor for w in self.levels))

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, record: dict[str, Any], where: str = "rule") -> AdaptiveRule:
        """A rule from :meth:`to_dict`'s record; an error naming ``where`` and the bad key otherwise."""
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(record) - names)
        if unknown or "levels" not in record:
            raise MgsrError(
                f"{where}: expected keys {sorted(names)} ('levels' required), "
                f"got unknown {unknown or 'none'}; re-run `mgsr calibrate --adaptive`"
            )
        try:
            values: dict[str, Any] = {
                k: (tuple(float(w) for w in v) if k == "levels" else bool(v) if k == "relative" else float(v))
                for k, v in record.items()
            }
        except (TypeError, ValueError) as exc:
            raise MgsrError(f"{where}: a parameter is not a number ({exc})") from None
        try:
            return cls(**values)
        except MgsrError as exc:
            raise MgsrError(f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AdaptiveRule:
        """The rule of an adaptive calibration file; an error naming the file for anything else."""
        path = Path(path)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise MgsrError(f"{path}: calibration file not found") from None
        except (OSError, ValueError) as exc:
            raise MgsrError(f"{path}: not a JSON calibration file ({exc})") from None
        if not is_adaptive_record(record):
            raise MgsrError(
                f'{path}: not an adaptive calibration (no "kind": "{ADAPTIVE_KIND}"); '
                "make one with `mgsr calibrate --adaptive`"
            )
        if record.get("format_version") != ADAPTIVE_FORMAT:
            raise MgsrError(
                f"{path}: adaptive calibration format_version {record.get('format_version')!r}, this "
                f"mgsr reads {ADAPTIVE_FORMAT}; re-run `mgsr calibrate --adaptive` with this version"
            )
        if not isinstance(record.get("rule"), dict):
            raise MgsrError(f"{path}: key 'rule' missing or not a table; re-run `mgsr calibrate --adaptive`")
        return cls.from_dict(record["rule"], where=f"{path}: rule")


#: what a caller may give as W: one W, one per 2x level, or an adaptive rule (a W per pixel, from the input)
Noise = NoiseSetting | AdaptiveRule


def is_adaptive_record(record: object) -> bool:
    """Whether a decoded calibration file holds an adaptive rule (else it is a global W)."""
    return isinstance(record, dict) and record.get("kind") == ADAPTIVE_KIND


def _blur(x: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Gaussian blur of (1, 1, H, W) with replicate borders, radius 3 sigma unless given, as two 1-D passes
    (cheap on large inputs: the map must cost little next to the network)."""
    r = max(1, math.ceil(3 * sigma)) if radius is None else radius
    taps = torch.from_numpy(gaussian_taps(2 * r + 1, sigma)).to(x)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), taps.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), taps.view(1, 1, -1, 1))


def activity(rule: AdaptiveRule, rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``s`` of the rule per pixel of an (H, W, 3) RGB image in [0, 1]: (H, W) float64."""
    x = torch.as_tensor(np.asarray(rgb), dtype=torch.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise MgsrError(f"adaptive map: expected an (H, W, 3) RGB image, got shape {tuple(x.shape)}")
    y = rgb_to_y(x.permute(2, 0, 1).unsqueeze(0))
    y = y - y.mean()  # smaller squares: less cancellation in the variance

    def window(v: torch.Tensor) -> torch.Tensor:
        return _blur(v, STAT_SIGMA, STAT_RADIUS)

    mean = window(y)
    sigma = (window(y * y) - mean * mean).clamp_min(0).sqrt()
    stat = sigma
    if rule.gradient:
        gy = F.pad(y[..., 1:, :] - y[..., :-1, :], (0, 0, 0, 1))
        gx = F.pad(y[..., :, 1:] - y[..., :, :-1], (0, 1, 0, 0))
        stat = stat + rule.gradient * window(gx * gx + gy * gy).sqrt()
    return torch.log10(1 + stat)[0, 0]


def adaptive_map(rule: AdaptiveRule | str | os.PathLike[str], lr_image: np.ndarray | torch.Tensor) -> np.ndarray:
    """The (H, W) map in [0, 1] of ``rule`` (or of the adaptive calibration file at that path) for an
    (H, W, 3) LR image in [0, 1]; W of level j = ``levels[j] * map``.

    Pass it as ``noise_map`` with ``noise_amp=rule.levels`` (:func:`resolve_noise` does both); the map is
    that of the whole image, so any tiling of the upscale sees the same W at every pixel.  A painted
    correction of it (``mgsr serve``'s overlay) goes the same way, as ``noise_map``.
    """
    if not isinstance(rule, AdaptiveRule):
        rule = AdaptiveRule.load(rule)
    return map_of_activity(rule, activity(rule, lr_image))


def map_of_activity(rule: AdaptiveRule, s: torch.Tensor) -> np.ndarray:
    """The rule's map from its activity ``s`` (:func:`activity`), which depends on the rule only through its
    ``gradient`` weight: a search over rules computes it once per image and weight."""
    centre = (
        float(torch.quantile(s.flatten()[:: max(1, s.numel() // 1_000_000)], rule.centre))
        if rule.relative
        else rule.centre
    )
    m = rule.floor + (1 - rule.floor) * torch.sigmoid((centre - s) / rule.softness)
    if rule.smooth > 0:
        m = _blur(m[None, None], rule.smooth)[0, 0]
    return m.clamp(0, 1).numpy().astype(np.float32)


def resolve_noise(
    noise: Noise | None, rgb: np.ndarray, noise_map: np.ndarray | None
) -> tuple[NoiseSetting | None, np.ndarray | None]:
    """(W per level, per-pixel multiplier) for :func:`~mgsr.inference.core.upscale_tensor`: an
    :class:`AdaptiveRule` becomes its levels and its map of ``rgb``; any other ``noise`` passes unchanged."""
    if not isinstance(noise, AdaptiveRule):
        return noise, noise_map
    if noise_map is not None:
        raise MgsrError(
            "an adaptive calibration makes its own W map: give it or a noise map, not both "
            "(to paint over the automatic map, start from mgsr.inference.adaptive.adaptive_map)"
        )
    return list(noise.levels), adaptive_map(noise, rgb)
