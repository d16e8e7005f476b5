"""Export a generator to a standard ONNX graph that onnxruntime, OpenVINO or TensorRT run without mgsr.

The graph's inputs make every source of variation explicit, so every runtime
gives the same, reproducible output:

* ``image``   (N, 3, H, W) float32 in [0, 1]; H and W are dynamic (each > ``scale``).
* ``noise_j`` for each 2x level j = 0 .. levels-1: (N, 1, (H + 2s) * 2**j, (W + 2s) * 2**j)
  unit-variance draws at the *padded* resolution (s = scale); this is the
  layout of :meth:`GMGBP.draw_noise` on the padded input, and feeding
  :func:`mgsr.inference.noise.noise_maps` with a seed reproduces mgsr's output
  for that seed.  Multiply a draw by a map in [0, 1] for per-region control.
* ``w``       (levels,) float32: W per level; zeros give the W = 0 (lowest distortion) result.

With ``noise`` (:func:`export_onnx`, ``mgsr export --noise W``) the graph has the one input ``image`` instead:
W is fixed and the unit noise is made inside the graph from a baked pattern (:class:`OneImageGraph`), so
tools that run one image in, one image out (chainNNer, vs-mlrt) can use it, and the same input always gives
the same output.

The file's metadata (``metadata_props``; onnxruntime's ``get_modelmeta().custom_metadata_map``) says what it
is: ``model``, ``scale``, ``w`` and ``seed`` (the W and seed baked in, or ``input``), ``inputs`` and
``mgsr_version`` (:func:`graph_metadata`), so a file found later, or a tool that lists models, tells its
settings without running it.

Output ``sr``: (N, 3, sH, sW), not clamped.  Border handling is inside the
graph: the image is reflect-padded by ``scale`` pixels and ``scale * scale``
pixels are cut from each side of the result, as in the authors' release and
:func:`mgsr.inference.core.upscale_tensor` (which falls back to replicate padding
for images of at most ``scale`` pixels; the graph does not: use H, W > scale).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from mgsr.errors import MgsrError
from mgsr.inference.core import NoiseSetting, border_pad, check_noise, levels_for
from mgsr.inference.noise import noise_region
from mgsr.io.atomic import atomic_path
from mgsr.model.generator import GMGBP, ExplicitNoiseGenerator
from mgsr.torch_versions import exporter_failure
from mgsr.version import __version__

OPSET = 18

#: Side, in pixels of its level, of the unit-noise pattern baked into a one-image graph per level: mgsr's own
#: seeded draws (the top-left NOISE_PERIOD x NOISE_PERIOD of each level's map), repeated beyond.  512 keeps a
#: 4x graph's patterns at 2 MB (the network is 1.1 MB) and makes the repeat 1024 output pixels or more.
NOISE_PERIOD = 512


class ExportGraph(nn.Module):
    """``(image, noise_0 .. noise_{L-1}, w) -> sr``: the generator with the release's padding and crop."""

    def __init__(self, generator: GMGBP, scale: int) -> None:
        super().__init__()
        self.network = ExplicitNoiseGenerator(generator, levels_for(scale))
        self.scale = scale

    def forward(self, image: torch.Tensor, *noise_and_w: torch.Tensor) -> torch.Tensor:
        return release_crop(self.network(border_pad(image, self.scale), *noise_and_w), self.scale)


def release_crop(out: torch.Tensor, scale: int) -> torch.Tensor:
    """The output of an input padded by ``scale`` pixels, less the ``scale * scale`` pixels of each side the
    padding became (the authors' release)."""
    crop = scale * scale
    return out[..., crop : out.shape[-2] - crop, crop : out.shape[-1] - crop]


class OneImageGraph(nn.Module):
    """``image -> sr`` with W fixed and the unit noise made in the graph: a baked pattern per level, repeated.

    Why a baked pattern and not ONNX ``RandomNormal``: a seeded RandomNormal is only as deterministic as
    each runtime's generator (onnxruntime's differs between versions and between CPU and CUDA, TensorRT does
    not promise any seed), and it could never equal mgsr's output.  The pattern is mgsr's own per-block draws
    for ``seed`` (:mod:`mgsr.inference.noise`), so for one image whose padded map fits the pattern at every
    level ((H + 2s) * 2**j <= NOISE_PERIOD, likewise W) the graph gives ``mgsr upscale --seed``'s values;
    larger images repeat the pattern with period NOISE_PERIOD, with the same unit-normal statistics.  Every
    image of a batch gets the same noise (mgsr draws each its own).
    """

    def __init__(
        self, generator: GMGBP, scale: int, amps: list[float], seed: int = 0, period: int = NOISE_PERIOD
    ) -> None:
        super().__init__()
        self.generator = generator
        self.scale = scale
        self.levels = levels_for(scale)
        self.amps = amps
        self.noisy = any(a != 0 for a in amps)
        self.period = period
        for j in range(self.levels if self.noisy else 0):
            pattern = noise_region(
                generator.noise_source, 1, generator.noise_channels, seed, j, (0, period), (0, period)
            )
            self.register_buffer(f"pattern_{j}", pattern)

    def unit_noise(self, padded: torch.Tensor) -> list[torch.Tensor]:
        """Each level's unit noise for the padded batch: the patterns repeated (Gather in ONNX) to its size."""
        n, _, h, w = padded.shape
        noise = []
        for j in range(self.levels):
            rows = torch.arange(h * (1 << j), device=padded.device) % self.period
            cols = torch.arange(w * (1 << j), device=padded.device) % self.period
            pattern = getattr(self, f"pattern_{j}")
            noise.append(pattern.index_select(2, rows).index_select(3, cols).expand(n, -1, -1, -1))
        return noise

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        padded = border_pad(image, self.scale)
        noise = self.unit_noise(padded) if self.noisy else None
        return release_crop(self.generator(padded, self.levels, noise_amp=self.amps, noise=noise)[-1], self.scale)


