"""The page's knobs -> one checked request: detail or W, the scale or any output factor, the seed.

What the page sends (:class:`Knobs`) becomes :class:`Settings` here, checked as ``mgsr upscale`` checks its
options, so a request the page lets through is one the command line takes too.  How W is chosen (by detail
or directly) and what the line beside the detail slider says live here as well: both map detail and W
through the offered model's curve (:class:`mgsr.serve.catalog.Catalog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from mgsr.errors import MgsrError
from mgsr.inference.core import check_noise, levels_for
from mgsr.inference.outsize import LEVEL_SCALES, SizeRequest
from mgsr.serve.catalog import Catalog
from mgsr.serve.maps import CalibrationFile

#: how the page's W was chosen: by the detail slider (``--detail``) or directly (``--noise``)
BY_DETAIL, BY_W = "detail", "w"
#: the scales the page offers, as its messages name them ("2, 4 or 8")
_SCALES_SAID = f"{', '.join(str(s) for s in LEVEL_SCALES[:-1])} or {LEVEL_SCALES[-1]}"


@attrs.frozen
class Knobs:
    """The page's inputs of one request, in the order the page sends them (:attr:`mgsr.serve.layout.Page.knobs`)."""

    path: str | None  # the image, as the web framework stored it
    model: str
    scale: Any
    outscale: Any
    by: str  # how W is chosen: BY_DETAIL or BY_W
    detail: float
    w: float
    per_level_on: bool
    w1: float
    w2: float
    w3: float
    seed: Any
    editor: dict | None = None  # the painting: {"background", "layers", "composite"}
    mask_path: str | None = None  # an uploaded mask file, which wins over painting
    automatic: str = ""  # the key of the calibration whose automatic map is on; "" when off


@attrs.frozen
class Settings:
    """The knobs of one request, checked."""

    model: str
    scale: int  # the network's factor: the level the output factor rounds up to
    noise: tuple[float, ...]  # one W, or one per 2x level
    seed: int
    #: the detail t W was chosen by (``--detail T``), None when W was given itself (``--noise W``)
    detail: float | None = None
    #: the output factor when it is not a level (``--outscale F``); None: the output is ``scale`` x
    outscale: float | None = None
    #: the adaptive calibration file whose W per level ``noise`` is (the automatic map is on), else None
    calibration: str | None = None

    @classmethod
    def make(
        cls,
        model: str,
        scale: int | float | str,
        w: float,
        per_level: Sequence[float] | None,
        seed: int | float | None,
        *,
        detail: float | None = None,
        outscale: float | str | None = None,
    ) -> Settings:
        """From the page's values: ``per_level`` (when given) replaces ``w`` with one W per level.

        ``detail`` is the t that ``w`` was computed from (the caller maps it with the model's curve);
        ``outscale`` (empty or None: the level ``scale``) replaces ``scale`` by the level it rounds up to.
        """
        factor = _outscale(outscale)
        if factor is not None:
            scale = SizeRequest(outscale=factor).fixed_level  # type: ignore[assignment]
            factor = None if factor == scale else factor  # a level itself: no resize, plain --scale
        try:
            scale = int(scale)
        except (TypeError, ValueError):
            raise MgsrError(f"scale {scale!r}: choose {_SCALES_SAID}") from None
        if scale not in LEVEL_SCALES:
            raise MgsrError(f"scale {scale}: choose {_SCALES_SAID}")
        levels = levels_for(scale)
        values = [float(w)] if per_level is None else [float(v) for v in list(per_level)[:levels]]
        check_noise(values, levels)
        if seed is None or float(seed) != int(seed) or not 0 <= int(seed) < 2**63:
            raise MgsrError(f"seed {seed!r}: give a whole number >= 0")
        t = None if detail is None or per_level is not None else float(detail)
        return cls(model=str(model), scale=scale, noise=tuple(values), seed=int(seed), detail=t, outscale=factor)

    @property
    def noise_arg(self) -> float | list[float]:
        return self.noise[0] if len(self.noise) == 1 else list(self.noise)

    @property
    def request(self) -> SizeRequest:
        """The output size as ``mgsr upscale`` takes it (a level is an outscale that needs no resize)."""
        return SizeRequest(outscale=float(self.outscale if self.outscale is not None else self.scale))

    @property
    def factor(self) -> float:
        """The output's size over the input's."""
        return float(self.outscale if self.outscale is not None else self.scale)


