"""Held-out validation images: a few training images set aside when the recipe names no validation set.

Why: the paper's recipes leave ``data.val`` empty, so a run that collapses would show no number and no
sample grid.  A handful of images out of thousands costs the training nothing and gives every validation
something to score.  The choice depends only on the seed and the training list, and is written to
``RUN/holdout.json`` (the sources' absolute paths and content hashes), which a resumed run reads back: it
holds out the same images even if the list has grown since, or moved from raw folders to a prepared store of
the same files.

A picture is known by its content (the first 16 hex of its source file's SHA-256, see
:mod:`mgsr.training.image_list`), not its path: the same picture under two paths is held out as one.  A run
that starts from another run's weights (``model.weights`` = that run's folder or a stage folder of it, as the
README's R1/R2 start from R3's pre-training) validates on the images that run held out, found by content,
because its own choice would likely fall on images the weights were trained on.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from mgsr.errors import DataError
from mgsr.io.atomic import atomic_path
from mgsr.model.weights import BUNDLED
from mgsr.training.image_list import source_digest
from mgsr.training.store import StoredImage

HOLDOUT_FILE = "holdout.json"
#: never hold out more than this share of the training images
MAX_SHARE = 0.1
#: the hold-out's own random stream under the recipe seed (the patch stream uses [seed, epoch])
_STREAM = 0x401D


def holdout_count(wanted: int, available: int) -> int:
    """``wanted``, but at most 10 % of ``available`` and always leaving one image to train on."""
    return max(0, min(wanted, int(available * MAX_SHARE), available - 1))


#: one held-out picture as recorded: its source's absolute path and content digest (None: unknown)
Entry = tuple[str, str | None]
Image = Path | StoredImage


@attrs.frozen
class Record:
    """What a ``holdout.json`` says.

    ``entries``: the held-out pictures.  ``origin``: the run folder they were held out by, when this run took
    its set from the run its weights come from.  ``missing``: pictures that run held out which this run's data
    lacked; they never join the training, should they be added later (the weights never saw them either).
    """

    entries: tuple[Entry, ...]
    origin: str | None = None
    missing: tuple[Entry, ...] = ()


class HeldOut(list[Image]):
    """The held-out images (one per picture, in record order) and where their choice came from.

    Why a list: validation and the summary take the held-out images as a list; the origin matters only to the
    record and the announcement, which rank 0 makes when the run starts (:func:`announce_holdout`).
    ``reused``: the set is ``origin``'s; ``origin`` without ``reused``: none of its pictures were in the data.
    """

    def __init__(
        self,
        images: Iterable[Image] = (),
        origin: str | None = None,
        missing: Sequence[Entry] = (),
        reused: bool = False,
    ) -> None:
        super().__init__(images)
        self.origin = origin
        self.missing = tuple(missing)
        self.reused = reused


def _choose(entries: Sequence[Entry], wanted: int, seed: int) -> list[Entry]:
    """:func:`holdout_count` pictures (a content under two paths is one) drawn under ``seed``, in list order."""
    pictures: dict[str, Entry] = {}
    for path, digest in entries:
        pictures.setdefault(digest or f"path:{path}", (path, digest))
    firsts = list(pictures.values())
    count = holdout_count(wanted, len(firsts))
    picks = np.random.default_rng([seed, _STREAM]).choice(len(firsts), size=count, replace=False)
    return [firsts[i] for i in sorted(picks.tolist())]


def choose_holdout(images: Sequence[Image], wanted: int, seed: int) -> list[str]:
    """The sources of :func:`holdout_count` images drawn under ``seed``, in training-list order."""
    return [path for path, _ in _choose([source_digest(image) for image in images], wanted, seed)]


def _entries(value: object, digests: object, where: str) -> tuple[Entry, ...]:
    """Paths and their digests (None for a record written before mgsr recorded them) as entries."""
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise DataError(f"{where} must be a list of paths; restore it, or delete it to choose again")
    if digests is None:
        return tuple((path, None) for path in value)
    if (
        not isinstance(digests, list)
        or len(digests) != len(value)
        or not all(d is None or isinstance(d, str) for d in digests)
    ):
        raise DataError(f"{where}: each path needs one digest (or null); restore it, or delete it to choose again")
    return tuple(zip(value, digests, strict=True))


def read_holdout(path: Path) -> Record:
    """The pictures a run held out, from its ``holdout.json`` (one without hashes reads with unknown digests:
    they are then taken from the files, where still readable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sources, digests, origin = data["sources"], data.get("hashes"), data.get("from")
        missing = data.get("missing", [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{path} cannot be read as a hold-out list ({exc}); restore it, or delete it to "
            f"choose the held-out images again"
        ) from None
    entries = _entries(sources, digests, f"{path}: 'sources'")
    if not isinstance(missing, list) or not all(isinstance(m, list) and len(m) == 2 for m in missing):
        raise DataError(f"{path}: 'missing' must list [path, hash] pairs; restore it, or delete it to choose again")
    if origin is not None and not isinstance(origin, str):
        raise DataError(f"{path}: 'from' must be a run folder; restore it, or delete it to choose again")
    gone = _entries([m[0] for m in missing], [m[1] for m in missing], f"{path}: 'missing'")
    return Record(entries, origin, gone)


def write_holdout(path: Path, record: Record) -> None:
    """Record the held-out pictures (atomically: a resumed run must never read half a list)."""
    data: dict[str, object] = {"sources": [p for p, _ in record.entries], "hashes": [d for _, d in record.entries]}
    if record.origin is not None:
        data["from"] = record.origin
    if record.missing:
        data["missing"] = [list(entry) for entry in record.missing]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _finder(entries: Sequence[Entry]) -> Callable[[Entry], list[int]]:
    """Which of the images (their ``entries``) a recorded entry names: those of its content, or of its path
    where either digest is unknown."""
    by_digest: defaultdict[str, list[int]] = defaultdict(list)
    by_path: defaultdict[str, list[int]] = defaultdict(list)
    for i, (path, digest) in enumerate(entries):
        by_path[path].append(i)
        if digest is not None:
            by_digest[digest].append(i)

    def find(entry: Entry) -> list[int]:
        path, digest = entry
        if digest is None:  # an old record: the content of the file it names, when still readable
            digest = source_digest(Path(path))[1]
        if digest is None:
            return list(by_path.get(path, ()))
        return by_digest.get(digest, []) + [i for i in by_path.get(path, ()) if entries[i][1] is None]

    return find


def _split(
    images: Sequence[Image], entries: Sequence[Entry], held: Iterable[Entry], kept_out: Iterable[Entry] = ()
) -> tuple[list[Image], list[Image], list[Entry]]:
    """``(training, held_out, not_found)``: one image per picture of ``held`` found (in ``held`` order);
    the training is the images that are neither ``held`` nor ``kept_out`` (under any path)."""
    find = _finder(entries)
    out: set[int] = set()
    chosen: list[int] = []
    not_found: list[Entry] = []
    for entry in held:
        found = find(entry)
        if not found:
            not_found.append(entry)
        elif not out.intersection(found):
            chosen.append(found[0])
        out.update(found)
    for entry in kept_out:
        out.update(find(entry))
    return [im for i, im in enumerate(images) if i not in out], [images[i] for i in chosen], not_found


def source_record(weights: str | None, record: Path) -> Path | None:
    """The ``holdout.json`` of the run ``weights`` come from: in the weights' folder (a file's own folder) or
    the one above it (a stage folder's run).  None for bundled weights, weights outside a run, or this run's
    own pre-training (whose record is ``record``)."""
    if weights is None or weights in BUNDLED:
        return None
    path = Path(weights)
    folder = path if path.is_dir() else path.parent if path.is_file() else None
    if folder is None:
        return None
    for candidate in (folder / HOLDOUT_FILE, folder.parent / HOLDOUT_FILE):
        if candidate.is_file():
            return None if candidate.resolve() == record.resolve() else candidate
    return None


def _resumed(images: Sequence[Image], entries: Sequence[Entry], record: Path) -> tuple[list[Image], HeldOut]:
    """The split this run's own ``record`` lists (a resume): every recorded picture must still be there."""
    own = read_holdout(record)
    training, held, not_found = _split(images, entries, own.entries, own.missing)
    if not_found:
        more = f" (and {len(not_found) - 1} more)" if len(not_found) > 1 else ""
        raise DataError(
            f"{record} holds out {not_found[0][0]}{more}, "
            f"which the training data no longer lists; put it back, or delete {record} to hold out "
            f"other images (they were trained on before, so validation would flatter the model)"
        )
    return training, HeldOut(held, own.origin, own.missing, reused=own.origin is not None)


def hold_out(
    images: Sequence[Image], wanted: int, seed: int, record: Path, weights: str | None = None
) -> tuple[list[Image], HeldOut]:
    """``(training, held_out)``: the held-out images leave the patch stream (under every path they have);
    ``wanted = 0`` holds out nothing.

    Which: the ones ``record`` lists (a resumed run keeps them); else, when the run starts from ``weights`` of
    another run that held images out, those (by content: that run's weights never trained on them); else
    ``wanted`` pictures chosen under ``seed``.
    """
    if not wanted:
        return list(images), HeldOut()
    entries = [source_digest(image) for image in images]
    if record.is_file():
        return _resumed(images, entries, record)
    kept_out: list[Entry] = []
    source = source_record(weights, record)
    if source is not None:
        theirs = read_holdout(source)
        training, held, kept_out = _split(images, entries, (*theirs.entries, *theirs.missing))
        if held and not training:
            raise DataError(
                f"{source} holds out all {len(images)} training images of this run; add training images, "
                f"or set data.val (and data.holdout = 0)"
            )
        if held:
            return training, HeldOut(held, str(source.parent), kept_out, reused=True)
    training, held, _ = _split(images, entries, _choose(entries, wanted, seed), kept_out)
    return training, HeldOut(held, None if source is None else str(source.parent), kept_out)


def announce_holdout(record: Path, held_out: Sequence[Image], training: int) -> None:
    """Write ``record`` and say on stderr what validation runs on (or that ``training`` images are too few)."""
    if not held_out:
        print(
            f"mgsr: no validation: data.val is empty and {training} training images are too few to hold out "
            f"any (at most {MAX_SHARE:.0%}); set data.val to validate",
            file=sys.stderr,
        )
        return
    found = held_out if isinstance(held_out, HeldOut) else HeldOut(held_out)
    origin = str(Path(found.origin).resolve()) if found.reused and found.origin else None
    write_holdout(record, Record(tuple(source_digest(image) for image in held_out), origin, found.missing))
    print(f"mgsr: {_validating_on(record, found)}", file=sys.stderr)


def _validating_on(record: Path, held_out: HeldOut) -> str:
    """The announcement's line: the held-out images, whose choice they are, what of theirs is missing."""
    source = held_out.origin or "the run these weights come from"
    count = len(held_out)
    if held_out.reused:
        said = f"validating on the {count} images {source} held out (by content; listed in {record})"
    elif held_out.origin:
        said = (
            f"none of the images {source} held out are in this run's data: validating on {count} held-out "
            f"training images chosen here (listed in {record}), which {source} may have trained on; "
            f"set data.val to choose your own"
        )
    else:
        said = f"validating on {count} held-out training images (listed in {record}); set data.val to choose your own"
    if held_out.missing and (held_out.reused or not held_out.origin):
        said += (
            f"; {len(held_out.missing)} image(s) {source} held out are not in this run's data "
            f"(they stay out of training if added)"
        )
    return said
