"""W maps in ``mgsr serve``: painted, uploaded, or automatic (an adaptive calibration's), and calibration files.

A painted map reaches the result only through the 8-bit PNG the page offers for
download, read back as ``--noise-map`` reads it, so the printed command gives the
same bytes.  A global calibration file sets W; an adaptive one is the page's "Automatic map".

An adaptive calibration (``mgsr calibrate --adaptive``) holds a rule that computes a W
multiplier per pixel from the input and a W per 2x level.  The page shows the rule's
map of the uploaded image as an overlay the user can paint over.  Unpainted, the
result uses the float map itself (what ``mgsr upscale --noise calib.json`` computes),
so the printed command ``--noise calib.json`` gives the same bytes; painted over, the
map goes through the same 8-bit PNG as painting alone (``--noise-map``), with the
rule's W per level given as ``--noise W1,W2``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from PIL import Image

from mgsr.errors import MgsrError
from mgsr.evaluation.adaptive_fit import load_calibration
from mgsr.evaluation.calibration_model import check_fitted_for
from mgsr.inference.adaptive import AdaptiveRule
from mgsr.inference.core import levels_for
from mgsr.io.images import noise_map_of, read_picture
from mgsr.model.generator import GMGBP
from mgsr.serve.uploads import Limits, accept, clean_name

#: a calibration file is a few kB; anything much larger is not one
MAX_CALIBRATION_BYTES = 1 << 20
#: how much of the picture's grey shows through the automatic map in the editor: enough to see where to paint,
#: little enough that the map reads as the legend says (white = W, black = 0).  At 0.6 of the map over the
#: colour picture it read as a grey veil: a map value of 0 showed as the picture's own colours, dimmed.
PICTURE_SHOWING = 0.2


@attrs.frozen
class CalibrationFile:
    """A calibration file the page may use: its bytes (offered for download) and what it applies."""

    key: str  # the page names the file by this, never by a path
    name: str  # the file name the printed command gives (the user's own name for it)
    data: bytes
    noise: float | AdaptiveRule

    @property
    def rule(self) -> AdaptiveRule | None:
        return self.noise if isinstance(self.noise, AdaptiveRule) else None

    def check_model(self, reference: str, generator: GMGBP) -> None:
        """Refuse this file for the page's model ``reference`` (loaded as ``generator``) unless it was fitted for
        it, as ``mgsr upscale --noise calib.json`` refuses it for another ``--model``: a calibrated W is a point
        on one model's curve.  The error names the user's file, no path of the server's."""
        with tempfile.TemporaryDirectory(prefix="mgsr-calibration-") as folder:
            path = Path(folder) / self.name
            path.write_bytes(self.data)
            try:
                check_fitted_for(path, reference, generator)
            except MgsrError as exc:
                raise type(exc)(str(exc).replace(str(path), self.name)) from None

    def about(self) -> str:
        """One line for the page: what the file does, and for an adaptive rule the scale it was fitted at."""
        if self.rule is None:
            return f"{self.name}: a global calibration, W = {self.noise:.4g} (set as W)"
        levels = len(self.rule.levels)
        scale = 2**levels
        w = ", ".join(f"{v:.4g}" for v in self.rule.levels)
        return (
            f"{self.name}: an automatic map for {scale}x ({levels} level{'s' * (levels > 1)}, W per level {w}); "
            f"press **Automatic map** to see it and paint over it"
        )

    def check_levels(self, scale: int) -> AdaptiveRule:
        """The rule, checked against the scale as ``mgsr upscale --noise calib.json`` checks it."""
        rule = self.rule
        if rule is None:
            raise MgsrError(f"{self.name} is a global calibration (one W), not an automatic map")
        if len(rule.levels) != levels_for(scale):
            raise MgsrError(
                f"{self.name}: fitted for {len(rule.levels)} 2x levels ({2 ** len(rule.levels)}x), {scale}x has "
                f"{levels_for(scale)}; choose the scale it was fitted at or calibrate at this one"
            )
        return rule


