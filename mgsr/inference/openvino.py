"""The generator run by OpenVINO on CPU: measured 2.6-3x faster than mgsr's eager PyTorch path here.

(Old layout; with the package layout of issue 10 this module belongs in ``mgsr/inference/``.)

OpenVINO fuses the bias, ReLU and concatenations around each convolution that
eager PyTorch runs as separate passes over memory.  The generator (one level
count, padded input in, last level out, exactly ``GMGBP.forward``) is converted
once per weights and level count and cached on disk as OpenVINO IR under
``$MGSR_CACHE/openvino`` (default ``~/.cache/mgsr``): the conversion takes a
minute or more, loading the cached file about two seconds.  Inference runs in
float32, so outputs match the PyTorch path to ~1e-5.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mgsr.errors import MgsrError
from mgsr.model.generator import GMGBP


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


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
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled.create_infer_request()

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
        return torch.from_numpy(self.request.infer(feeds)[0].copy())


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
