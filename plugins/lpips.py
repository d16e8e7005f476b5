"""``lpips``: the learned perceptual image patch similarity of Zhang et al. (CVPR 2018), AlexNet variant.

The metric most SR papers since 2019 report beside PSNR.  The network is written here (no torchvision) and
its numbers are those of torchmetrics' ``LearnedPerceptualImagePatchSimilarity(net_type="alex")`` (which
vendors the authors' ``lpips`` code and linear weights; a test checks the two agree).  Both weight files
are fetched on first use by :func:`mgsr.io.hub.fetch` into the torch hub cache, hash-checked and renamed into
place only when complete, and never downloaded under ``MGSR_OFFLINE=1``:

- the backbone, torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth`` (233 MB; ``MGSR_LPIPS_BACKBONE_URL``
  names a mirror), of which the five convolutions are used;
- the linear layers, the authors' ``v0.1/alex.pth`` (6 kB; ``MGSR_LPIPS_LINEAR_URL``), cached as
  ``lpips-alex-v0.1-df73285e.pth``.

``backbone = "path"`` / ``linear = "path"`` name local copies instead.  Loaded with ``weights_only=True``.
Lower is more similar; the set score is the mean.  ``shave`` border pixels are cut first, as for the other
full-reference metrics of the PIRM-SR protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn

from mgsr import hookimpl
from mgsr.errors import WeightsError
from mgsr.interfaces import Metric
from mgsr.io import hub
from mgsr.ops.color import ShaveConfig

BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
BACKBONE_URL = f"https://download.pytorch.org/models/{BACKBONE_FILE}"
BACKBONE_URL_ENV = "MGSR_LPIPS_BACKBONE_URL"
#: the cache name promises the SHA-256 prefix of the authors' file (hub.fetch checks it)
LINEAR_FILE = "lpips-alex-v0.1-df73285e.pth"
LINEAR_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"
LINEAR_URL_ENV = "MGSR_LPIPS_LINEAR_URL"

#: (out channels, kernel, stride, padding, max-pool before it) of AlexNet's five convolutions; torchvision's
#: ``features`` indices are 0, 3, 6, 8, 10, so its state dict loads as is
_CONVS = (
    (64, 11, 4, 2, False),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, True),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, False),
)
_INDICES = (0, 3, 6, 8, 10)
#: the input scaling LPIPS was trained with (inputs in [-1, 1]; ImageNet statistics in that range)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-8


def _pick(
    state: Mapping[str, torch.Tensor], wanted: Mapping[str, str], shapes: Mapping[str, torch.Size], path: Path
) -> dict[str, torch.Tensor]:
    """``{our key: state[their key]}``, every key present with the shape we need, or an error naming the file."""
    missing = [theirs for theirs in wanted.values() if theirs not in state]
    if missing:
        raise WeightsError(
            f"{path} lacks {', '.join(missing[:4])}; expected "
            f"{'torchvision AlexNet' if 'features' in missing[0] else 'LPIPS alex linear'} weights"
        )
    picked = {ours: state[theirs] for ours, theirs in wanted.items()}
    for ours, tensor in picked.items():
        if tensor.shape != shapes[ours]:
            raise WeightsError(f"{path}: {wanted[ours]} has shape {tuple(tensor.shape)}, needs {tuple(shapes[ours])}")
    return picked


class LPIPS(Metric, nn.Module):
    """LPIPS(output, reference): 0 for identical images, about 0.1-0.4 for SR outputs; lower is better.

    ``pretrained = false`` gives random weights (tests and experiments only: the score then means nothing).
    """

    # buffers, declared so a type checker reads them as tensors (Module.__getattr__ says Tensor | Module)
    shift: torch.Tensor
    scale: torch.Tensor

    name = "lpips"
    needs_reference = True
    higher_is_better = False

    @attrs.frozen
    class Config(ShaveConfig):
        pretrained: bool = True
        #: a local torchvision AlexNet state dict; none: the hub cache (downloaded on first use)
        backbone: str | None = None
        #: a local LPIPS alex v0.1 linear-layer file; none: the hub cache (downloaded on first use)
        linear: str | None = None

        def __attrs_post_init__(self) -> None:
            if not self.pretrained and (self.backbone is not None or self.linear is not None):
                raise ValueError("backbone or linear is set but pretrained = false; drop one of them")

    def __init__(self, config: Config) -> None:
        nn.Module.__init__(self)
        Metric.__init__(self, config)
        convs: list[nn.Conv2d] = []
        lins: list[nn.Conv2d] = []
        channels = 3
        for out, kernel, stride, padding, _ in _CONVS:
            convs.append(nn.Conv2d(channels, out, kernel, stride=stride, padding=padding))
            lins.append(nn.Conv2d(out, 1, 1, bias=False))
            channels = out
        self.convs, self.lins = nn.ModuleList(convs), nn.ModuleList(lins)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        if config.pretrained:
            self.load_backbone(
                Path(config.backbone)
                if config.backbone
                else self._fetch(BACKBONE_URL_ENV, BACKBONE_URL, None, "backbone", "backbone")
            )
            self.load_linear(
                Path(config.linear)
                if config.linear
                else self._fetch(LINEAR_URL_ENV, LINEAR_URL, LINEAR_FILE, "linear layers", "linear")
            )
        else:
            for conv in convs:  # the local lists: typed as convolutions, where the ModuleLists hold modules
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                if conv.bias is not None:  # always: built with a bias
                    nn.init.normal_(conv.bias, std=0.1)
            for lin in lins:  # the trained linear weights are non-negative: a distance stays >= 0
                nn.init.uniform_(lin.weight, 0.0, 0.1)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _fetch(env: str, url: str, filename: str | None, label: str, key: str) -> Path:
        """The cached file, downloaded on first use from ``url`` or the mirror in ``env`` (the mirror's
        file name is then the cache name, and its ``-<hex>`` the hash checked)."""
        override = os.environ.get(env)
        return hub.fetch(
            override or url,
            filename=None if override else filename,
            label=f"LPIPS {label}",
            hint=f'or name a local copy with {key} = "/path/to/file" in the metric\'s config',
        )

    def load_backbone(self, path: Path) -> None:
        """torchvision AlexNet's ``features.{0,3,6,8,10}.weight/bias``; its classifier is ignored."""
        ours = {
            f"convs.{i}.{p}": f"features.{index}.{p}" for i, index in enumerate(_INDICES) for p in ("weight", "bias")
        }
        self.load_state_dict(
            _pick(hub.read_state_dict(path, "LPIPS backbone"), ours, self._shapes(), path), strict=False
        )

    def load_linear(self, path: Path) -> None:
        """The authors' ``lin{k}.model.1.weight`` (the layers after their dropout)."""
        ours = {f"lins.{k}.weight": f"lin{k}.model.1.weight" for k in range(len(_CONVS))}
        self.load_state_dict(
            _pick(hub.read_state_dict(path, "LPIPS linear layers"), ours, self._shapes(), path), strict=False
        )

    def _shapes(self) -> dict[str, torch.Size]:
        return {key: tensor.shape for key, tensor in self.state_dict().items()}

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS of two ``(N, 3, H, W)`` batches in [0, 1], shape ``(N,)``."""
        total = a.new_zeros(a.shape[0])
        xa, xb = ((2 * x - 1 - self.shift) / self.scale for x in (a, b))
        for (_, _, _, _, pool), conv, lin in zip(_CONVS, self.convs, self.lins, strict=True):
            if pool:
                xa, xb = nn.functional.max_pool2d(xa, 3, 2), nn.functional.max_pool2d(xb, 3, 2)
            xa, xb = torch.relu(conv(xa)), torch.relu(conv(xb))
            na, nb = (x / torch.sqrt(_EPS + (x * x).sum(1, keepdim=True)) for x in (xa, xb))
            total = total + lin((na - nb) ** 2).mean((1, 2, 3))
        return total

    @torch.no_grad()
    def score(self, output: np.ndarray, reference: np.ndarray | None = None) -> float:
        if reference is None:
            raise ValueError("lpips compares an output with its reference; give the HR images")
        if output.shape != reference.shape:
            raise ValueError(f"output is {output.shape[:2]} pixels but the reference is {reference.shape[:2]}")
        s = self.config.shave
        pair = [
            torch.from_numpy(np.ascontiguousarray(x[s : x.shape[0] - s, s : x.shape[1] - s]))
            .permute(2, 0, 1)[None]
            .float()
            .div(255)
            for x in (output, reference)
        ]
        if min(pair[0].shape[-2:]) < 32:
            raise ValueError(f"LPIPS needs at least 32x32 pixels after shaving {s}, got {tuple(pair[0].shape[-2:])}")
        return float(self.distance(*pair)[0])


@hookimpl
def mgsr_metrics() -> list[type]:
    return [LPIPS]
