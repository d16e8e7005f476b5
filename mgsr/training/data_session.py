"""A stage's training data as one object: the recipe's folders found, prepared into stores, scanned, a few
images held out, and the stream of patches the loop draws.

Why an object of its own, given to the loop: the data is a session with its own state (which images, which
were skipped, which are held out and recorded as such) that the training loop only reads from (a length for
the schedule, batches from a position in the stream, the image list a checkpoint records), and that a dry run
does without.  The run builds it from the recipe (:meth:`DataSession.from_recipe`).

The recipe's folders are resolved here once (``samples:train`` / ``samples:val`` name the bundled sample
folders): :func:`data_folders` is the one place that reads the alias; preflight, the dry run and validation
take its result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import torch

from mgsr.errors import MgsrError, TrainingError
from mgsr.recipe import DataSpec, Recipe
from mgsr.runtime.distributed import SINGLE, Context, barrier
from mgsr.training.data import PatchDataset, patch_loader, resolve_folder, scan_images
from mgsr.training.holdout import announce_holdout, hold_out
from mgsr.training.image_list import image_list, warn_if_changed
from mgsr.training.prepared import training_sources
from mgsr.training.store import StoredImage


@attrs.frozen
class Folder:
    """One folder of ``data.train`` or ``data.val``: its name as the recipe writes it (messages name it so) and
    where it is; an unknown ``samples:`` alias keeps its error until the folder is used, so a check that
    reports problems folder by folder reports it as that folder's."""

    name: str
    where: str | None
    error: MgsrError | None = None

    def path(self) -> str:
        """The folder on this machine; the alias's error when the name is no bundled sample folder."""
        if self.error is not None:
            raise self.error
        assert self.where is not None, "a Folder without an error has a path"
        return self.where


def _folder(name: str) -> Folder:
    try:
        return Folder(name, resolve_folder(name))
    except MgsrError as exc:
        return Folder(name, None, exc)


@attrs.frozen
class DataFolders:
    """The recipe's training and validation folders, resolved."""

    train: tuple[Folder, ...]
    val: tuple[Folder, ...]

    def train_paths(self) -> list[str]:
        return [folder.path() for folder in self.train]

    def val_paths(self) -> list[str]:
        return [folder.path() for folder in self.val]


def data_folders(data: DataSpec) -> DataFolders:
    """``data.train`` and ``data.val`` with the ``samples:`` alias resolved (the only place that resolves it)."""
    return DataFolders(tuple(_folder(f) for f in data.train), tuple(_folder(f) for f in data.val))


class DataSession:
    """The patches to train on (a :class:`~mgsr.training.data.PatchDataset`), the images held out for
    validation and how many were skipped, from folders ``folders``; ``holdout_file`` records the held-out set."""

    def __init__(
        self,
        spec: DataSpec,
        folders: DataFolders,
        dataset: PatchDataset,
        held_out: Sequence[Path | StoredImage],
        *,
        skipped: int,
        holdout_file: Path,
    ) -> None:
        self.spec = spec
        self.folders = folders
        self.dataset = dataset
        self.held_out = held_out
        self.skipped = skipped  # by the scan, and the stores' unreadable images
        self.holdout_file = holdout_file

    @classmethod
    def from_recipe(
        cls, recipe: Recipe, holdout_file: Path, *, ctx: Context = SINGLE, progress: bool = True
    ) -> DataSession:
        """The recipe's training images: raw folders prepared into cached stores when the recipe resizes (rank 0
        prepares, the others then find them up to date), scanned, and the hold-out set aside (in
        ``holdout_file``'s record when one exists: a resumed run holds out the same images)."""
        data, spec = recipe.data, recipe.training
        if data.patch_size % (1 << max(spec.scales)):
            raise TrainingError(
                f"data.patch_size {data.patch_size} must be divisible by {1 << max(spec.scales)} "
                f"for scales {list(spec.scales)}"
            )
        folders = data_folders(data)
        train = folders.train_paths()
        if ctx.is_main:
            sources = training_sources(train, data.target_megapixels, progress=progress)
        barrier(ctx)
        if not ctx.is_main:
            sources = training_sources(train, data.target_megapixels, progress=False)
        report = scan_images(sources, data.patch_size, data.target_megapixels)
        holdout = 0 if data.val else data.holdout  # see mgsr.training.holdout.hold_out
        weights = recipe.model.weights  # from another run: its held-out images stay held out
        usable, held_out = hold_out(report.usable, holdout, spec.seed, holdout_file, weights)
        dataset = PatchDataset(usable, data.patch_size, data.target_megapixels, data.augment)
        skipped = len(report.skipped) + sources.skipped
        return cls(data, folders, dataset, held_out, skipped=skipped, holdout_file=holdout_file)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def images(self) -> list[Path | StoredImage]:
        """The images trained on (the held-out ones are not among them)."""
        return self.dataset.images

    def announce(self) -> None:
        """Record the held-out images in the run folder and say so (rank 0, when the run starts)."""
        if not self.spec.val and self.spec.holdout:
            announce_holdout(self.holdout_file, self.held_out, len(self))

    def record(self) -> dict[str, int]:
        """The first log record's account of the data."""
        return {"data/images": len(self), "data/skipped": self.skipped}

    def batches(
        self, batch_size: int, seed: int, start: int, *, rank: int = 0, world_size: int = 1, pin_memory: bool = False
    ) -> Iterator[torch.Tensor]:
        """Batches of ``batch_size`` patches continuing the global stream from sample ``start`` (this rank's)."""
        return patch_loader(
            self.dataset,
            batch_size,
            seed,
            start,
            self.spec.workers,
            rank=rank,
            world_size=world_size,
            pin_memory=pin_memory,
        )

    def image_list(self) -> str:
        """What a checkpoint records of the images (see :mod:`mgsr.training.image_list`)."""
        return image_list(self.images)

    def check_images(self, checkpoint: Path, recorded: object) -> None:
        """Warn when the images differ from those ``checkpoint`` recorded: its data position means other patches."""
        warn_if_changed(checkpoint, recorded, self.images)
