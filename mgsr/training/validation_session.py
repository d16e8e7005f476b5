"""A stage's validation as one object: the images and how they are scored, the watch over the scores, the
sample grids, the end curve, and what the summary says it validated on.

Why an object of its own, given to the loop: the loop only says when (every ``validate_every`` steps, at the
start, at the end); what is scored, on which images, and what a checkpoint must keep of it (the grid limits,
the best knob so far) belong together here.  The run builds it on rank 0 from the recipe and the data session
(:meth:`ValidationSession.for_run`); the other ranks, and a trainer without data, get
:meth:`ValidationSession.none`.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from mgsr.errors import MgsrError
from mgsr.interfaces import Loss
from mgsr.model.card import PDCurve
from mgsr.model.generator import GMGBP
from mgsr.recipe import DataSpec, TrainingSpec
from mgsr.registry import Registry
from mgsr.training.data import scan_images, validation_set
from mgsr.training.schedule import validation_scale
from mgsr.training.store import StoredImage
from mgsr.training.validation import NOISE_LEVELS, Validator, write_sample_grid
from mgsr.training.validation_watch import ValidationWatch


def validator_for(
    data: DataSpec,
    spec: TrainingSpec,
    val_folders: Sequence[str],
    held_out: Sequence[Path | StoredImage],
    registry: Registry,
    trained_w: Collection[float] = (0.0, 1.0),
) -> Validator | None:
    """The run's validation: the images of ``val_folders`` (``data.val``, resolved), else the held-out training
    images, resized like the training images when the recipe resizes; None when there are neither.  A stage
    that trains no W above 0 (the pre-training) is scored at W = 0 only: its noise path is untrained, and its
    W = 1 outputs would cost half of each validation to say nothing."""
    scale = validation_scale(spec)
    if val_folders:
        found = scan_images(val_folders, min_side=scale, megapixels=data.target_megapixels)
        images = validation_set(found.usable, data.val_crop, data.target_megapixels)
    elif held_out:
        images = validation_set(held_out, data.val_crop, data.target_megapixels)
    else:
        return None
    levels = NOISE_LEVELS if any(w > 0 for w in trained_w) else (0.0,)
    return Validator(images, scale, registry, extra=spec.validate_metrics, noise_levels=levels)


def trained_noise(losses: Sequence[Loss]) -> set[float]:
    """The noise amplitudes some loss trains (the watch alarms only on those; the curve needs one above 0)."""
    return {w for loss in losses for w in loss.config.noise}


class ValidationSession:
    """Scores, watches, draws and measures on the validation images of ``watch`` (none: only the phase spread);
    ``held_out``: how many of them are held-out training images (0: ``data.val``'s, or none)."""

    def __init__(self, watch: ValidationWatch, held_out: int = 0) -> None:
        self.watch = watch
        self.held_out = held_out

    @classmethod
    def for_run(
        cls,
        data: DataSpec,
        spec: TrainingSpec,
        val_folders: Sequence[str],
        held_out: Sequence[Path | StoredImage],
        registry: Registry,
        trained_w: Collection[float],
    ) -> ValidationSession:
        """The run's validation (rank 0, scored as ``mgsr eval`` scores): ``val_folders``' images, else
        ``held_out``; the watch alarms on the amplitudes ``trained_w`` and chooses ``training.export``'s weights
        only after the discriminator's warm-up (see :class:`~mgsr.training.validation_watch.ValidationWatch`)."""
        validator = validator_for(data, spec, val_folders, held_out, registry, trained_w)
        watch = ValidationWatch(validator, spec.export, trained_w, frozen_until=spec.discriminator_warmup_steps)
        return cls(watch, len(held_out))

    @classmethod
    def none(cls) -> ValidationSession:
        """No images and no choice (the last step is exported): what the other ranks and a data-less trainer hold."""
        return cls(ValidationWatch(None, "last", ()))

    @property
    def validator(self) -> Validator | None:
        return self.watch.validator

    def start(self, generator: GMGBP, own_start: bool) -> dict[str, float]:
        """The period-2 limits, calibrated when a run starts (see :meth:`ValidationWatch.start`)."""
        return self.watch.start(generator, own_start)

    def validate(self, step: int, generator: GMGBP) -> dict[str, float]:
        """Scores of ``generator`` at ``step``, watched for a grid; the best knob kept."""
        return self.watch.validate(step, generator)

    def write_samples(self, generator: GMGBP, path: Path) -> Path | None:
        """The sample grid of ``generator`` at ``path`` (None: no validation images)."""
        if self.validator is None:
            return None
        return write_sample_grid(generator, self.validator.images, self.validator.scale, path)

    def exported(self, generator: GMGBP, step: int) -> str:
        """Load the weights ``training.export`` chose into ``generator``; which step they are."""
        return self.watch.exported(generator, step)

    def curve(self, generator: GMGBP, top: float, card: Path) -> PDCurve | None:
        """The perception-distortion curve of the exported ``card`` (``--detail`` reads it), when the stage trained
        a W > 0 (the pre-training's noise path is untrained); a failure to measure it (out of memory) gives
        none, with a warning."""
        if self.validator is None or not any(w > 0 for w in self.watch.trained_w):
            return None
        try:
            return self.validator.curve(generator, top)
        except (RuntimeError, MgsrError) as exc:
            warnings.warn(f"{card} has no perception-distortion curve: {exc}", stacklevel=3)
            return None

    def describe(self) -> str:
        """What the run validated on, for its summary."""
        if self.validator is None:
            return "nothing"
        if self.held_out:
            return f"{self.held_out} held-out training images at {self.validator.scale}x"
        return f"{len(self.validator.images)} data.val images at {self.validator.scale}x"

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the watch's limits and best knob so far."""
        return self.watch.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.watch.load_state_dict(state)
