"""mgsr's weights files among ComfyUI's upscale models: the node's model list, and G-MGBP for the core loader.

ComfyUI's core "Load Upscale Model" reads a file into a state dict and hands it to spandrel, so an
architecture sees the tensors only: :mod:`mgsr.integrations.spandrel` recognises the bundled PIRM-SR weights by their
bytes and runs any other G-MGBP file at the recipe defaults (W = 1, mu = 2), because the file's header (its
``[model]`` table and card) never reaches it.  Inside ComfyUI the file is one of a known folder's, so
:class:`FolderArchitecture` looks for the mgsr file in ``models/upscale_models/`` that holds exactly these
tensors and loads that file instead: a model trained with mgsr runs in the core nodes as it was built, at its
card's W.

ComfyUI's own ``folder_paths`` is passed in as functions (:class:`UpscaleModels`), so this module does not
import ComfyUI and is tested on a plain folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import spandrel
import torch
from safetensors import SafetensorError, safe_open

from mgsr.assembly.loading import load_generator
from mgsr.errors import WeightsError
from mgsr.integrations.spandrel import ARCH_ID, GMGBPArchitecture
from mgsr.model.generator import GMGBP
from mgsr.model.weights import BUNDLED, MODEL_KEY, read_weights

log = logging.getLogger("mgsr.integrations.comfyui")

#: (size, mtime_ns) of a file -> whether its header is mgsr's; a folder is listed at every page refresh
_HEADER_CACHE: dict[Path, tuple[tuple[int, int], bool]] = {}


def is_mgsr_file(path: Path) -> bool:
    """Whether ``path`` is a ``.safetensors`` file written by mgsr (its header holds the ``[model]`` table).

    Only the header is read, and the answer is kept until the file changes.
    """
    try:
        stat = path.stat()
    except OSError:
        return False
    stamp = (stat.st_size, stat.st_mtime_ns)
    cached = _HEADER_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with safe_open(str(path), "pt") as handle:
            found = MODEL_KEY in (handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        found = False  # not a safetensors file (a .pth upscaler, a broken download): not ours to list
    _HEADER_CACHE[path] = (stamp, found)
    return found


class UpscaleModels:
    """ComfyUI's ``upscale_models`` folders, seen through two functions of its ``folder_paths`` module.

    :param list_names: the names ComfyUI lists (``folder_paths.get_filename_list("upscale_models")``)
    :param full_path: a listed name -> its file (``folder_paths.get_full_path("upscale_models", name)``)
    """

    def __init__(self, list_names: Callable[[], Iterable[str]], full_path: Callable[[str], str | None]) -> None:
        self.list_names, self.full_path = list_names, full_path

    @classmethod
    def in_folder(cls, folder: Path) -> UpscaleModels:
        """The files of one plain folder (tests, and scripts outside ComfyUI)."""
        return cls(
            lambda: sorted(p.name for p in folder.iterdir() if p.is_file()),
            lambda name: str(folder / name) if (folder / name).is_file() else None,
        )

    def mgsr_files(self) -> dict[str, Path]:
        """Listed name -> file, for the ``.safetensors`` files mgsr wrote (others are not G-MGBP weights)."""
        found = {}
        for name in self.list_names():
            if not name.lower().endswith(".safetensors"):
                continue
            path = self.full_path(name)
            if path is not None and is_mgsr_file(Path(path)):
                found[name] = Path(path)
        return found

    def choices(self) -> list[str]:
        """The node's model list: the bundled names first, then mgsr's files in the folders."""
        return [*BUNDLED, *sorted(self.mgsr_files())]

    def resolve(self, choice: str) -> str | Path:
        """A choice of :meth:`choices` -> what :func:`mgsr.assembly.loading.resolve_model` takes."""
        if choice in BUNDLED:
            return choice
        path = self.mgsr_files().get(choice)
        if path is None:
            raise WeightsError(
                f"model '{choice}' is neither a bundled model ({', '.join(BUNDLED)}) nor an mgsr .safetensors "
                "file in ComfyUI's models/upscale_models/ any more: refresh the page (R) and pick one again"
            )
        return path

    def holding(self, state: Mapping[str, torch.Tensor]) -> Path | None:
        """The mgsr file in the folders whose tensors are exactly ``state``'s, if there is one."""
        for path in self.mgsr_files().values():
            tensors, _ = read_weights(path)
            if tensors.keys() == state.keys() and all(_same(tensors[k], state[k]) for k in tensors):
                return path
        return None


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal names aside, equal tensors: dtype, shape and every value (on the CPU)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b.detach().to("cpu"))


class FolderArchitecture(GMGBPArchitecture):
    """G-MGBP for spandrel that loads the mgsr file a state dict came from, when it is in the folders."""

    def __init__(self, models: UpscaleModels, scale: int = 4) -> None:
        super().__init__(scale=scale)
        self.models = models

    def load(self, state_dict: Mapping[str, torch.Tensor]) -> spandrel.ImageModelDescriptor[GMGBP]:
        path = self.models.holding(state_dict)
        if path is None:  # not one of the folder's mgsr files: the tensors alone, as mgsr.integrations.spandrel does
            return super().load(state_dict)
        generator = load_generator(path)
        name = generator.card.name if generator.card is not None else path.stem
        return self.describe(generator, generator.default_noise, name)


def install(models: UpscaleModels, registry: spandrel.ArchRegistry | None = None) -> bool:
    """Add G-MGBP (4x, each file's own W) to spandrel's registry, once; ``True`` when this call added it.

    Another G-MGBP already there (an older two-line custom node calling ``mgsr.integrations.spandrel.install()``) is
    kept, with a log line: it still loads mgsr's files, at the recipe defaults for trained ones.
    """
    registry = spandrel.MAIN_REGISTRY if registry is None else registry
    existing = registry.get(ARCH_ID)
    if existing is None:
        registry.add(spandrel.ArchSupport.from_architecture(FolderArchitecture(models)))
        return True
    if not isinstance(existing.architecture, FolderArchitecture):
        log.warning(
            "mgsr: G-MGBP was already registered with spandrel by another custom node; trained mgsr files in "
            "upscale_models load at the recipe's W, not their card's: remove that node (comfyui-mgsr does its work)"
        )
    return False
