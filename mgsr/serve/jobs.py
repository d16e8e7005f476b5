"""The upscaling jobs of ``mgsr serve``: the preview of a crop and the whole image, without a web framework.

Every result is made by the same code as ``mgsr upscale`` (the cached model
loader, ``upscale_picture`` with the same automatic tile size, ``write_picture``),
and the painted mask is used only after it went through the same 8-bit PNG file
that the page offers for download, so the equivalent command line printed in the
page gives the same bytes.  That command line and the line naming a preview's
settings are made here too, beside the work they describe.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
from PIL import Image

from mgsr.inference.outsize import resize_picture
from mgsr.inference.pictures import super_resolve, upscale_picture_to
from mgsr.io.images import Picture, to_grey, write_picture
from mgsr.serve.catalog import Catalog, ModelChoice
from mgsr.serve.crop import DEFAULT_PREVIEW_SIDE, crop_box, crop_side
from mgsr.serve.maps import CalibrationFile, Mask
from mgsr.serve.settings import Settings
from mgsr.serve.uploads import Upload, to_display

#: input pixels of context around the preview crop, so its borders look like the full result's
PREVIEW_CONTEXT = 8


@attrs.frozen
class Result:
    output: Path  # the PNG to download
    files: tuple[Path, ...]  # what the command reads besides the input (the mask, the calibration), to download
    command: str
    before: np.ndarray  # uint8 (sH, sW, 3): bicubic upscale of the input
    after: np.ndarray  # uint8 (sH, sW, 3): the result as shown
    made_with: str = ""  # :func:`describe` of its settings and mask, as the preview's line says it


def number_text(value: float) -> str:
    """A number for the command line, exact: ``3`` for a whole one, else Python's shortest repr (``2.5``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def noise_text(settings: Settings) -> str:
    """W as ``--noise`` takes it (one value, or one per level, comma-separated, each exact)."""
    return ",".join(repr(v) for v in settings.noise)


def command_line(input_name: str, output_name: str, choice: ModelChoice, settings: Settings, mask: Mask | None) -> str:
    """The ``mgsr upscale`` call that writes the same bytes (files named as the page offers them).

    A W chosen by detail is given as ``--detail T`` (what the user chose; the command maps it as the
    page did), an output factor that is not a level as ``--outscale F``; the automatic map unpainted
    as its calibration file, painted over as its W per level and the painted map.
    """
    automatic = settings.calibration is not None and mask is not None and mask.path is None
    parts = ["mgsr", "upscale", input_name, "-o", output_name, "--model", choice.ref]
    parts += (
        ["--scale", str(settings.scale)]
        if settings.outscale is None
        else ["--outscale", number_text(settings.outscale)]
    )
    if automatic:
        parts += ["--noise", str(settings.calibration)]
    elif settings.detail is not None:
        parts += ["--detail", repr(settings.detail)]
    else:
        parts += ["--noise", noise_text(settings)]
    if mask is not None and mask.path is not None:
        parts += ["--noise-map", mask.path.name]
    parts += ["--seed", str(settings.seed)]
    return shlex.join(parts)


def shown_number(value: float) -> str:
    """A number for a person to read: 4 significant digits (``0.2607``, not ``0.2606538251239785``).

    The line under the preview is read, not parsed; the command line keeps every digit (:func:`noise_text`).
    """
    return f"{float(value):.4g}"


def describe(settings: Settings, mask: Mask | None) -> str:
    """One line naming what a preview was made with.

    The page shows it under the preview, so a user (and the browser test) can check the
    preview against the knobs; the mask part changes with every stroke that changes W.
    """
    values = ",".join(shown_number(v) for v in settings.noise)
    w = f"W {values}" if len(settings.noise) == 1 else f"W per level {values}"
    if settings.detail is not None:
        w = f"detail {shown_number(settings.detail)} = {w}"
    if settings.calibration is not None:
        w = f"{w} of {settings.calibration}"
    if mask is None:
        regions = "no painted regions"
    else:
        digest = hashlib.sha256(np.ascontiguousarray(mask.values).tobytes()).hexdigest()[:6]
        if settings.calibration is None:  # paint or a mask file: mostly white, some regions lower
            lowered = float((mask.values < 1.0).mean()) * 100
            regions = f"painted: W lowered on {lowered:.1f} % of the image (mask {digest})"
        else:  # a continuous map, below 1 almost everywhere: its mean says more
            what = "automatic map" if mask.path is None else "painted map"
            regions = f"{what}: W x {float(mask.values.mean()):.2f} on average (mask {digest})"
    size = f"{settings.scale}x" if settings.outscale is None else f"{settings.outscale:g}x (from {settings.scale}x)"
    return f"{settings.model} · {size} · {w} · seed {settings.seed} · {regions}"