def _outscale(value: float | str | None) -> float | None:
    """The page's output-factor field: empty means none; anything else must be a number (checked by SizeRequest)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise MgsrError(
            f"output factor {value!r}: give a number in (1, 8], e.g. 3 or 2.5, or leave it empty for the scale"
        ) from None
    SizeRequest(outscale=factor)  # its message names the range
    return factor


def output_factor(scale: int | float | str, outscale: float | str | None) -> float:
    """The output's size over the input's for the page's scale and output-factor fields."""
    factor = _outscale(outscale)
    return float(scale) if factor is None else factor


def level_for_output(scale: int | float | str, outscale: float | str | None) -> int:
    """The network's factor for the page's scale and output-factor fields: the level the factor rounds up to."""
    factor = _outscale(outscale)
    return int(scale) if factor is None else int(SizeRequest(outscale=factor).fixed_level or scale)


def page_settings(
    catalog: Catalog,
    model: str,
    scale: int | float | str,
    outscale: float | str | None,
    by: str,
    t: float,
    w: float,
    per_level: Sequence[float] | None,
    seed: int | float | None,
    automatic: CalibrationFile | None = None,
) -> Settings:
    """The page's values -> Settings: W from detail ``t`` when the user last moved the detail slider.

    The automatic map, when on, brings its own W per level and wins over everything else (the page
    disables W and detail meanwhile); then W per level (it is the expert's control and has no detail
    equivalent).  A model without a curve cannot be driven by detail: its error names the command that
    measures one.
    """
    if automatic is not None:
        made = Settings.make(model, scale, 0.0, None, seed, outscale=outscale)  # the scale, factor and seed checked
        rule = automatic.check_levels(made.scale)
        return attrs.evolve(made, noise=tuple(rule.levels), calibration=automatic.name)
    if by == BY_DETAIL and per_level is None:
        noise = catalog.noise_for_detail(model, t)
        return Settings.make(model, scale, noise, None, seed, detail=float(t), outscale=outscale)
    if by not in (BY_DETAIL, BY_W):
        raise MgsrError(f"W chosen by {by!r}: expected {BY_DETAIL!r} or {BY_W!r}")
    return Settings.make(model, scale, w, per_level, seed, outscale=outscale)


def model_start(catalog: Catalog, label: str) -> dict[str, Any]:
    """The page's knobs when this model is chosen: its recorded W, the detail t of that W, and how W is chosen.

    By detail where the model has a curve (the bundled ones: t = 1, their W is the curve's end); by W, with
    detail left at 1 and disabled, where it has none.
    """
    w = catalog.get(label).default_noise
    t = catalog.detail_for_noise(label, w)
    return {"w": w, "t": 1.0 if t is None else round(t, 3), "by": BY_W if t is None else BY_DETAIL}


def detail_says(catalog: Catalog, model: str, by: str, t: float, w: float) -> str:
    """The line beside the detail slider: the W it means, or, when W was set directly, the detail that W is."""
    note = catalog.detail_note(model)
    if note:
        return note
    if by == BY_DETAIL:
        return f"W = {catalog.noise_for_detail(model, t):.4g}"
    top = catalog.noise_for_detail(model, 1.0)
    where = (
        f"detail {catalog.detail_for_noise(model, w):.3f}"
        if float(w) <= top
        else f"beyond detail 1 (W = {top:.4g}), the end of the model's measured curve"
    )
    return f"W = {float(w):.4g}, set directly (Advanced): {where}"
