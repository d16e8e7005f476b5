"""A model card: what a user should know about a set of weights (stored in every weights file's header).

Its JSON form has one home, :meth:`ModelCard.to_json` and :meth:`ModelCard.from_json`: the weights files'
writers and the loader both come here, so what is written is what is read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import attrs


@attrs.frozen
class PDCurve:
    """A model's measured perception-distortion curve: set RMSE and NIQE at increasing noise amplitudes W.

    Kept in the card because the knob is only as useful as what it is known to do: G-MGBP is trained at
    W = 0 and W = 1 only, so where between them the output actually changes is a measurement (R3 does all
    its moving below W = 0.04), and the ``detail`` scale is built on it.  ``images`` and ``protocol`` say
    what was measured so anyone can re-run ``command`` and compare.
    """

    noise: tuple[float, ...]
    rmse: tuple[float, ...]
    niqe: tuple[float, ...]
    #: the HR set, in words (what it is, where to get it), and its file names
    image_set: str
    images: tuple[str, ...]
    scale: int
    protocol: Mapping[str, Any] = attrs.field(factory=dict)
    #: the command that measured it
    command: str = ""

    def __attrs_post_init__(self) -> None:
        n = len(self.noise)
        if n < 2 or len(self.rmse) != n or len(self.niqe) != n:
            raise ValueError(
                f"a curve needs >= 2 points and as many RMSE and NIQE values as W values; got "
                f"{n} W, {len(self.rmse)} RMSE, {len(self.niqe)} NIQE"
            )
        if not all(math.isfinite(v) for v in (*self.noise, *self.rmse, *self.niqe)):
            raise ValueError("curve values must be finite")
        if self.noise[0] != 0 or any(b <= a for a, b in pairwise(self.noise)):
            raise ValueError(f"curve W values must start at 0 and increase strictly, got {list(self.noise)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "noise": list(self.noise),
            "rmse": list(self.rmse),
            "niqe": list(self.niqe),
            "image_set": self.image_set,
            "images": list(self.images),
            "scale": self.scale,
            "protocol": dict(self.protocol),
            "command": self.command,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PDCurve:
        """The inverse of :meth:`to_dict`; a malformed record raises ValueError / TypeError / KeyError."""
        return cls(
            noise=tuple(float(v) for v in data["noise"]),
            rmse=tuple(float(v) for v in data["rmse"]),
            niqe=tuple(float(v) for v in data["niqe"]),
            image_set=str(data["image_set"]),
            images=tuple(str(v) for v in data["images"]),
            scale=int(data["scale"]),
            protocol=dict(data.get("protocol", {})),
            command=str(data.get("command", "")),
        )


@attrs.frozen
class ModelCard:
    """What a user should know about a set of weights."""

    name: str
    default_noise: float
    source: str = ""
    license: str = ""
    #: measured by ``mgsr calibrate --curve``; None until someone has
    curve: PDCurve | None = None

    def to_dict(self) -> dict[str, Any]:
        """The header's JSON form; no ``curve`` key when there is none (older files stay byte-identical)."""
        data: dict[str, Any] = {
            "name": self.name,
            "default_noise": self.default_noise,
            "source": self.source,
            "license": self.license,
        }
        if self.curve is not None:
            data["curve"] = self.curve.to_dict()
        return data

    def to_json(self) -> str:
        """The header's text: :meth:`to_dict` with sorted keys, so equal cards are equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, name: str, default_noise: float) -> ModelCard:
        """The card in a header's text (the inverse of :meth:`to_json`); ``name`` and ``default_noise`` stand
        in for keys it lacks (an older or hand-made header: the file's stem, the ``[model]`` table's W).

        A malformed text or record raises ValueError (json's error is one) / TypeError / KeyError /
        AttributeError (not a JSON object), for the caller to name its file.
        """
        data = json.loads(text)
        return cls(
            name=str(data.get("name", name)),
            default_noise=float(data.get("default_noise", default_noise)),
            source=str(data.get("source", "")),
            license=str(data.get("license", "")),
            curve=None if data.get("curve") is None else PDCurve.from_dict(data["curve"]),
        )