def bicubic(display: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The plain bicubic upscale to ``size`` = (height, width) that the page compares against."""
    return np.asarray(Image.fromarray(display).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def _shown(color: np.ndarray) -> np.ndarray:
    """A result's colour planes as the page shows them: grey stays grey (repeated to RGB)."""
    return to_display(np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color)


def upscale_full(
    catalog: Catalog,
    upload: Upload,
    settings: Settings,
    mask: Mask | None,
    folder: Path,
    on_tile: Callable[[int, int], None] | None = None,
    automatic: CalibrationFile | None = None,
) -> Result:
    """The full-size result, written as ``mgsr upscale -o NAME.png`` writes it.

    ``automatic`` is the calibration file of the automatic map, when it is on: written beside the
    result when the command line reads it (the map unpainted).
    """
    choice = catalog.get(settings.model)
    generator = catalog.generator(settings.model)
    result: Picture = upscale_picture_to(
        generator,
        upload.picture,
        settings.request,
        where=repr(upload.name),
        noise=settings.noise_arg,
        noise_map=None if mask is None else mask.values,
        seed=settings.seed,
        device=catalog.device,
        backend=catalog.backend,
        on_tile=on_tile,
    )
    stem = Path(upload.name).stem
    output = folder / f"{stem}_{settings.request.tag}.png"  # as mgsr upscale names it in a folder
    write_picture(output, result)
    files: tuple[Path, ...] = ()
    if mask is not None and mask.path is not None:
        files = (mask.path,)
    elif mask is not None and automatic is not None:
        files = (folder / automatic.name,)
        files[0].write_bytes(automatic.data)
    return Result(
        output=output,
        files=files,
        command=command_line(upload.name, output.name, choice, settings, mask),
        before=bicubic(upload.display, result.size),
        after=_shown(result.color),
        made_with=describe(settings, mask),
    )


def preview(
    catalog: Catalog,
    upload: Upload,
    settings: Settings,
    mask: Mask | None,
    centre: tuple[float, float] | None,
    out_side: int = DEFAULT_PREVIEW_SIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """(bicubic, result) of a crop around ``centre``: seconds, so it can follow the slider.

    The crop is upscaled with some context around it and the same settings, and draws
    the noise the full result has at that place: the preview shows the grain the
    download will have there (to about a grey level; the full result sees more context).
    """
    side = crop_side(out_side, settings.factor)
    y0, y1, x0, x1 = crop_box(upload.picture.size, centre, side)
    height, width = upload.picture.size
    cy0, cy1 = max(0, y0 - PREVIEW_CONTEXT), min(height, y1 + PREVIEW_CONTEXT)
    cx0, cx1 = max(0, x0 - PREVIEW_CONTEXT), min(width, x1 + PREVIEW_CONTEXT)
    rgb = upload.picture.rgb()[cy0:cy1, cx0:cx1]
    values = None
    if mask is not None:
        full = mask.values
        if full.shape != (height, width):
            full = np.asarray(
                Image.fromarray(full.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
            )
        values = full[cy0:cy1, cx0:cx1]
    generator = catalog.generator(settings.model)
    out = super_resolve(
        generator,
        rgb,
        scale=settings.scale,
        noise=settings.noise_arg,
        noise_map=values,
        seed=settings.seed,
        tile=None,
        device=catalog.device,
        backend=catalog.backend,
        noise_origin=(cy0, cx0),
    )
    f = settings.factor
    if settings.outscale is not None:
        # shrunk as the full result is, context and all, so the crop's borders see their neighbours; for a
        # factor that is not whole, the crop's place is rounded to the output's pixels (a sub-pixel shift)
        piece = Picture(color=np.clip(out, 0.0, 1.0), alpha=None, bits=32, mode="RGB")
        out = resize_picture(piece, (round((cy1 - cy0) * f), round((cx1 - cx0) * f))).color
    oy, ox = round((y0 - cy0) * f), round((x0 - cx0) * f)
    out = out[oy : oy + round((y1 - y0) * f), ox : ox + round((x1 - x0) * f)]
    color = to_grey(out) if upload.picture.color.shape[2] == 1 else out
    return bicubic(upload.display[y0:y1, x0:x1], out.shape[:2]), _shown(color)
