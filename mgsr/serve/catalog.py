"""The models one ``mgsr serve`` offers: the only place a label the page sends back becomes a model.

Its own module because the checked request (:mod:`.settings`), the upscaling jobs (:mod:`.jobs`) and the
page (:mod:`.layout`, :mod:`.wiring`) all ask it the same things: which models, on which device and
backend, and what detail t means in W for each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from mgsr.assembly.loading import resolve_model
from mgsr.errors import MgsrError
from mgsr.inference.core import choose_backend
from mgsr.model.detail import MEASURE_HINT, detail_for_noise, noise_for_detail
from mgsr.model.generator import GMGBP
from mgsr.model.weights import BUNDLED
from mgsr.runtime.devices import resolve_device


@attrs.frozen
class ModelChoice:
    label: str  # what the page shows and sends back
    ref: str  # what the model loader and the command line get: a bundled name or the path the operator gave
    default_noise: float


class Catalog:
    """The models this server offers: the bundled ones and the operator's ``--model`` ones, nothing else.

    The page sends a label back; a label that is not in the catalog is refused, so a
    client can never make the server load a file of its choosing.
    """

    def __init__(self, extra: Sequence[str] = (), device: str = "cpu") -> None:
        self.device = resolve_device(device)  # "auto" becomes the card or the CPU, once, at start-up
        # what `mgsr upscale` runs on this device, so the command shown under a result gives its bytes
        self.backend = choose_backend("auto", self.device)
        self.choices: dict[str, ModelChoice] = {}
        for name, (_, w) in BUNDLED.items():
            self.choices[name] = ModelChoice(name, name, w)
        for ref in extra:
            if ref in self.choices:
                continue
            generator = resolve_model(ref, self.device)  # fails now, at start-up, with the loader's message
            name = generator.card.name if generator.card is not None else Path(ref).stem
            label = ref if ref in BUNDLED else f"{name} ({Path(ref).name})"
            self.choices[label] = ModelChoice(label, ref, float(generator.default_noise))
        # the command line's default, or the operator's own model when one is given
        self.default = "pirm-r3" if not extra else self._label_of(extra[0])

    def _label_of(self, ref: str) -> str:
        return next(label for label, choice in self.choices.items() if choice.ref == ref)

    @property
    def labels(self) -> list[str]:
        return list(self.choices)

    def get(self, label: str) -> ModelChoice:
        try:
            return self.choices[label]
        except KeyError:
            raise MgsrError(
                f"model {label!r} is not offered by this server; choose one of {', '.join(self.choices)}"
            ) from None

    def generator(self, label: str) -> GMGBP:
        return resolve_model(self.get(label).ref, self.device)

    def has_curve(self, label: str) -> bool:
        """Whether the model's card carries a perception-distortion curve, so the detail scale works."""
        card = self.generator(label).card
        return card is not None and card.curve is not None

    def noise_for_detail(self, label: str, t: float) -> float:
        """The W detail ``t`` means for this model (:func:`mgsr.model.detail.noise_for_detail`, its errors)."""
        return noise_for_detail(self.generator(label).card, t)

    def detail_for_noise(self, label: str, w: float) -> float | None:
        """The detail t that W means for this model; None for a model without a curve."""
        return detail_for_noise(self.generator(label).card, w) if self.has_curve(label) else None

    def detail_note(self, label: str) -> str:
        """What the page says beside the detail slider: the W it means, or why there is no detail scale."""
        if self.has_curve(label):
            return ""
        return (
            f"No detail scale for this model: its card has no perception-distortion curve, so use W "
            f"(Advanced); {MEASURE_HINT.replace('--model M', '--model RUN')}."
        )
