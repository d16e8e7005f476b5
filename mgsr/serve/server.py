"""The state every request of ``mgsr serve`` shares: the offered models, the limits, the work folder, and the
last preview (a repeated identical request is answered at once)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from mgsr.errors import MgsrError
from mgsr.serve import handling
from mgsr.serve.handling import Catalog, Mask, Settings
from mgsr.serve.uploads import Limits, Upload, open_upload


class Server:
    """The state shared by all requests: offered models, limits, the folder for uploads and results."""

    def __init__(self, catalog: Catalog, limits: Limits, work: Path, preview_side: int) -> None:
        self.catalog, self.limits, self.work, self.preview_side = catalog, limits, work, preview_side
        self._open = functools.lru_cache(maxsize=4)(self._open_uncached)
        self._last_preview: tuple[tuple[str, str, Any], tuple[Any, Any]] | None = None

    def _open_uncached(self, path: str, stamp: tuple[int, int]) -> Upload:
        return open_upload(path, Path(path).name, self.work / "uploads", self.limits)

    def upload(self, path: str | None) -> Upload:
        if not path:
            raise MgsrError("upload an image first")
        info = os.stat(path)
        return self._open(str(path), (info.st_mtime_ns, info.st_size))

    def settings(
        self,
        model: str,
        scale: Any,
        outscale: Any,
        by: str,
        t: float,
        w: float,
        per_level_on: bool,
        w1: float,
        w2: float,
        w3: float,
        seed: Any,
    ) -> Settings:
        return handling.page_settings(
            self.catalog, model, scale, outscale, by, t, w, [w1, w2, w3] if per_level_on else None, seed
        )

    def mask(self, upload: Upload, editor: dict | None, mask_path: str | None, folder: Path) -> Mask | None:
        """An uploaded mask file wins over painting; no paint and no file means no mask."""
        stem = Path(upload.name).stem
        if mask_path:
            return handling.uploaded_mask(
                mask_path, Path(mask_path).name, self.work / "uploads", folder, stem, self.limits
            )
        layers = (editor or {}).get("layers") or []
        grey = handling.painted_mask(layers, upload.picture.size)
        return None if grey is None else handling.save_painted(grey, folder, stem)

    def refresh_preview(
        self, upload: Upload, settings: Settings, mask: Mask | None, centre: tuple[float, float] | None
    ) -> tuple[tuple[Any, Any], str]:
        """The preview for these settings, and the line naming them that the page shows under it.

        Every knob of the page reaches the preview through here, as ``settings`` and ``mask``:
        a new knob is a new field of them.
        """
        made_with = handling.describe(settings, mask)
        key = (str(upload.path), made_with, centre)  # the mask's digest is in its description
        if self._last_preview is None or self._last_preview[0] != key:  # a repeated request costs nothing
            images = handling.preview(self.catalog, upload, settings, mask, centre, self.preview_side)
            self._last_preview = (key, images)
        return self._last_preview[1], f"Preview made with: {made_with}"
