"""A model card: what a user should know about a set of weights (stored in every weights file's header)."""

from __future__ import annotations

import attrs


@attrs.frozen
class ModelCard:
    """What a user should know about a set of weights."""

    name: str
    default_noise: float
    source: str = ""
    license: str = ""
