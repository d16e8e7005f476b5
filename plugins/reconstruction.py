"""``l1`` and ``cycle``: the pixel terms of the objective (eq. 11 and eq. 12-13).

Both are mean absolute differences (the ``‖·‖₁`` of the paper taken as a mean
over pixels and the batch, so the weights of eq. 7 do not depend on the patch
size), summed over the levels ``k = 1..L``.

* ``l1`` (multi-scale reconstruction, as MSLapSR): ``Σ_k mean|Y^k - X^k|``, by
  default on the W = 0 outputs so it never sees the noise (section 5).
* ``cycle``: ``Σ_k Σ_{f=1..k} mean|S_down^f(Y^k) - S_down^f(X^k)|`` on W = 0
  and W = 1 (eq. 12 and 13): every output must downscale to what its target
  downscales to, down to the input resolution.  ``S_down^f`` is one MATLAB
  bicubic antialiased resize by ``2^f`` (:func:`mgsr.ops.imresize.s_down`), the
  operator that makes the low-resolution data.
"""

from __future__ import annotations

import attrs
import torch

from mgsr import hookimpl
from mgsr.interfaces import Discriminator, Images, Loss, LossConfig, noise_field
from mgsr.ops.imresize import s_down


class L1Loss(Loss):
    """Multi-scale L1 reconstruction (eq. 11); by default on the W = 0 outputs."""

    name = "l1"

    @attrs.frozen
    class Config(LossConfig):
        pass

    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        return torch.stack([(y - x).abs().mean() for y, x in zip(outputs, targets, strict=True)]).sum()


class CycleLoss(Loss):
    """Downscaling consistency (eq. 12-13); by default on both W = 0 and W = 1."""

    name = "cycle"

    @attrs.frozen
    class Config(LossConfig):
        noise: tuple[float, ...] = noise_field((0.0, 1.0))

    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        return torch.stack(
            [
                (s_down(y, 2**f) - s_down(x, 2**f)).abs().mean()
                for k, (y, x) in enumerate(zip(outputs, targets, strict=True), start=1)
                for f in range(1, k + 1)
            ]
        ).sum()


@hookimpl
def mgsr_losses() -> list[type]:
    return [L1Loss, CycleLoss]
