"""Which model a calibration file was fitted for, and the refusal to apply it to another.

Why refuse rather than warn: a calibrated W is a point on one model's perception-distortion curve, and the
curves differ by orders of magnitude.  ``pirm-r3`` does its whole walk between W = 0 and W = 0.04 while
``pirm-r1`` runs to 0.0632, so an R1 calibration applied to R3 is R3's most detail, far past the RMSE budget
it was fitted to, and nothing in the output says so.  The fix is cheap and known (calibrate the model in
use), so the error names it.

How a model is identified: by its weights (:func:`mgsr.model.weights.weights_fingerprint`), not by the name
or path it was given as: ``runs/X`` and ``runs/X/generator.safetensors`` are one model, and a run folder
whose generator was trained further is another one, whose curve moved.  Files written before the print was
recorded (they name the model only) are checked by loading the model they name; where that model cannot be
loaded any more, a warning says the file could not be checked.
"""

from __future__ import annotations

import json
import os
import shlex
import warnings
from pathlib import Path
from typing import Any

from mgsr.assembly.loading import load_generator
from mgsr.errors import MgsrError
from mgsr.model.generator import GMGBP
from mgsr.model.weights import weights_fingerprint

#: the key of a calibration record holding the fitted model's weights print (beside ``model``, its name)
WEIGHTS_KEY = "model_sha256"


def fitted_model(reference: str, generator: GMGBP | None = None) -> dict[str, str]:
    """The fields a calibration record carries about its model: ``model`` as given, and its weights' print."""
    generator = load_generator(reference) if generator is None else generator
    return {"model": reference, WEIGHTS_KEY: weights_fingerprint(generator.state_dict())}


def check_fitted_for(path: str | os.PathLike[str], reference: str, generator: GMGBP | None = None) -> None:
    """Raise :class:`MgsrError` when the calibration file ``path`` was fitted for another model than
    ``reference`` (loaded as ``generator``, or here when not given); a record naming no model passes."""
    record = _record(path)
    if record is None or ("model" not in record and WEIGHTS_KEY not in record):
        return  # written by hand: nothing says which model, so nothing to hold it to
    fitted_for = str(record.get("model", "an unnamed model"))
    expected = record.get(WEIGHTS_KEY)
    if expected is None:  # written before the weights were recorded
        if fitted_for == reference:
            return
        expected = _print_of(fitted_for)
        if expected is None:
            warnings.warn(
                f"{path}: fitted for the model '{fitted_for}', which cannot be loaded to compare with "
                f"--model {reference}; if they differ its W means something else here: {_fix(record, reference)}",
                stacklevel=2,
            )
            return
    generator = load_generator(reference) if generator is None else generator
    if weights_fingerprint(generator.state_dict()) != expected:
        raise MgsrError(
            f"{path} was fitted for the model '{fitted_for}', not for --model {reference} (other weights): a "
            f"calibrated W is a point on one model's curve (pirm-r3 does its whole perception-distortion walk "
            f"between W = 0 and about 0.04) and means something else on another. Use --model {fitted_for}, or "
            f"calibrate this model: {_fix(record, reference)}"
        )


def _record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The decoded file, or None where it is no JSON object (the loader names that problem itself)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _print_of(reference: str) -> str | None:
    """The weights print of the model ``reference`` names, or None when it cannot be loaded (gone, moved)."""
    try:
        return weights_fingerprint(load_generator(reference).state_dict())
    except MgsrError:
        return None


def _fix(record: dict[str, Any], reference: str) -> str:
    """The command that fits the same kind of calibration, on the same images and budget, to ``reference``."""
    words = ["mgsr", "calibrate", "--model", reference, "--hr", str(record.get("hr", "HR_FOLDER"))]
    budget = record.get("max_rmse")
    words += ["--max-rmse", f"{budget:g}" if isinstance(budget, (int, float)) else "BUDGET"]
    if record.get("kind") == "adaptive":
        words.append("--adaptive")
    if "scale" in record:
        words += ["--scale", str(record["scale"])]
    return shlex.join([*words, "-o", f"calib_{Path(reference).stem or 'model'}.json"])
