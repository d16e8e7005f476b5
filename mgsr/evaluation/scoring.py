"""Scoring sets of images: finding and pairing files, running a protocol's metrics, tables and JSON.

Images are scored as uint8, exactly as saved outputs are.  Every problem names
the file it is about: a table computed over a silently smaller set would be
worse than no table.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mgsr.errors import EvaluationError
from mgsr.evaluation.protocol import MA_METRIC, PI_ABSENT_NOTE, PI_NAME, crop_to_multiple, perceptual_index
from mgsr.interfaces import Metric
from mgsr.io.atomic import atomic_path, atomic_text
from mgsr.io.files import image_files
from mgsr.io.images import IMAGE_SUFFIXES, read_rgb, to_uint8

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: ``mgsr upscale`` names its outputs ``<stem>_x<scale>.png``; such an output pairs with ``<stem>.*``.
_SCALE_SUFFIX = re.compile(r"_x\d+$")


def list_images(folder: str | os.PathLike[str], role: str) -> list[Path]:
    """The image files in ``folder``, sorted; ``role`` ("HR folder", "SR folder": words for `--hr` and `hr_dir`
    alike) names it in errors."""
    path = Path(folder)
    if not path.exists():
        raise EvaluationError(f"{role} {path}: no such folder")
    if not path.is_dir():
        raise EvaluationError(f"{role} {path}: not a folder")
    files = image_files(path)
    if not files:
        raise EvaluationError(f"{role} {path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return files


def read_uint8(path: Path) -> np.ndarray:
    """An image file as an ``(H, W, 3)`` uint8 array; an unreadable file raises ImageError naming it."""
    return to_uint8(read_rgb(path))


def _add_once(named: dict[str, Path], key: str, path: Path, role: str) -> None:
    if key in named:
        raise EvaluationError(f"{role}: {named[key]} and {path} are the same image; keep one of them")
    named[key] = path


def pair_outputs(sr_dir: str | os.PathLike[str], hr_dir: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """(name, output, reference) matched by file stem; every output needs a reference and vice versa.

    An output named ``<stem>_x<scale>`` (as ``mgsr upscale`` names them) pairs with ``<stem>`` unless a
    reference has its exact stem.
    """
    references: dict[str, Path] = {}
    for path in list_images(hr_dir, "HR folder"):
        _add_once(references, path.stem, path, "HR folder")
    outputs: dict[str, Path] = {}
    for path in list_images(sr_dir, "SR folder"):
        key = path.stem if path.stem in references else _SCALE_SUFFIX.sub("", path.stem)
        _add_once(outputs, key, path, "SR folder")
    problems = [f"{p}: no reference image of that name in {hr_dir}" for k, p in outputs.items() if k not in references]
    problems += [f"{p}: no output image of that name in {sr_dir}" for k, p in references.items() if k not in outputs]
    if problems:
        raise EvaluationError("cannot pair outputs with references:\n  " + "\n  ".join(problems))
    return [(references[k].name, outputs[k], references[k]) for k in sorted(outputs)]


def unpaired_images(sr_dir: str | os.PathLike[str]) -> Iterator[tuple[str, np.ndarray, None]]:
    """(name, output, None) for every image of ``sr_dir``: for no-reference scoring."""
    for path in list_images(sr_dir, "SR folder"):
        yield path.name, read_uint8(path), None


def paired_images(
    sr_dir: str | os.PathLike[str], hr_dir: str | os.PathLike[str], scale: int
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, output, reference) read one pair at a time; references are cropped to a multiple of ``scale``
    from the top-left, as the LR maker crops them, and must then have the output's size."""
    for name, sr_path, hr_path in pair_outputs(sr_dir, hr_dir):
        sr, hr = read_uint8(sr_path), read_uint8(hr_path)
        if min(hr.shape[:2]) >= scale:
            hr = crop_to_multiple(hr, scale)
        if sr.shape != hr.shape:
            raise EvaluationError(
                f"{sr_path} is {sr.shape[1]}x{sr.shape[0]} pixels but its reference {hr_path} is "
                f"{hr.shape[1]}x{hr.shape[0]} (after cropping to a multiple of the scale {scale})"
            )
        yield name, sr, hr