def input_names(scale: int) -> list[str]:
    return ["image", *(f"noise_{j}" for j in range(levels_for(scale))), "w"]


def example_inputs(generator: GMGBP, scale: int, height: int = 24, width: int = 20, seed: int = 0) -> tuple:
    """A small (image, noise_0.., w) tuple in the graph's layout (tracing, tests)."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, generator.channels, height, width, generator=gen)
    padded = border_pad(image, scale)
    noise = generator.draw_noise(padded, levels_for(scale), gen)
    return (image, *noise, torch.ones(levels_for(scale)))


def graph_metadata(generator: GMGBP, scale: int, amps: list[float] | None, seed: int) -> dict[str, str]:
    """What the file holds, as ONNX string metadata: the graph alone does not say which weights, scale, W or
    seed it was made with (a 4x R1 and a 4x R3 graph have the same inputs), and users sort exported files by it.
    """
    card = generator.card
    return {
        "model": card.name if card is not None else "unnamed",
        "scale": str(scale),
        "w": "input 'w' (one W per 2x level)" if amps is None else ",".join(f"{a:g}" for a in amps),
        "seed": "input (the noise_j draws)" if amps is None else str(seed),
        "inputs": ", ".join(input_names(scale)) if amps is None else "image",
        "output": "sr (N, 3, scale*H, scale*W), not clamped",
        "mgsr_version": __version__,
    }


def write_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Add ``metadata`` to the ONNX file at ``path`` (torch's exporter has no argument for it), in place:
    ``path`` is :func:`export_onnx`'s temporary file (:func:`mgsr.io.atomic.atomic_path`), not yet published."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata)
    onnx.save(model, str(path))


def export_onnx(
    generator: GMGBP, path: str | os.PathLike[str], *, scale: int = 4, noise: NoiseSetting | None = None, seed: int = 0
) -> Path:
    """Write ``generator`` at ``scale`` as an ONNX file with dynamic batch, height and width; returns the path.

    ``noise=None``: inputs ``image``, ``noise_j`` and ``w`` (:class:`ExportGraph`).  ``noise=W`` (one W or
    one per 2x level): the one input ``image``, W fixed, the noise of ``seed`` baked in (:class:`OneImageGraph`).
    """
    path = Path(path)
    levels = levels_for(scale)
    # a loaded generator is channels-last for speed; its layout checks would pin the traced batch size
    generator = copy.deepcopy(generator).to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # torch 2.13 stubs omit it
    h, w = torch.export.Dim("height", min=scale + 1), torch.export.Dim("width", min=scale + 1)
    n = torch.export.Dim("batch")
    graph: nn.Module
    amps = None if noise is None else check_noise(noise, levels)
    if amps is None:
        graph = ExportGraph(generator, scale).eval()
        names = input_names(scale)
        rest: list[dict[int, object] | None] = [
            {0: n, 2: (h + 2 * scale) * (1 << j), 3: (w + 2 * scale) * (1 << j)} for j in range(levels)
        ]
        shapes: dict[str, object] = {"image": {0: n, 2: h, 3: w}, "noise_and_w": (*rest, None)}
        example = example_inputs(generator, scale)
    else:
        graph = OneImageGraph(generator, scale, amps, seed).eval()
        names, shapes, example = ["image"], {"image": {0: n, 2: h, 3: w}}, example_inputs(generator, scale)[:1]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # written beside the target and renamed when complete: an interrupted export leaves no broken .onnx
        with atomic_path(path, suffix=".onnx") as tmp, torch.no_grad(), warnings.catch_warnings():
            # the exporter's own deprecation notes and axis-renaming remarks are not the user's business
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                graph,
                example,
                str(tmp),
                input_names=names,
                output_names=["sr"],
                dynamic_shapes=shapes,
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
            write_metadata(tmp, graph_metadata(generator, scale, amps, seed))
    except ImportError as exc:
        raise MgsrError(
            f'exporting to ONNX needs the onnx and onnxscript packages: pip install "mgsr[export]" ({exc})'
        ) from None
    except OSError as exc:
        raise MgsrError(f"{path}: cannot write the ONNX file ({exc.strerror or exc})") from None
    except torch.onnx.OnnxExporterError as exc:  # its page-long report, as one line naming the versions
        raise MgsrError(exporter_failure(exc)) from None
    return path
