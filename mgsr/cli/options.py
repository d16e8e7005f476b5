"""Options several commands share, written once so their names, defaults and help never drift apart."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mgsr.errors import MgsrError
from mgsr.runtime.devices import AUTO

if TYPE_CHECKING:
    from mgsr.inference.adaptive import AdaptiveRule
    from mgsr.model.generator import GMGBP


def names_a_folder(output: str) -> bool:
    """Whether ``-o output`` means a folder whatever its suffix: an existing one, or a name ending in ``/``."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def refuse_folder_output(output: str | None, example: str) -> None:
    """A command that writes one file refuses a folder for ``-o`` (see :func:`names_a_folder`): the file used to
    be written under the folder's own name (``-o graphs/`` became a file ``graphs``)."""
    if output is not None and names_a_folder(output):
        raise MgsrError(f"-o {output} is a folder: give the file to write, e.g. -o {Path(output) / example}")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``: a value out of range is refused as the
    command line is read, before any model loads (not by the writer or the server after the work is done)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({low} to {high})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: choose {low} to {high}")
        return value

    return parse


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``, default ``auto``: every command that runs a network picks the card itself when there is one."""
    p.add_argument(
        "--device",
        default=AUTO,
        help="auto (default: CUDA if available, cuda:LOCAL_RANK under torchrun, else Apple MPS, else "
        "CPU), cpu, cuda, cuda:1, mps; the choice is printed once on stderr unless -q",
    )


def run_noise(
    model: GMGBP, noise: float | list[float] | AdaptiveRule | None, detail: float | None, *, announce: bool
) -> float | list[float] | AdaptiveRule:
    """The W ``upscale`` runs ``model`` at: ``--noise``, else :func:`mgsr.model.detail.implied_noise` (what
    ``--detail`` means, else the model's recorded W); the W of a ``--detail`` is said once on stderr, so the
    user learns the W scale too."""
    from mgsr.model.detail import implied_noise, refuse_noise_and_detail

    refuse_noise_and_detail(noise, detail, options=True)
    if noise is not None:
        return noise
    chosen = implied_noise(model, detail)
    if detail is not None and announce:
        name = model.card.name if model.card is not None else "this model"  # noise_for_detail needs a card
        print(f"mgsr: detail {detail:g} means W = {chosen:.6g} for {name}", file=sys.stderr)
    return chosen


def command_inputs(
    *, model: str | None = None, noise: str | None = None, folders: Iterable[str | None] = ()
) -> list[Path]:
    """The files a command reads that an ``-o`` could name: the model's weights file (a bundled name's and a
    run folder's too), a ``--noise`` calibration .json, and the images of ``--hr`` / ``--sr`` folders.

    What cannot be resolved is left out: the command reports it itself, with its own message, when it reads it.
    """
    from mgsr.io.files import image_files
    from mgsr.model.weights import resolve_weights_path

    found: list[Path] = []
    if model is not None:
        with contextlib.suppress(MgsrError):  # `bicubic`, or a model the loader will name as unknown
            found.append(resolve_weights_path(model))
    if noise is not None and noise.lower().endswith(".json"):
        found.append(Path(noise))
    for folder in folders:
        if folder is not None and Path(folder).is_dir():
            found.extend(image_files(Path(folder)))
    return found


def protected_inputs(args: argparse.Namespace) -> list[Path]:
    """What ``upscale`` (pictures and videos) reads besides its images, so that no output may be it: the
    ``--noise-map``, a ``--noise`` calibration file and the model's weights file."""
    found = command_inputs(model=args.model, noise=args.noise)
    return [Path(args.noise_map), *found] if args.noise_map else found


def refuse_writing_over_inputs(
    outputs: Iterable[str | Path | None],
    error: type[MgsrError] = MgsrError,
    *,
    model: str | None = None,
    noise: str | None = None,
    folders: Iterable[str | None] = (),
) -> None:
    """Stop a command before any work when one of its ``outputs`` is one of its inputs
    (:func:`mgsr.io.overwrite.refuse_overwriting`, the rule ``mgsr upscale`` has always applied): ``mgsr export M
    -o M`` used to replace the model with ONNX bytes and exit 0."""
    from mgsr.io.overwrite import refuse_overwriting

    inputs = command_inputs(model=model, noise=noise, folders=folders)
    refuse_overwriting([o for o in outputs if o is not None], inputs, error)


def check_calibration_model(noise: str | None, reference: str, generator: GMGBP | None = None) -> None:
    """When ``--noise`` is a calibration file, refuse it unless it was fitted for ``--model`` (README: "a
    calibration is model-specific"); ``bicubic`` has no W, so it is left to refuse ``--noise`` itself."""
    if noise is None or not noise.lower().endswith(".json") or reference == "bicubic":
        return
    from mgsr.evaluation.calibration_model import check_fitted_for

    check_fitted_for(noise, reference, generator)
