"""``contextual``: the contextual loss of Mechrez, Talmi and Zelnik-Manor (2018), eq. 10 of the paper.

It compares the *distributions* of deep features, not their positions: each
output feature vector ``x_i`` is matched to its most similar target vector, so
a texture with the right statistics scores well wherever its details fall.
For one image, with ``y_j`` the target's features:

1. centre both sets on the target's mean feature; cosine distance ``d_ij``;
2. relative distance ``d̃_ij = d_ij / (min_k d_ik + ε)``;
3. affinity ``CX_ij = softmax_j((1 - d̃_ij) / h)`` (exp-normalised over the targets);
4. ``CX(X, Y) = mean_j max_i CX_ij``, in (0, 1]; 1 when every target is matched.

The term is ``Σ_k mean over the batch of -log CX(Φ(Y^k), Φ(X^k))``; Φ is a
feature-extractor component, VGG-19 conv3_4 by default as in the paper.
Memory grows with the square of the feature positions (a (H/4·W/4)² matrix
per image at conv3_4: 1024² for a 128x128 patch).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from mgsr import hookimpl
from mgsr.ops.precision import full_precision
from mgsr.interfaces import Images, Discriminator, FeatureExtractorSpec, Loss, LossConfig, PartBuilder, noise_field


@full_precision  # relative cosine distances d / min d: half precision flattens them
def contextual_similarity(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.5, eps: float = 1e-5) -> torch.Tensor:
    """CX between the feature sets of ``x`` and ``y`` (``(N, C, H, W)``, sizes may differ); one value per item."""
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"expected (N, C, H, W) features with equal N and C, got {tuple(x.shape)} and {tuple(y.shape)}")
    centre = y.mean(dim=(2, 3), keepdim=True)
    xs = F.normalize((x - centre).flatten(2), dim=1)  # (N, C, P)
    ys = F.normalize((y - centre).flatten(2), dim=1)  # (N, C, Q)
    distance = (1 - torch.bmm(xs.transpose(1, 2), ys)).clamp_min(0)  # (N, P, Q)
    relative = distance / (distance.min(dim=2, keepdim=True).values + eps)
    affinity = torch.softmax(-relative / bandwidth, dim=2)  # exp((1 - d̃)/h) normalised over j
    return affinity.max(dim=1).values.mean(dim=1)


class ContextualLoss(Loss):
    """``-log CX`` over a feature extractor's features, summed over levels (eq. 10); reads W = 1 by default."""

    name = "contextual"

    @attrs.frozen
    class Config(LossConfig):
        noise: tuple[float, ...] = noise_field((1.0,))
        features: FeatureExtractorSpec = FeatureExtractorSpec("vgg19")
        bandwidth: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
        eps: float = attrs.field(default=1e-5, validator=attrs.validators.gt(0))

    def __init__(self, config: Config, *, build: PartBuilder) -> None:
        super().__init__(config, build=build)
        self.features = build(config.features)

    def term(self, outputs: Images, targets: Images, *, discriminator: Discriminator | None = None) -> torch.Tensor:
        return sum(self.level_term(y, x) for y, x in zip(outputs, targets))

    def level_term(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``-log CX(Φ(Y^k), Φ(X^k))`` averaged over the batch; the target's features need no gradient."""
        with torch.no_grad():
            target_features = self.features(target)
        cx = contextual_similarity(self.features(output), target_features, self.config.bandwidth, self.config.eps)
        return -torch.log(cx).mean()


@hookimpl
def mgsr_losses() -> list[type]:
    return [ContextualLoss]
