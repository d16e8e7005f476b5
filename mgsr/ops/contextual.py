"""Contextual similarity CX (Mechrez, Talmi, Zelnik-Manor 2018): how well one feature set covers another.

Shared by the ``contextual`` loss and the ``cx`` metric.  For one image, with ``y_j`` the target's features:
centre both sets on the target's mean feature; cosine distance ``d_ij``; relative distance
``d_ij / (min_k d_ik + eps)``; affinity ``softmax_j((1 - d~_ij) / h)``; ``CX = mean_j max_i CX_ij`` in (0, 1].

The reference implementation centres on the mean of the target features over the batch, height and width
(``centre = "batch"``, the default); ``centre = "image"`` uses each target image's own mean.  The two agree
for a single image; on a batch, batch centring keeps what sets the images apart in their features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgsr.ops.precision import full_precision

#: where the features are centred: on the target's mean over the batch (the reference's) or per image
CENTRES = ("batch", "image")


@full_precision  # relative cosine distances d / min d: half precision flattens them
def contextual_similarity(
    x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.5, eps: float = 1e-5, centre: str = "batch"
) -> torch.Tensor:
    """CX between the feature sets of ``x`` and ``y`` (``(N, C, H, W)``, sizes may differ); one value per item.

    ``centre``: ``"batch"`` (the reference's) subtracts the mean of ``y`` over batch, height and width,
    ``"image"`` the mean of each item of ``y``.
    """
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"expected (N, C, H, W) features with equal N and C, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if centre not in CENTRES:
        raise ValueError(f"centre must be one of {', '.join(CENTRES)}, got {centre!r}")
    mean = y.mean(dim=(0, 2, 3) if centre == "batch" else (2, 3), keepdim=True)
    xs = F.normalize((x - mean).flatten(2), dim=1)  # (N, C, P)
    ys = F.normalize((y - mean).flatten(2), dim=1)  # (N, C, Q)
    distance = (1 - torch.bmm(xs.transpose(1, 2), ys)).clamp_min(0)  # (N, P, Q)
    relative = distance / (distance.min(dim=2, keepdim=True).values + eps)
    affinity = torch.softmax(-relative / bandwidth, dim=2)  # exp((1 - d̃)/h) normalised over j
    return affinity.max(dim=1).values.mean(dim=1)
