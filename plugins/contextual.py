"""``contextual``: the contextual loss of Mechrez, Talmi and Zelnik-Manor (2018), eq. 10 of the paper.

It compares the *distributions* of deep features, not their positions: each
output feature vector ``x_i`` is matched to its most similar target vector, so
a texture with the right statistics scores well wherever its details fall.
For one image, with ``y_j`` the target's features:

1. centre both sets on the target's mean feature (over the batch, height and width, as the reference
   implementation does; ``centre = "image"`` takes each image's own mean); cosine distance ``d_ij``;
2. relative distance ``d̃_ij = d_ij / (min_k d_ik + ε)``;
3. affinity ``CX_ij = softmax_j((1 - d̃_ij) / h)`` (exp-normalised over the targets);
4. ``CX(X, Y) = mean_j max_i CX_ij``, in (0, 1]; 1 when every target is matched.

The term is ``Σ_k mean over the batch of -log CX(Φ(Y^k), Φ(X^k))``; Φ is a
feature-extractor component, VGG-19 relu3_4 by default: the paper's "conv3-4" is,
in the reference CX code it builds on, that convolution's output after its ReLU.
Under data parallelism "the batch" is each process's part of it.
Memory grows with the square of the feature positions (a (H/4·W/4)² matrix
per image at relu3_4: 1024² for a 128x128 patch).
"""

from __future__ import annotations

import attrs
import torch

from mgsr import hookimpl
from mgsr.interfaces import Discriminator, FeatureExtractorSpec, Images, Loss, LossConfig, PartBuilder, noise_field
from mgsr.ops.contextual import CENTRES, contextual_similarity


class ContextualLoss(Loss):
    """``-log CX`` over a feature extractor's features, summed over levels (eq. 10); reads W = 1 by default."""

    name = "contextual"

    @attrs.frozen
    class Config(LossConfig):
        noise: tuple[float, ...] = noise_field((1.0,))
        features: FeatureExtractorSpec = FeatureExtractorSpec("vgg19")
        bandwidth: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
        eps: float = attrs.field(default=1e-5, validator=attrs.validators.gt(0))
        #: "batch": centre on the target's mean over batch, height, width (the reference); "image": per image
        centre: str = attrs.field(default="batch", validator=attrs.validators.in_(CENTRES))

    config: Config  # this loss's own fields (bandwidth, eps, centre), not only LossConfig's

    def __init__(self, config: Config, *, build: PartBuilder) -> None:
        super().__init__(config, build=build)
        self.features = build(config.features)

    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        return torch.stack([self.level_term(y, x) for y, x in zip(outputs, targets, strict=True)]).sum()

    def level_term(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``-log CX(Φ(Y^k), Φ(X^k))`` averaged over the batch; the target's features need no gradient."""
        with torch.no_grad():
            target_features = self.features(target)
        cx = contextual_similarity(
            self.features(output), target_features, self.config.bandwidth, self.config.eps, centre=self.config.centre
        )
        return -torch.log(cx).mean()


@hookimpl
def mgsr_losses() -> list[type]:
    return [ContextualLoss]
