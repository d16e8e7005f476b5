"""What ``mgsr serve`` does for one request, without a web framework: testable as plain functions.

Every result is made by the same code as ``mgsr upscale`` (the cached model
loader, ``upscale_picture`` with the same automatic tile size, ``write_picture``),
and the painted mask is used only after it went through the same 8-bit PNG file
that the page offers for download, so the equivalent command line printed in the
page gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np
from PIL import Image

from mgsr.devices import resolve_device
from mgsr.errors import MgsrError
from mgsr.inference.core import choose_backend
from mgsr.inference.outsize import resize_picture
from mgsr.inference.pictures import super_resolve, upscale_picture_to
from mgsr.io.images import Picture, to_grey, write_picture
from mgsr.model.detail import MEASURE_HINT, detail_for_noise, noise_for_detail
from mgsr.model.loading import resolve_model
from mgsr.model.weights import BUNDLED
from mgsr.serve.maps import CalibrationFile, Mask
from mgsr.serve.settings import (  # noqa: F401 - the page's
    BY_DETAIL,
    BY_W,
    SCALES,
    Settings,
    detail_says,
    level_for_output,
    model_start,
    output_factor,
    page_settings,
)
from mgsr.serve.uploads import Upload, to_display

#: side of the preview's output in pixels: its input crop is this divided by the scale
DEFAULT_PREVIEW_SIDE = 256
#: input pixels of context around the preview crop, so its borders look like the full result's
PREVIEW_CONTEXT = 8


@attrs.frozen
class ModelChoice:
    label: str  # what the page shows and sends back
    ref: str  # what the model loader and the command line get: a bundled name or the path the operator gave
    default_noise: float


class Catalog:
    """The models this server offers: the bundled ones and the operator's ``--model`` ones, nothing else.

    The page sends a label back; a label that is not in the catalog is refused, so a
    client can never make the server load a file of its choosing.
    """

    def __init__(self, extra: Sequence[str] = (), device: str = "cpu") -> None:
        self.device = resolve_device(device)  # "auto" becomes the card or the CPU, once, at start-up
        # what `mgsr upscale` runs on this device, so the command shown under a result gives its bytes
        self.backend = choose_backend("auto", self.device)
        self.choices: dict[str, ModelChoice] = {}
        for name, (_, w) in BUNDLED.items():
            self.choices[name] = ModelChoice(name, name, w)
        for ref in extra:
            if ref in self.choices:
                continue
            generator = resolve_model(ref, self.device)  # fails now, at start-up, with the loader's message
            name = generator.card.name if generator.card is not None else Path(ref).stem
            label = ref if ref in BUNDLED else f"{name} ({Path(ref).name})"
            self.choices[label] = ModelChoice(label, ref, float(generator.default_noise))
        # the command line's default, or the operator's own model when one is given
        self.default = "pirm-r3" if not extra else self._label_of(extra[0])

    def _label_of(self, ref: str) -> str:
        return next(label for label, choice in self.choices.items() if choice.ref == ref)

    @property
    def labels(self) -> list[str]:
        return list(self.choices)

    def get(self, label: str) -> ModelChoice:
        try:
            return self.choices[label]
        except KeyError:
            raise MgsrError(
                f"model {label!r} is not offered by this server; choose one of {', '.join(self.choices)}"
            ) from None

    def generator(self, label: str):  # noqa: ANN201 - a GMGBP
        return resolve_model(self.get(label).ref, self.device)

    def has_curve(self, label: str) -> bool:
        """Whether the model's card carries a perception-distortion curve, so the detail scale works."""
        card = self.generator(label).card
        return card is not None and card.curve is not None

    def noise_for_detail(self, label: str, t: float) -> float:
        """The W detail ``t`` means for this model (:func:`mgsr.model.detail.noise_for_detail`, its errors)."""
        return noise_for_detail(self.generator(label).card, t)

    def detail_for_noise(self, label: str, w: float) -> float | None:
        """The detail t that W means for this model; None for a model without a curve."""
        return detail_for_noise(self.generator(label).card, w) if self.has_curve(label) else None

    def detail_note(self, label: str) -> str:
        """What the page says beside the detail slider: the W it means, or why there is no detail scale."""
        if self.has_curve(label):
            return ""
        return (
            f"No detail scale for this model: its card has no perception-distortion curve, so use W "
            f"(Advanced); {MEASURE_HINT.replace('--model M', '--model RUN')}."
        )


