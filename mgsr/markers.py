"""The marker plugins decorate their hook implementations with."""

from __future__ import annotations

import pluggy

from .hookspecs import PROJECT_NAME


class HookimplMarker(pluggy.HookimplMarker):
    """Marks a function as an mgsr hook implementation: ``from mgsr import hookimpl``.

    Example::

        @hookimpl
        def mgsr_filter_blocks():
            return [MyBlock]
    """


hookimpl = HookimplMarker(PROJECT_NAME)
