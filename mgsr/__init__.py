"""mgsr: perception-distortion controllable super-resolution with G-MGBP.

Public API: :func:`build`, :func:`load_recipe`, :data:`hookimpl`,
:func:`list_components`, :func:`pretrained`, :func:`upscale` (images and arrays),
:func:`upscale_tensor` (tensors), :func:`noise_for_detail` / :func:`detail_for_noise` (the detail scale),
:class:`AdaptiveRule` (W per pixel from a calibration file).
"""

from __future__ import annotations

from mgsr.torch_versions import require_torch

require_torch()  # first: a torch older than pyproject's lower bound is refused in one line, not deep inside torch

from mgsr.build import Built, build, build_generator  # noqa: E402
from mgsr.errors import MgsrError  # noqa: E402
from mgsr.hookspecs import hookimpl  # noqa: E402
from mgsr.inference.adaptive import AdaptiveRule  # noqa: E402
from mgsr.inference.core import upscale_tensor  # noqa: E402
from mgsr.inference.pictures import upscale  # noqa: E402
from mgsr.model.detail import detail_for_noise, noise_for_detail  # noqa: E402
from mgsr.model.loading import load_generator, pretrained  # noqa: E402
from mgsr.recipe import Recipe, load_recipe  # noqa: E402
from mgsr.registry import Registry, default_registry, list_components, make_plugin_manager  # noqa: E402
from mgsr.version import __version__  # noqa: E402

__all__ = [
    "AdaptiveRule",
    "Built",
    "MgsrError",
    "Recipe",
    "Registry",
    "__version__",
    "build",
    "build_generator",
    "default_registry",
    "detail_for_noise",
    "hookimpl",
    "list_components",
    "load_generator",
    "load_recipe",
    "make_plugin_manager",
    "noise_for_detail",
    "pretrained",
    "upscale",
    "upscale_tensor",
]
