"""The state every request of ``mgsr serve`` shares (the offered models, the limits, the work folder, the
calibration files, the last preview) and what the page's handlers do with it, without Gradio: the tests call
these methods with the values the page sends (:class:`mgsr.serve.settings.Knobs`).

A request's knobs become its image, checked settings and W map here; the jobs themselves are
:mod:`.jobs`'s, the state of each page :mod:`.sessions`'s.
"""

from __future__ import annotations

import collections
import functools
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mgsr.errors import MgsrError
from mgsr.inference.adaptive import adaptive_map
from mgsr.serve import jobs, maps
from mgsr.serve.catalog import Catalog
from mgsr.serve.jobs import Result
from mgsr.serve.maps import CalibrationFile, Mask
from mgsr.serve.sessions import Sessions
from mgsr.serve.settings import BY_W, Knobs, Settings, model_start, page_settings
from mgsr.serve.uploads import Limits, Upload, open_upload

#: uploaded calibration files kept (a few kB each); the oldest is forgotten first
KEEP_CALIBRATIONS = 32


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


class Server:
    """The state shared by all requests: offered models, limits, the folder for uploads and results."""

    def __init__(
        self, catalog: Catalog, limits: Limits, work: Path, preview_side: int, calibration: CalibrationFile | None
    ) -> None:
        self.catalog, self.limits, self.work, self.preview_side = catalog, limits, work, preview_side
        #: the operator's ``--noise`` file, loaded for every page
        self.calibration = calibration
        self._calibrations: collections.OrderedDict[str, CalibrationFile] = collections.OrderedDict()
        if calibration is not None:  # --noise FILE sets the default model's W: it must be that model's
            self.check_calibration(calibration, catalog.default)
            self._calibrations[calibration.key] = calibration
        self._open = functools.lru_cache(maxsize=4)(self._open_uncached)
        self._maps = functools.lru_cache(maxsize=4)(self._map_uncached)
        self._last_preview: tuple[tuple[str, str, str, Any], tuple[Any, Any]] | None = None
        #: what is kept of each open page
        self.sessions = Sessions()

    def start(self) -> dict[str, Any]:
        """The page's first knobs: the default model's (:func:`mgsr.serve.settings.model_start`), or the W of the
        operator's global calibration file, set as W."""
        start = model_start(self.catalog, self.catalog.default)
        if self.calibration is not None and self.calibration.rule is None:
            w = float(self.calibration.noise)  # type: ignore[arg-type]
            t = self.catalog.detail_for_noise(self.catalog.default, w)
            start = {"w": w, "t": start["t"] if t is None else round(t, 3), "by": BY_W}
        return start

    def _open_uncached(self, path: str, stamp: tuple[int, int]) -> Upload:
        return open_upload(path, Path(path).name, self.work / "uploads", self.limits)

    def upload(self, path: str | None) -> Upload:
        if not path:
            raise MgsrError("upload an image first")
        info = os.stat(path)
        return self._open(str(path), (info.st_mtime_ns, info.st_size))

    def add_calibration(self, path: str) -> CalibrationFile:
        """A calibration file the user uploaded (``path`` is the web framework's copy), kept by its key."""
        found = maps.read_calibration(Path(path).read_bytes(), Path(path).name)
        self._calibrations[found.key] = found
        self._calibrations.move_to_end(found.key)
        while len(self._calibrations) > KEEP_CALIBRATIONS:
            oldest = next(iter(self._calibrations))
            if self.calibration is not None and oldest == self.calibration.key:
                self._calibrations.move_to_end(oldest)  # the operator's stays
            else:
                del self._calibrations[oldest]
        return found

    def check_calibration(self, found: CalibrationFile, label: str) -> None:
        """``found`` refused for the model ``label`` unless it was fitted for it (see
        :meth:`mgsr.serve.maps.CalibrationFile.check_model`)."""
        found.check_model(self.catalog.get(label).ref, self.catalog.generator(label))

    def automatic(self, key: str | None) -> CalibrationFile | None:
        """The calibration of the automatic map the page has on (None when off); only files loaded here."""
        if not key:
            return None
        found = self._calibrations.get(key)
        if found is None or found.rule is None:
            raise MgsrError("the automatic map's calibration file is not loaded on this server: load it again")
        return found

    def _map_uncached(self, path: str, stamp: tuple[int, int], key: str) -> np.ndarray:
        found = self.automatic(key)
        assert found is not None and found.rule is not None
        return adaptive_map(found.rule, self.upload(path).picture.rgb())

    def automatic_map(self, upload: Upload, key: str) -> np.ndarray:
        """The float map of the calibration ``key`` for this image, as ``mgsr upscale --noise calib.json`` makes it."""
        info = os.stat(upload.path)
        return self._maps(str(upload.path), (info.st_mtime_ns, info.st_size), key)

    def request(self, knobs: Knobs, folder: Path) -> tuple[Upload, Settings, Mask | None]:
        """The image, the checked settings and the W map of one request; a painted map is written to ``folder``.

        An uploaded mask file wins over painting; painting covers the automatic map where it is on;
        nothing painted and no file is no map, or the automatic map itself.
        """
        upload = self.upload(knobs.path)
        automatic = self.automatic(knobs.automatic)
        if automatic is not None:  # the model may have changed since the file was loaded
            self.check_calibration(automatic, knobs.model)
        levels = [knobs.w1, knobs.w2, knobs.w3] if knobs.per_level_on else None
        settings = page_settings(
            self.catalog, knobs.model, knobs.scale, knobs.outscale, knobs.by, knobs.detail, knobs.w, levels,
            knobs.seed, automatic,
        )  # fmt: skip
        stem = Path(upload.name).stem
        if knobs.mask_path:
            found = maps.uploaded_mask(
                knobs.mask_path, Path(knobs.mask_path).name, self.work / "uploads", folder, stem, self.limits
            )
            return upload, settings, found
        values = None if automatic is None else self.automatic_map(upload, automatic.key)
        base = None if values is None else maps.map_grey(values)
        grey = maps.painted_mask((knobs.editor or {}).get("layers") or [], upload.picture.size, base)
        if grey is not None:
            return upload, settings, maps.save_painted(grey, folder, stem)
        return upload, settings, None if values is None else Mask(path=None, values=values)

    def preview(self, knobs: Knobs, centre: tuple[float, float] | None) -> tuple[tuple[Any, Any], str]:
        """The preview for these knobs, and the line naming them that the page shows under it.

        Every knob of the page reaches the preview through here, as ``settings`` and ``mask``:
        a new knob is a new field of them.  A repeated identical request is answered at once.
        """
        upload, settings, mask = self.request(knobs, request_folder(self.work))
        made_with = jobs.describe(settings, mask)
        # the settings themselves, not only their line: the line rounds W to 4 digits; the mask's digest is in it
        key = (str(upload.path), repr(settings), made_with, centre)
        if self._last_preview is None or self._last_preview[0] != key:
            images = jobs.preview(self.catalog, upload, settings, mask, centre, self.preview_side)
            self._last_preview = (key, images)
        return self._last_preview[1], f"Preview made with: {made_with}"

    def result(self, knobs: Knobs, on_tile: Callable[[int, int], None] | None = None) -> Result:
        """The whole image, written as ``mgsr upscale`` writes it, with the command that gives its bytes."""
        folder = request_folder(self.work)
        upload, settings, mask = self.request(knobs, folder)
        automatic = self.automatic(knobs.automatic)
        return jobs.upscale_full(self.catalog, upload, settings, mask, folder, on_tile, automatic)

    def overlay(self, path: str | None, key: str) -> np.ndarray:
        """The editor's picture with the automatic map over it (white = W, black = 0)."""
        upload = self.upload(path)
        found = self.automatic(key)
        if found is None:
            return upload.display
        return maps.overlay(upload.display, self.automatic_map(upload, found.key))