def read_calibration(data: bytes, client_name: str) -> CalibrationFile:
    """Decode a calibration file's bytes with ``mgsr upscale``'s reader; errors name the user's file, no path."""
    name = f"{Path(clean_name(client_name, 'calibration.json')).stem}.json"  # the command reads .json as a file
    if len(data) > MAX_CALIBRATION_BYTES:
        raise MgsrError(
            f"{name!r} is {len(data) / 2**20:.1f} MB; a calibration file from mgsr calibrate is a few kB: "
            f"choose the .json that `mgsr calibrate` wrote"
        )
    with tempfile.TemporaryDirectory(prefix="mgsr-calibration-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            noise = load_calibration(path)
        except MgsrError as exc:
            raise type(exc)(str(exc).replace(str(path), name)) from None
    return CalibrationFile(key=hashlib.sha256(data).hexdigest()[:20], name=name, data=data, noise=noise)


def operator_calibration(path: str | os.PathLike[str]) -> CalibrationFile:
    """The calibration ``mgsr serve --noise FILE`` was started with; errors name the operator's path."""
    path = Path(path)
    if not path.is_file():
        raise MgsrError(f"--noise {path}: calibration file not found; give the .json that `mgsr calibrate` wrote")
    noise = load_calibration(path)
    data = path.read_bytes()
    return CalibrationFile(key=hashlib.sha256(data).hexdigest()[:20], name=path.name, data=data, noise=noise)


def map_grey(values: np.ndarray) -> np.ndarray:
    """The map as an 8-bit grey image: what painting starts from, and what ``--noise-map`` reads back."""
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def overlay(display: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The map for the editor, in grey as the legend says (white = W, black = 0), the picture's grey faintly
    through it (:data:`PICTURE_SHOWING`): a map value v shows between (1 - s) v and (1 - s) v + s of white."""
    luma = display.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    grey = np.clip(values, 0.0, 1.0) * 255.0 * (1 - PICTURE_SHOWING) + luma * PICTURE_SHOWING
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)


def with_strokes(background: np.ndarray, editor: dict | None) -> dict:
    """The editor's value for a new ``background`` (the picture, or the automatic map over it), keeping the
    strokes the user made: switching the map on or off used to drop them without a word."""
    layers = [np.asarray(layer) for layer in (editor or {}).get("layers") or [] if layer is not None]
    layers = [layer for layer in layers if layer.ndim == 3 and layer.shape[:2] == background.shape[:2]]
    composite = background[..., :3].astype(np.float32)
    for layer in layers:
        if layer.shape[2] == 4:
            alpha = layer[..., 3:4].astype(np.float32) / 255.0
            composite = composite * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    return {"background": background, "layers": layers, "composite": np.round(composite).astype(np.uint8)}


@attrs.frozen
class Mask:
    """A W multiplier per pixel, with the file that holds it for the command line.

    ``path`` is None for the automatic map left unpainted: the command line computes that
    map itself from the calibration file (``--noise calib.json``), in float, as here.
    """

    path: Path | None
    values: np.ndarray  # float32 (H, W) in [0, 1]


def painted_mask(
    layers: Sequence[np.ndarray] | None, size: tuple[int, int], base: np.ndarray | None = None
) -> np.ndarray | None:
    """Brush layers (RGBA) -> uint8 (H, W) grey; None when nothing is painted.

    Unpainted pixels keep ``base`` (uint8 (H, W): the automatic map), or are white (the full
    W) without one.  A painted pixel takes the grey of its paint whatever its opacity:
    white keeps W, black removes the noise, grey scales it, as in an ``--noise-map``
    image.  Later layers cover earlier ones.
    """
    height, width = size
    mask = np.full((height, width), 255, dtype=np.uint8) if base is None else base.copy()
    painted = False
    for layer in layers or ():
        array = None if layer is None else np.asarray(layer)
        if array is None or array.ndim != 3 or array.shape[2] != 4 or not array[..., 3].any():
            continue
        im = Image.fromarray(array.astype(np.uint8), mode="RGBA")
        if im.size != (width, height):
            im = im.resize((width, height), Image.Resampling.NEAREST)
        rgba = np.asarray(im)
        grey = np.asarray(Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB").convert("L"))
        covered = rgba[..., 3] > 0
        mask[covered] = grey[covered]
        painted = painted or bool(covered.any())
    return mask if painted else None


def save_painted(grey: np.ndarray, folder: Path, stem: str) -> Mask:
    """Write the painted mask as an 8-bit PNG and read it back the way ``--noise-map`` will."""
    path = folder / f"{stem}_mask.png"
    Image.fromarray(grey, mode="L").save(path)
    return Mask(path=path, values=noise_map_of(read_picture(path)))


def uploaded_mask(source: str, client_name: str, work: Path, folder: Path, stem: str, limits: Limits) -> Mask:
    """A mask file from the client, checked like an image, kept byte for byte for the command line."""
    copy, picture = accept(source, client_name, work, limits, what="mask")
    target = folder / f"{stem}_mask{copy.suffix}"
    target.write_bytes(copy.read_bytes())
    return Mask(path=target, values=noise_map_of(picture))