#: uploads and results older than this are deleted (the page has long offered them for download by then)
KEEP_SECONDS = 3600


def remove_old_files(folder: Path, keep_seconds: float = KEEP_SECONDS) -> None:
    """Delete the sub-folders of ``folder`` not touched for ``keep_seconds``: a server runs for days."""
    cutoff = time.time() - keep_seconds
    for child in folder.iterdir() if folder.is_dir() else ():
        try:
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            continue


def request_folder(work: Path) -> Path:
    """A fresh folder for one request's outputs (old ones are swept away first)."""
    remove_old_files(work / "results")
    remove_old_files(work / "uploads")
    folder = work / "results" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


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


#: a file path in a message: at least two separators; only its last part is kept
_PATH = re.compile(r"""(?:[A-Za-z]:)?[\\/](?:[^\s'"\\/:]+[\\/])+([^\s'"\\/]*)""")


def public_message(text: str) -> str:
    """``text`` with every file path cut to its file name, for the page.

    The server's folders (Gradio's upload cache and its hash folders, mgsr's work
    folder) say nothing to the user and much to an attacker; the file name is what
    the user knows the file by.
    """
    return _PATH.sub(lambda m: m.group(1) or "(a folder)", text)


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


def crop_side(out_side: int, factor: float) -> int:
    """Input pixels along the preview crop's side, so its output is about ``out_side`` at this factor."""
    return max(8, round(out_side / factor))


def crop_box(size: tuple[int, int], centre: tuple[float, float] | None, side: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a ``side`` square around ``centre`` = (x, y), kept inside an image of (height, width)."""
    height, width = size
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    sy, sx = min(side, height), min(side, width)
    y0 = int(min(max(round(cy - sy / 2), 0), height - sy))
    x0 = int(min(max(round(cx - sx / 2), 0), width - sx))
    return y0, y0 + sy, x0, x0 + sx


def moved_centre(
    size: tuple[int, int], centre: tuple[float, float] | None, side: int, dx: int, dy: int
) -> tuple[float, float]:
    """The crop's centre = (x, y) moved by half its ``side`` per step (``dx``, ``dy`` in -1, 0, 1), for the
    keyboard; kept where the crop fits inside an image of (height, width), so a step back always moves it."""
    height, width = size
    cx, cy = centre if centre is not None else (width / 2, height / 2)
    half_x, half_y = min(side, width) / 2, min(side, height) / 2
    x = min(max(cx + dx * side / 2, half_x), width - half_x)
    y = min(max(cy + dy * side / 2, half_y), height - half_y)
    return float(x), float(y)


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


#: side of the crop chooser's picture: small inputs are enlarged (pixels kept sharp), big ones reduced
CHOOSER_SIDE = 384


def chooser_factor(size: tuple[int, int]) -> float:
    """How much the crop chooser enlarges (> 1) or reduces (< 1) an input of (height, width)."""
    longest = max(size)
    return float(max(1, CHOOSER_SIDE // longest)) if longest <= CHOOSER_SIDE else CHOOSER_SIDE / longest


def crop_outline(display: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The input with the preview crop drawn as a box, sized for the page's crop chooser.

    A click on it at (x, y) means the input pixel (x, y) / :func:`chooser_factor`.
    """
    factor = chooser_factor(display.shape[:2])
    h, w = display.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    resample = Image.Resampling.NEAREST if factor >= 1 else Image.Resampling.BILINEAR
    out = np.array(Image.fromarray(display).resize(size, resample))
    y0, y1, x0, x1 = (round(v * factor) for v in box)
    thick = 2
    colour = np.array([255, 64, 0], dtype=np.uint8)
    out[y0 : min(y0 + thick, y1), x0:x1] = colour
    out[max(y1 - thick, y0) : y1, x0:x1] = colour
    out[y0:y1, x0 : min(x0 + thick, x1)] = colour
    out[y0:y1, max(x1 - thick, x0) : x1] = colour
    return out
