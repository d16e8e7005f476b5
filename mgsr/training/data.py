"""Training data: HR image folders -> random patches, deterministic under a seed and exact across resume.

Every sample is named by a key ``(image index, sample seed)``.  The sampler
derives the keys from the recipe seed, the epoch and the position in the
epoch only, so the stream of patches does not depend on the number of worker
processes, and a resumed run continues it from ``step * batch_size``.  The
multi-scale references X^k and the low-resolution inputs are made on the batch
with the MATLAB-faithful S_down (see :func:`scale_pyramid`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mgsr.errors import DataError, MgsrError
from mgsr.io.images import IMAGE_SUFFIXES
from mgsr.ops.imresize import s_down
from mgsr.samples import sample_folder
from mgsr.training.store import StoredImage, is_store, open_store
from mgsr.training.training_images import image_folders, load_rgb_uint8, target_size


@attrs.frozen
class ScanReport:
    """What a folder scan found: usable images and the ones skipped, with reasons."""

    usable: tuple[Path | StoredImage, ...]
    skipped: tuple[tuple[Path, str], ...]


def scan_images(folders: Sequence[str | Path], min_side: int, megapixels: float | None = None) -> ScanReport:
    """Find images in ``folders`` (recursively), skipping unreadable ones and ones smaller than ``min_side``.

    A folder may also be a store made by ``mgsr data prepare`` (see
    :mod:`mgsr.training.store`); it must have been prepared with the same
    ``megapixels``.  Only headers (or the store's manifest) are read here; a
    store is held (``open_store(..., hold=True)``) until this process ends, so
    a rebuild of it meanwhile keeps the arrays this scan lists.
    Raises DataError when nothing usable remains.
    """
    stores = [Path(f) for f in folders if is_store(f)]
    files = image_folders([f for f in folders if Path(f) not in stores])
    usable: list[Path | StoredImage] = []
    skipped: list[tuple[Path, str]] = []
    for folder in stores:
        store = open_store(folder, hold=True)
        if store.target_megapixels != megapixels:
            store.release()
            raise DataError(
                f"store {folder} was prepared with target_megapixels = {store.target_megapixels}, "
                f"the recipe asks for {megapixels}; set data.target_megapixels to match or run "
                f"`mgsr data prepare ... --target-megapixels {megapixels}` into another folder"
            )
        for image in store.images:
            if min(image.height, image.width) < min_side:
                skipped.append(
                    (
                        Path(image.source),
                        f"{image.width}x{image.height} (prepared) is smaller than the {min_side}-pixel patch",
                    )
                )
            else:
                usable.append(image)
    if not files and not stores:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, folders))}")
    for path in files:
        try:
            with Image.open(path) as im:
                width, height = im.size
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            skipped.append((path, f"unreadable ({type(exc).__name__}: {exc})"))
            continue
        h, w = target_size(height, width, megapixels)
        if min(h, w) < min_side:
            skipped.append((path, f"{w}x{h} after resizing is smaller than the {min_side}-pixel patch"))
            continue
        usable.append(path)
    for path, reason in skipped:
        warnings.warn(f"skipping {path}: {reason}", stacklevel=2)
    if not usable:
        total = len(files) + sum(len(open_store(f).images) for f in stores)
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise DataError(
            f"none of the {total} images in {', '.join(map(str, folders))} is usable ({len(skipped)} skipped{first})"
        )
    return ScanReport(tuple(usable), tuple(skipped))


def random_patch(image: np.ndarray, size: int, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random place, with a random flip / 90-degree rotation when ``augment``."""
    h, w = image.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    patch = image[y : y + size, x : x + size]
    if augment:
        patch = np.rot90(patch, k=int(rng.integers(0, 4)))
        if rng.integers(0, 2):
            patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)


