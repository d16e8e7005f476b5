"""mgsr: perception-distortion controllable super-resolution with G-MGBP.

Public API: :func:`build`, :func:`load_recipe`, :data:`hookimpl`,
:func:`list_components`, :func:`pretrained`, :func:`upscale` (images and arrays),
:func:`upscale_tensor` (tensors), :func:`noise_for_detail` / :func:`detail_for_noise` (the detail scale),
:class:`AdaptiveRule` (W per pixel from a calibration file).

Why the names are imported lazily (PEP 562): every plugin starts with ``from mgsr import hookimpl``, and a
plugin manager loads every plugin; importing the generator, inference and the image readers for that would
make each of them pay for the whole package.  A name is imported from its one home on first use (``HOMES``),
and ``dir(mgsr)`` and ``from mgsr import *`` still see all of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mgsr.torch_versions import require_torch

#: public name -> the module that defines it (the only place the face looks; tests/package/test_layout.py reads it)
HOMES: dict[str, str] = {
    "AdaptiveRule": "mgsr.inference.adaptive",
    "Built": "mgsr.assembly.build",
    "MgsrError": "mgsr.errors",
    "Recipe": "mgsr.recipe",
    "Registry": "mgsr.registry",
    "__version__": "mgsr.version",
    "build": "mgsr.assembly.build",
    "build_generator": "mgsr.assembly.build",
    "default_registry": "mgsr.registry",
    "detail_for_noise": "mgsr.model.detail",
    "hookimpl": "mgsr.hookspecs",
    "list_components": "mgsr.registry",
    "load_generator": "mgsr.assembly.loading",
    "load_recipe": "mgsr.recipe",
    "make_plugin_manager": "mgsr.registry",
    "noise_for_detail": "mgsr.model.detail",
    "pretrained": "mgsr.assembly.loading",
    "upscale": "mgsr.inference.pictures",
    "upscale_tensor": "mgsr.inference.core",
}

__all__ = sorted(HOMES)

require_torch()  # first: a torch older than pyproject's lower bound is refused in one line, not deep inside torch


def __getattr__(name: str) -> Any:
    """Import a public name from its home on first use, then keep it here (later lookups skip this)."""
    home = HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mgsr' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(HOMES))


if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports these on use
    from mgsr.assembly.build import Built as Built
    from mgsr.assembly.build import build as build
    from mgsr.assembly.build import build_generator as build_generator
    from mgsr.assembly.loading import load_generator as load_generator
    from mgsr.assembly.loading import pretrained as pretrained
    from mgsr.errors import MgsrError as MgsrError
    from mgsr.hookspecs import hookimpl as hookimpl
    from mgsr.inference.adaptive import AdaptiveRule as AdaptiveRule
    from mgsr.inference.core import upscale_tensor as upscale_tensor
    from mgsr.inference.pictures import upscale as upscale
    from mgsr.model.detail import detail_for_noise as detail_for_noise
    from mgsr.model.detail import noise_for_detail as noise_for_detail
    from mgsr.recipe import Recipe as Recipe
    from mgsr.recipe import load_recipe as load_recipe
    from mgsr.registry import Registry as Registry
    from mgsr.registry import default_registry as default_registry
    from mgsr.registry import list_components as list_components
    from mgsr.registry import make_plugin_manager as make_plugin_manager
    from mgsr.version import __version__ as __version__
