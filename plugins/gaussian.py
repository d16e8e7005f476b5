"""``gaussian``: i.i.d. normal noise, the innovation input of G-MGBP."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from mgsr import hookimpl
from mgsr.interfaces import NoiseSource


class GaussianNoise(NoiseSource):
    """Draws ``std * N(0, 1)``.

    Pass a ``torch.Generator`` to ``sample`` for reproducible draws; without one,
    ``seed`` (when set) seeds a generator owned by this source, otherwise the
    global torch RNG is used.  Explicit draws bypass the source entirely: give
    them to the generator as ``noise=[z0, z1, ...]``.
    """

    name = "gaussian"

    @attrs.frozen
    class Config:
        std: float = 1.0
        seed: int | None = None

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._own: dict[str, torch.Generator] = {}

    def _generator_for(self, device: torch.device) -> torch.Generator | None:
        if self.config.seed is None:
            return None
        key = str(device)
        if key not in self._own:
            self._own[key] = torch.Generator(device=device).manual_seed(self.config.seed)
        return self._own[key]

    def sample(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        device = torch.device(device) if device is not None else torch.device("cpu")
        rng = generator if generator is not None else self._generator_for(device)
        z = torch.randn(tuple(shape), generator=rng, device=device, dtype=dtype)
        return z * self.config.std if self.config.std != 1.0 else z


@hookimpl
def mgsr_noise_sources() -> list[type]:
    return [GaussianNoise]
