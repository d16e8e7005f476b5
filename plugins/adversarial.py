"""``gan``: the adversarial term, eq. 8 for the generator and eq. 9 for the discriminator.

Written on logits with ``softplus`` (``-log σ(l) = softplus(-l)``,
``-log(1 - σ(l)) = softplus(l)``), which stays finite where ``log(D)`` would
underflow.  Signs: the paper writes eq. 8 as ``E[log D(Y)]`` inside a
minimised total and eq. 9 as the quantity D maximises; this follows the
standard (Goodfellow et al.) reading, so both players minimise:

* generator (non-saturating): ``E[softplus(-D(Y_W))]`` = ``-E[log D(Y_W)]``;
* discriminator: ``E[softplus(-D(X))] + E[softplus(D(Y_W))]`` = minus eq. 9.

``D`` scores all L levels at once (``D^L`` of the multi-scale discriminator).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import torch
import torch.nn.functional as F

from mgsr import hookimpl
from mgsr.interfaces import AdversarialLoss, Discriminator, Images, LossConfig, check_levels, noise_field


def _require(discriminator: Discriminator | None) -> Discriminator:
    if discriminator is None:
        raise ValueError("the gan loss needs the discriminator: call it as loss(outputs, targets, discriminator=D)")
    return discriminator


class GanLoss(AdversarialLoss):
    """Standard GAN objective on the discriminator's logits; by default it reads the W = 1 outputs."""

    name = "gan"

    @attrs.frozen
    class Config(LossConfig):
        noise: tuple[float, ...] = noise_field((1.0,))

    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        return F.softplus(-_require(discriminator)(outputs)).mean()

    def discriminator_loss(
        self, outputs: Mapping[float, Images], targets: Images, *, discriminator: Discriminator
    ) -> torch.Tensor:
        check_levels(outputs, targets, self.config.noise)
        discriminator = _require(discriminator)
        # One forward over real and fake together: DistributedDataParallel expects one forward per backward.
        n, k = targets[0].shape[0], len(self.config.noise)
        batch = [
            torch.cat([x, *(outputs[w][level].detach() for w in self.config.noise)]) for level, x in enumerate(targets)
        ]
        logits = discriminator(batch)
        real = F.softplus(-logits[:n]).mean()
        fake = sum(F.softplus(logits[n * (i + 1) : n * (i + 2)]).mean() for i in range(k))
        return k * real + fake


@hookimpl
def mgsr_losses() -> list[type]:
    return [GanLoss]
