"""``vgg19``: VGG-19's convolutional layers up to a chosen one, with torchvision's ImageNet weights.

The layers are defined here (torchvision is not needed); their order and
``features.N`` indices are those of torchvision's ``vgg19``, so its state dict
loads as is.  The weights come from a file named in the recipe
(``weights = "path"``) or from the torch hub cache
(``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``), where
:func:`mgsr.io.hub.fetch` downloads them on first use — from torchvision's URL or
from ``MGSR_VGG19_URL`` (a mirror; the cached file takes that URL's file name,
whose ``-<hex>`` is the SHA-256 prefix checked).  ``MGSR_OFFLINE=1`` forbids the
download.  As torch.hub does, a file whose name ends in ``-<hex>.<ext>`` must
have a SHA-256 starting with that hex.  Loaded with ``weights_only=True``:
tensors only, never unpickled code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import attrs
import torch
from torch import nn

from mgsr import hookimpl
from mgsr.errors import WeightsError
from mgsr.interfaces import FeatureExtractor
from mgsr.io import hub

WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
URL_ENV = "MGSR_VGG19_URL"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: VGG-19 ("configuration E"): output channels per convolution, "M" for a 2x2 max-pool.
_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def layer_names() -> list[str]:
    """Names of the layers in order (index = torchvision's ``features`` index): conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 0
    for item in _PLAN:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


LAYERS = tuple(layer_names())


def _known_layer(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in LAYERS:
        raise ValueError(f"unknown VGG-19 layer '{value}'; one of: {', '.join(LAYERS)}")


def check_hash(path: Path) -> None:
    """torch.hub's rule: a name ending in ``-<hex>.<ext>`` promises a SHA-256 that starts with that hex."""
    prefix = hub.expected_sha256_prefix(path.name)
    if prefix is None:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(prefix):
        raise WeightsError(
            f"{path}: SHA-256 {digest[:16]}... does not start with '{prefix}' as its name promises; "
            f"the file is corrupt or not the one named - download {WEIGHTS_URL} again"
        )


class VGG19Features(FeatureExtractor):
    """VGG-19 up to ``layer`` (default relu3_4: the paper's "conv3-4" for the contextual loss, which in the
    reference CX implementation is that convolution *after* its ReLU; ``conv3_4`` gives the pre-ReLU output).

    Input: RGB in [0, 1]; it is normalised with ImageNet's mean and std as the
    weights expect.  ``pretrained = false`` gives randomly initialised weights
    (for tests and experiments only: the features then mean nothing).
    """

    # buffers, declared so a type checker reads them as tensors (Module.__getattr__ says Tensor | Module)
    mean: torch.Tensor
    std: torch.Tensor

    name = "vgg19"

    @attrs.frozen
    class Config:
        layer: str = attrs.field(default="relu3_4", validator=_known_layer)
        pretrained: bool = True
        #: a local state dict file; none: the torch hub cache
        weights: str | None = None

        def __attrs_post_init__(self) -> None:
            if self.weights is not None and not self.pretrained:
                raise ValueError("weights is set but pretrained = false; drop one of them")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        layers: list[nn.Module] = []
        in_channels = 3
        for item in _PLAN:
            if isinstance(item, int):  # a convolution's width; "M" a pooling
                layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU()]
                in_channels = item
            else:
                layers.append(nn.MaxPool2d(2, 2))
        del layers[LAYERS.index(config.layer) + 1 :]  # keep only what the chosen layer needs
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if config.pretrained:
            self.load_file(Path(config.weights) if config.weights is not None else self._hub_file())
        else:
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:  # always: built with a bias
                        nn.init.zeros_(module.bias)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _hub_file() -> Path:
        """The cached ImageNet file, downloaded on first use (from ``MGSR_VGG19_URL`` when set)."""
        url = os.environ.get(URL_ENV) or WEIGHTS_URL
        hint = (
            f'or name a local copy with weights = "/path/to/{WEIGHTS_FILE}" in the recipe\'s [losses.features] '
            "table (pretrained = false gives random features, for tests only)"
        )
        return hub.fetch(url, label="VGG-19 ImageNet weights", hint=hint)

    def load_file(self, path: Path) -> None:
        """Load torchvision's ``features.N.weight/bias`` for the layers built; other keys are ignored."""
        if not path.is_file():
            raise WeightsError(f"VGG-19 weights file not found: {path}")
        check_hash(path)
        state = hub.read_state_dict(path, "VGG-19 weights")
        wanted = self.state_dict()
        missing = [key for key in wanted if key not in state]
        if missing:
            raise WeightsError(
                f"{path} lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
                "expected torchvision's VGG-19 state dict (features.0.weight, ...)"
            )
        for key, tensor in wanted.items():
            if state[key].shape != tensor.shape:
                raise WeightsError(
                    f"{path}: {key} has shape {tuple(state[key].shape)}, VGG-19 needs {tuple(tensor.shape)}"
                )
        self.load_state_dict({key: state[key] for key in wanted})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"vgg19 expects (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        return self.features((x - self.mean.to(x)) / self.std.to(x))


@hookimpl
def mgsr_feature_extractors() -> list[type]:
    return [VGG19Features]
