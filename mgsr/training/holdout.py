"""Held-out validation images: a few training images set aside when the recipe names no validation set.

Why: the paper's recipes leave ``data.val`` empty, so a run that collapses would show no number and no
sample grid.  A handful of images out of thousands costs the training nothing and gives every validation
something to score.  The choice depends only on the seed and the training list, and is written to
``RUN/holdout.json`` (the sources' absolute paths), which a resumed run reads back: it holds out the same
images even if the list has grown since, or moved from raw folders to a prepared store of the same files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgsr.errors import DataError
from mgsr.io.atomic import atomic_path
from mgsr.training.store import StoredImage

HOLDOUT_FILE = "holdout.json"
#: never hold out more than this share of the training images
MAX_SHARE = 0.1
#: the hold-out's own random stream under the recipe seed (the patch stream uses [seed, epoch])
_STREAM = 0x401D


def source_of(image: Path | StoredImage) -> str:
    """The image's identity across raw folders and prepared stores: its source file's absolute path."""
    return image.source if isinstance(image, StoredImage) else str(Path(image).resolve())


def holdout_count(wanted: int, available: int) -> int:
    """``wanted``, but at most 10 % of ``available`` and always leaving one image to train on."""
    return max(0, min(wanted, int(available * MAX_SHARE), available - 1))


def choose_holdout(images: Sequence[Path | StoredImage], wanted: int, seed: int) -> list[str]:
    """The sources of :func:`holdout_count` images drawn under ``seed``, in training-list order."""
    count = holdout_count(wanted, len(images))
    picks = np.random.default_rng([seed, _STREAM]).choice(len(images), size=count, replace=False)
    return [source_of(images[i]) for i in sorted(picks.tolist())]


def read_holdout(path: Path) -> list[str]:
    """The sources a run held out, from its ``holdout.json``."""
    try:
        sources = json.loads(path.read_text(encoding="utf-8"))["sources"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} cannot be read as a hold-out list ({exc}); restore it, or delete it to "
            f"choose the held-out images again"
        ) from None
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise DataError(f"{path}: 'sources' must be a list of paths; restore it, or delete it to choose again")
    return sources


def write_holdout(path: Path, sources: Sequence[str]) -> None:
    """Record the held-out sources (atomically: a resumed run must never read half a list)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"sources": list(sources)}, indent=1) + "\n", encoding="utf-8")


def split_holdout(
    images: Sequence[Path | StoredImage], sources: Sequence[str], recorded: Path
) -> tuple[list[Path | StoredImage], list[Path | StoredImage]]:
    """``(training, held_out)``: ``images`` without / with the given ``sources`` (read from ``recorded``)."""
    by_source = {source_of(image): image for image in images}
    missing = [s for s in sources if s not in by_source]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{recorded} holds out {missing[0]}{more}, "
            f"which the training data no longer lists; put it back, or delete {recorded} to hold out "
            f"other images (they were trained on before, so validation would flatter the model)"
        )
    held = set(sources)
    return ([image for image in images if source_of(image) not in held], [by_source[s] for s in sources])


def hold_out(
    images: Sequence[Path | StoredImage], wanted: int, seed: int, record: Path
) -> tuple[list[Path | StoredImage], list[Path | StoredImage]]:
    """``(training, held_out)``: ``wanted`` images (chosen under ``seed``, or the ones ``record`` lists, so a
    resumed run keeps them) leave the patch stream; ``wanted = 0`` holds out nothing."""
    if not wanted:
        return list(images), []
    sources = read_holdout(record) if record.is_file() else choose_holdout(images, wanted, seed)
    return split_holdout(images, sources, record)


def announce_holdout(record: Path, held_out: Sequence[Path | StoredImage], training: int) -> None:
    """Write ``record`` and say on stderr what validation runs on (or that ``training`` images are too few)."""
    if not held_out:
        print(
            f"mgsr: no validation: data.val is empty and {training} training images are too few to hold out "
            f"any (at most {MAX_SHARE:.0%}); set data.val to validate",
            file=sys.stderr,
        )
        return
    write_holdout(record, [source_of(image) for image in held_out])
    print(
        f"mgsr: validating on {len(held_out)} held-out training images (listed in {record}); "
        f"set data.val to choose your own",
        file=sys.stderr,
    )