@attrs.frozen
class Evaluation:
    """Per-image and set scores of one set under one protocol."""

    protocol: Mapping[str, Any]
    #: metric names in column order (``pi`` last when computed)
    metrics: tuple[str, ...]
    higher_is_better: Mapping[str, bool]
    images: tuple[tuple[str, Mapping[str, float]], ...]
    aggregate: Mapping[str, float]
    notes: tuple[str, ...] = ()

    def to_dict(self, **context: Any) -> dict[str, Any]:
        """A JSON-ready record: protocol, what was scored (``context``), per image, set, notes."""
        return {
            "protocol": dict(self.protocol),
            **context,
            "metrics": {m: {"higher_is_better": self.higher_is_better[m]} for m in self.metrics},
            "images": [{"image": name, **{m: _finite(v) for m, v in s.items()}} for name, s in self.images],
            "aggregate": {m: _finite(v) for m, v in self.aggregate.items()},
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A plain-text table: one row per image, then the set."""
        label = f"set ({len(self.images)} images)"
        width = max(len(label), *(len(name) for name, _ in self.images))
        header = f"{'image':<{width}}" + "".join(f"{m:>11}" for m in self.metrics)
        rows = [f"{name:<{width}}" + "".join(f"{s[m]:>11.4f}" for m in self.metrics) for name, s in self.images]
        total = f"{label:<{width}}" + "".join(f"{self.aggregate[m]:>11.4f}" for m in self.metrics)
        lower = [m for m in self.metrics if not self.higher_is_better[m]]
        higher = [m for m in self.metrics if self.higher_is_better[m]]
        legend = "; ".join(
            part
            for part in (
                f"lower is better: {', '.join(lower)}" if lower else "",
                f"higher is better: {', '.join(higher)}" if higher else "",
            )
            if part
        )
        lines = [f"protocol {self.protocol['name']} ({legend})", header, "-" * len(header), *rows, "-" * len(header)]
        return "\n".join([*lines, total, *(f"note: {n}" for n in self.notes)])


def _finite(value: float) -> float | None:
    """JSON has no infinity (PSNR of identical images): write null."""
    return value if math.isfinite(value) else None


def score_set(
    items: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
    metrics: list[Metric],
    protocol: Mapping[str, Any],
) -> Evaluation:
    """Score ``(name, output, reference-or-None)`` uint8 images with ``metrics``, per image and for the set."""
    names = tuple(m.name for m in metrics)
    images: list[tuple[str, dict[str, float]]] = []
    for name, output, reference in items:
        scores = {}
        for metric in metrics:
            try:
                scores[metric.name] = float(metric.score(output, reference if metric.needs_reference else None))
            except ValueError as exc:
                raise EvaluationError(f"{name}: cannot compute {metric.name}: {exc}") from exc
        images.append((name, scores))
    if not images:
        raise EvaluationError("no images to score")
    aggregate = {m.name: float(m.aggregate([s[m.name] for _, s in images])) for m in metrics}
    higher = {m.name: m.higher_is_better for m in metrics}
    notes = []
    if not any(m.needs_reference for m in metrics):
        notes.append("no reference images: only no-reference metrics are reported")
    if {MA_METRIC, "niqe"} <= set(names):
        for _, s in images:
            s[PI_NAME] = perceptual_index(s[MA_METRIC], s["niqe"])
        aggregate[PI_NAME] = perceptual_index(aggregate[MA_METRIC], aggregate["niqe"])
        higher[PI_NAME] = False
        names += (PI_NAME,)
    else:
        notes.append(PI_ABSENT_NOTE)
    return Evaluation(protocol, names, higher, tuple(images), aggregate, tuple(notes))


def write_json(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (:mod:`mgsr.io.atomic`), with an error naming the file
    when that fails."""
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"  # a record JSON cannot hold fails before any file
    try:
        with atomic_text(path) as fh:
            fh.write(text)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int, title: str, software: str) -> None:
    """Write a matplotlib figure, atomically, with its title and the command that drew it in the file's
    metadata; an error naming the file when that fails (the sweep's and the curve's plots).

    The format is the target's suffix (``.png``), as matplotlib would pick it: the temporary name has another.
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata={"Title": title, "Software": software})
    except OSError as exc:
        raise cannot_write(path, exc) from None


def cannot_write(path: str | os.PathLike[str], exc: OSError) -> EvaluationError:
    """The error for a result file that could not be written: the file and the system's reason."""
    return EvaluationError(f"{path}: cannot write ({exc.strerror or exc})")