class PatchDataset(torch.utils.data.Dataset):
    """Maps a key ``(image index, sample seed)`` to a (3, P, P) float patch in [0, 1].

    ``images`` are image files (decoded and resized on use) or prepared
    :class:`~mgsr.training.store.StoredImage` arrays (memory-mapped, already resized).
    """

    def __init__(
        self, images: Sequence[Path | StoredImage], patch_size: int, megapixels: float | None, augment: bool
    ) -> None:
        self.images = list(images)
        self.patch_size = patch_size
        self.megapixels = megapixels
        self.augment = augment
        self.failed: set[int] = set()  # indices that failed to decode (per process)

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, index: int) -> np.ndarray:
        image = self.images[index]
        if isinstance(image, StoredImage):
            return image.array()  # a memory map: nothing to cache
        return self._decoded(image)

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one cache per worker process is what we want
    def _decoded(self, path: Path) -> np.ndarray:
        return load_rgb_uint8(path, self.megapixels)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        """The patch for ``key``; an image file that fails to decode (the scan read only its header) is skipped
        with a warning, and the next image stands in, so the stream stays deterministic.  A prepared array
        that cannot be read is an error: the scan held its store, so it was removed outside mgsr, and no
        image silently stands in for it."""
        index, seed = key
        for offset in range(len(self.images)):
            candidate = (index + offset) % len(self.images)
            try:
                image = self._image(candidate)
            except MgsrError as exc:
                if isinstance(self.images[candidate], StoredImage):
                    raise
                if candidate not in self.failed:
                    self.failed.add(candidate)
                    warnings.warn(f"skipping training image: {exc}", stacklevel=2)
                continue
            patch = random_patch(image, self.patch_size, np.random.default_rng(seed), self.augment)
            return torch.from_numpy(patch).permute(2, 0, 1).float().div_(255)
        raise DataError(f"none of the {len(self.images)} training images can be decoded")


class ResumableSampler(torch.utils.data.Sampler):
    """An endless stream of keys: epoch e is a permutation seeded by (seed, e); starts at ``start`` samples.

    ``rank``/``world_size`` take every world_size-th key so data-parallel ranks
    see disjoint parts of the same global stream.
    """

    def __init__(self, length: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.length = length
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def key(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.length)
        seed = int(np.random.default_rng([self.seed, epoch, offset, 1]).integers(2**62))
        return int(self._order(epoch)[offset]), seed

    @functools.lru_cache(maxsize=2)  # noqa: B019 - one epoch's permutation, not one per sample
    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.length)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start + self.rank
        while True:
            yield self.key(position)
            position += self.world_size

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62


def patch_loader(
    dataset: PatchDataset,
    batch_size: int,
    seed: int,
    start: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> Iterator[torch.Tensor]:
    """Batches of patches continuing the global stream from sample ``start``.

    ``pin_memory`` (for CUDA) puts the batches in page-locked memory, so the
    trainer's ``non_blocking`` copy to the GPU overlaps the previous step.
    """
    sampler = ResumableSampler(len(dataset), seed, start=start, rank=rank, world_size=world_size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
    )
    return iter(loader)


def scale_pyramid(hr: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Eq. 5-6: the LR input and the references X^1..X^L of an HR batch X^L = ``hr``.

    X^k = S_down^(2^(L-k))(X^L); the LR input is S_down^(2^L)(X^L).  ``hr``'s
    side must be divisible by 2^L.
    """
    side = hr.shape[-1]
    if hr.shape[-2] % (1 << levels) or side % (1 << levels):
        raise DataError(
            f"patch size {tuple(hr.shape[-2:])} is not divisible by {1 << levels} (needed for {levels} levels)"
        )
    targets = [s_down(hr, 1 << (levels - k)) if k < levels else hr for k in range(1, levels + 1)]
    return s_down(hr, 1 << levels), targets


def validation_set(
    images: Sequence[Path | StoredImage], crop: int | None, megapixels: float | None
) -> list[tuple[str, np.ndarray]]:
    """Validation images as (name, (H, W, 3) uint8): resized to ``megapixels`` as the training images are
    (by the training stream's decoder, so a held-out image has the pixels it would have had in the store), or
    as read from their files when the recipe does not resize; their centre ``crop`` x ``crop`` part when
    ``crop`` is set.  ``images`` are files or prepared arrays: a folder's from :func:`scan_images`, or the
    training images held out.  The scorer crops them to a multiple of the scale
    (:func:`mgsr.training.validation.validation_images`)."""
    from mgsr.evaluation.scoring import read_uint8  # the reader of `mgsr eval`, for the same pixels

    prepared = []
    for image in images:
        if isinstance(image, StoredImage):  # prepared with the recipe's megapixels (scan_images checks)
            rgb, name = np.array(image.array()), Path(image.source).stem  # in memory: a small set
        else:
            rgb, name = (read_uint8(image) if megapixels is None else load_rgb_uint8(image, megapixels)), image.stem
        h, w = rgb.shape[:2]
        th, tw = min(h, crop or h), min(w, crop or w)
        y, x = (h - th) // 2, (w - tw) // 2
        prepared.append((name, rgb[y : y + th, x : x + tw]))
    return prepared


def resolve_folder(folder: str) -> str:
    """``samples:train`` / ``samples:val`` -> the bundled sample folders; anything else unchanged."""
    if folder.startswith("samples:"):
        return str(sample_folder(folder.split(":", 1)[1]))
    return folder
