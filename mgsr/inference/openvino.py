"""The generator run by OpenVINO on CPU: measured 2.6-3x faster than mgsr's eager PyTorch path here.

OpenVINO fuses the bias, ReLU and concatenations around each convolution that
eager PyTorch runs as separate passes over memory.  The generator (one level
count, padded input in, last level out, exactly ``GMGBP.forward``) is converted
once per weights and level count and cached on disk as OpenVINO IR under
``$MGSR_CACHE/openvino`` (default ``~/.cache/mgsr``): the conversion takes a
minute or more, loading the cached file about two seconds.  Inference runs in
float32, so outputs match the PyTorch path to ~1e-5 (on AVX2 bit for bit).

Large tiles run a copy compiled for their exact shape: OpenVINO then plans its
buffers statically, measured on a 2-core EPYC at 200x200 input, 4x: 1130 instead
of 1540 bytes per output pixel and 1.13x the throughput (benchmarks/upscale_bench.py
``--openvino-shapes``); the automatic tile grows accordingly, so a 256x256 image
runs whole instead of in two strips with 24 pixels of recomputed context each
(1.27x).  Compiling costs ~1 CPU-second, so small inputs keep the dynamic model.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mgsr.errors import MgsrError
from mgsr.model.generator import GMGBP


#: Output pixels of one call from which a new shape gets a model compiled for it at once: compiling takes
#: ~1 CPU-second, ~13 % of a 0.5-megapixel forward pass (what the static model saves).
STATIC_FROM_OUTPUT_PIXELS = 500_000
#: Below this, always the dynamic model (a compile would cost more than the pass).
SMALL_OUTPUT_PIXELS = 100_000


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def cache_dir() -> Path:
    return Path(os.environ.get("MGSR_CACHE") or Path.home() / ".cache" / "mgsr") / "openvino"


class _LastLevel(nn.Module):
    """``(x, z_0 .. z_{L-1}, w) -> Y_L``: explicit unit draws and one W per level, as the exported ONNX graph."""

    def __init__(self, generator: GMGBP, levels: int) -> None:
        super().__init__()
        self.generator = generator
        self.levels = levels

    def forward(self, x: torch.Tensor, *noise_and_w: torch.Tensor) -> torch.Tensor:
        w = noise_and_w[-1]
        return self.generator(x, self.levels, noise_amp=[w[j] for j in range(self.levels)],
                              noise=list(noise_and_w[:-1]))[-1]


def _digest(generator: GMGBP, levels: int) -> str:
    import openvino

    from mgsr.version import __version__

    h = hashlib.sha256(f"{levels} {openvino.__version__} {torch.__version__} {__version__}".encode())
    for name, tensor in generator.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class OpenVinoGenerator:
    """Calls the compiled generator; ``(x, amplitudes, noise) -> Y_L`` like ``GMGBP.forward(...)[-1]``."""

    def __init__(self, generator: GMGBP, levels: int) -> None:
        import openvino as ov

        self.levels = levels
        self.noise_channels = generator.noise_channels
        path = cache_dir() / f"{_digest(generator, levels)}.xml"
        core = ov.Core()
        if path.is_file():
            model = core.read_model(str(path))
        else:
            print(f"mgsr: converting the model for OpenVINO (once; cached in {path.parent})", file=sys.stderr)
            x = torch.rand(1, generator.channels, 40, 40)
            z = generator.draw_noise(x, levels, torch.Generator().manual_seed(0))
            shapes = [[-1, generator.channels, -1, -1]] + [[-1, generator.noise_channels, -1, -1]] * levels
            with warnings.catch_warnings():  # the shape checks of GMGBP.forward are constants of the trace: fine
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                model = ov.convert_model(_LastLevel(generator, levels).eval(),
                                         example_input=(x, *z, torch.ones(levels)), input=[*shapes, [levels]])
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.xml")  # torchrun ranks may convert at once
                ov.save_model(model, str(tmp), compress_to_fp16=False)
                tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
                tmp.replace(path)
            except OSError as exc:
                print(f"mgsr: warning: cannot cache the OpenVINO model in {path.parent} ({exc})", file=sys.stderr)
        self.core, self.model = core, model
        # as many threads as torch: one knob for both backends (torchrun's ranks get 1 each via OMP_NUM_THREADS)
        self.config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        self._dynamic: Any = None  # openvino.InferRequest of the model with free height and width
        self._dynamic_pixels = 0  # the largest call it has run: its buffers stay allocated at that size
        self._seen: set[tuple[int, int, int]] = set()
        self._static_shape: tuple[int, int, int] | None = None
        self._static: Any = None  # openvino.InferRequest of the model compiled for _static_shape

    def _request_for(self, n: int, h: int, w: int) -> Any:
        """The model compiled for (n, h, w) when that pays, else the dynamic one.

        Compiling for a shape costs ~1 CPU-second and saves ~13 % of the pass: it pays at once for large
        calls, and for mid-sized ones from the second call with the same shape (tiles of one image, a
        folder of same-sized photos).  Only the last shape's model is kept (its buffers are the tile's
        working set), and the dynamic model is dropped before a static one is built when it holds buffers
        for a large call, so the two never hold a large working set each.
        """
        pixels, shape = n * (h * w << 2 * self.levels), (n, h, w)
        if pixels < SMALL_OUTPUT_PIXELS or (pixels < STATIC_FROM_OUTPUT_PIXELS and shape not in self._seen):
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen.add(shape)
            if self._dynamic is None:
                self._dynamic = self.core.compile_model(self.model, "CPU", self.config).create_infer_request()
            self._dynamic_pixels = max(self._dynamic_pixels, pixels)
            return self._dynamic
        if self._static_shape != shape:
            self._static = None  # the old shape's buffers go before the new ones are allocated
            if self._dynamic_pixels >= SMALL_OUTPUT_PIXELS:
                self._dynamic, self._dynamic_pixels = None, 0
            model = self.model.clone()
            shapes = {model.inputs[0]: [n, model.inputs[0].partial_shape[1].get_length(), h, w]}
            for j in range(self.levels):
                shapes[model.inputs[1 + j]] = [n, self.noise_channels, h << j, w << j]
            model.reshape(shapes)
            self._static = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            self._static_shape = shape
        return self._static

    def __call__(self, x: torch.Tensor, amplitudes: list[float | torch.Tensor],
                 noise: list[torch.Tensor] | None) -> torch.Tensor:
        n, _, h, w = x.shape
        feeds: list[np.ndarray] = [x.detach().cpu().contiguous().numpy()]
        weights = np.ones(self.levels, np.float32)
        for j in range(self.levels):
            amp = amplitudes[j]
            if noise is None:
                feeds.append(np.zeros((n, self.noise_channels, h << j, w << j), np.float32))
                weights[j] = 0.0
            elif isinstance(amp, torch.Tensor):  # a spatial map: fold it into the draw, W = 1
                feeds.append((noise[j] * amp).contiguous().numpy())
            else:
                feeds.append(noise[j].contiguous().numpy())
                weights[j] = float(amp)
        feeds.append(weights)
        return torch.from_numpy(self._request_for(n, h, w).infer(feeds)[0].copy())


@functools.lru_cache(maxsize=4)
def _compiled(generator: GMGBP, levels: int) -> OpenVinoGenerator:
    return OpenVinoGenerator(generator, levels)


def openvino_generator(generator: GMGBP, levels: int) -> OpenVinoGenerator:
    """The compiled generator for ``levels`` (converted once per weights, kept for the process)."""
    if not openvino_available():
        raise MgsrError("backend 'openvino' needs OpenVINO: pip install \"mgsr[openvino]\" (or use backend 'torch')")
    return _compiled(generator, levels)


def resolve_backend(backend: str, device: str | torch.device) -> str:
    """``auto`` -> ``$MGSR_BACKEND`` if set, else ``openvino`` on CPU when installed (faster), else ``torch``."""
    device = torch.device(device)
    if backend not in ("auto", "torch", "openvino"):
        raise MgsrError(f"backend {backend!r}: use auto, torch or openvino")
    if backend == "openvino" and device.type != "cpu":
        raise MgsrError(f"backend 'openvino' runs on the CPU; with device {device} use backend 'torch'")
    if backend == "auto":
        backend = os.environ.get("MGSR_BACKEND", "auto")  # a site-wide choice (the test suite pins torch)
    if backend == "auto":
        return "openvino" if device.type == "cpu" and openvino_available() else "torch"
    return backend
