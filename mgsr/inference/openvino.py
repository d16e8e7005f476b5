"""The generator run by OpenVINO on CPU: ~1.4x faster than mgsr's eager PyTorch path (README, "Speed on CPU").

Why faster: OpenVINO folds the bias and ReLU after each convolution into it and runs its convolutions at the
CPU's peak; the dense blocks' pre-activations and concatenations stay separate passes over memory.

The generator (:class:`~mgsr.model.generator.ExplicitNoiseGenerator`: one level count, padded input,
draws and W in, last level out) is converted once per weights and level count and cached on disk as OpenVINO IR under
``$MGSR_CACHE/openvino`` (default ``~/.cache/mgsr``): the conversion takes a
minute or more, loading the cached file about two seconds.  Inference runs in
float32, so outputs match the PyTorch path to ~1e-5 (on AVX2 bit for bit).

Large tiles run a copy compiled for their exact shape: OpenVINO then plans its buffers statically, about a
quarter fewer bytes per output pixel at the same speed, so the automatic tile grows and fewer tiles
recompute their context.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgsr.errors import MgsrError
from mgsr.io.atomic import atomic_path
from mgsr.io.cache import cache_root
from mgsr.model.generator import GMGBP, ExplicitNoiseGenerator

#: Output pixels of one call from which the call runs a model compiled for its shape (less memory, so larger
#: automatic tiles); below, the dynamic model (no compile per new image size).
STATIC_FROM_OUTPUT_PIXELS = 500_000
#: A dynamic model that has run calls this large is dropped before a static model is compiled.
SMALL_OUTPUT_PIXELS = 100_000
#: The generator (any weights, any scale) whose model compiled for a shape holds its buffers now: one per
#: process, so a server that ran 2x, 4x and 8x jobs holds one large tile's working set, not three.
_static_holder: weakref.ref[OpenVinoGenerator] | None = None


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def cache_dir() -> Path:
    return cache_root() / "openvino"


#: Bumped whenever the converted graph changes (2: one weight/bias constant per use, see ``unshare_constants``).
IR_FORMAT = 2


def unshare_constants(model: Any) -> int:
    """Give every use of a shared constant its own copy; returns the number of copies made.

    G-MGBP runs each of its four modules several times per level, so the traced
    graph has one weight and one bias constant feeding many convolutions and
    additions.  OpenVINO folds a bias + ReLU into the convolution before it only
    when that constant has a single consumer: on the shared graph 3 of the 104
    squeeze convolutions took their bias + ReLU, on the unshared one all of them,
    so 101 passes over a 64-channel map go away (a few per cent of the time).
    """
    import openvino as ov

    copies = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant":
            continue
        for use in list(node.output(0).get_target_inputs())[1:]:
            use.replace_source_output(ov.op.Constant(node.get_data().copy()).output(0))
            copies += 1
    if copies:
        model.validate_nodes_and_infer_types()
    return copies


def _digest(generator: GMGBP, levels: int) -> str:
    import openvino

    from mgsr.version import __version__

    # IR_FORMAT: what the conversion does to the graph after tracing (changes invalidate old caches)
    h = hashlib.sha256(f"{levels} {openvino.__version__} {torch.__version__} {__version__} {IR_FORMAT}".encode())
    for name, tensor in generator.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _save_ir(model: Any, path: Path) -> None:
    """Write the IR pair ``path`` (.xml) and its .bin atomically, the .bin first: the .xml is what marks the
    cache entry complete.  Each writer stages under its own temporary names (torchrun's ranks may convert
    at once)."""
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".xml") as xml, atomic_path(path.with_suffix(".bin")) as weights:
        try:
            ov.save_model(model, str(xml), compress_to_fp16=False)  # its weights go to the .bin beside ``xml``
            xml.with_suffix(".bin").replace(weights)
        finally:
            xml.with_suffix(".bin").unlink(missing_ok=True)


#: the converter's modules that send usage reports through their module-level ``tm`` (openvino 2024.4 - 2026.4)
_REPORTING_MODULES = ("convert_impl", "telemetry_utils", "utils")


@contextlib.contextmanager
def _without_usage_reports() -> Iterator[None]:
    """OpenVINO's converter without its usage reports, for the block.

    Why: ``convert_model`` reports each conversion to Google Analytics (on unless the user opted out) from a
    process it forks per event, from a thread.  Offline such a child waits, and a fork made from a thread can
    leave it stuck for ever on a lock another thread held; the interpreter then waits for it at exit (the
    test suite hung after its last test).  Reporting is not mgsr's to do on its users' machines either.  The
    converter's modules get OpenVINO's own stand-in (``telemetry_stub``, what they use when the reporting
    package is not installed) while mgsr converts; a module of another OpenVINO layout is left as it is.
    """
    import importlib

    from openvino.tools.ovc import telemetry_stub

    saved = []
    for name in _REPORTING_MODULES:
        try:
            module = importlib.import_module(f"openvino.tools.ovc.{name}")
        except ImportError:
            continue
        if hasattr(module, "tm"):
            saved.append((module, module.tm))
            setattr(module, "tm", telemetry_stub)  # noqa: B010 - an attribute the module's stubs do not declare
    try:
        yield
    finally:
        for module, original in saved:
            setattr(module, "tm", original)  # noqa: B010 - as above


@functools.cache
def _core() -> Any:
    """The process's one ``openvino.Core``, kept to the end.

    A Core per generator would go with its generator (an evicted cache entry, a test clearing the cache)
    while requests compiled by it may still be alive elsewhere, and freeing those afterwards can crash the
    process (a segfault).  One Core that outlives every request avoids the question.
    """
    import openvino as ov

    return ov.Core()


class OpenVinoGenerator:
    """Calls the compiled generator; ``(x, amplitudes, noise) -> Y_L`` like ``GMGBP.forward(...)[-1]``."""

    def __init__(self, generator: GMGBP, levels: int) -> None:
        import openvino as ov

        self.levels = levels
        self.noise_channels = generator.noise_channels
        path = cache_dir() / f"{_digest(generator, levels)}.xml"
        core = _core()
        if path.is_file():
            model = core.read_model(str(path))
        else:
            print(f"mgsr: converting the model for OpenVINO (once; cached in {path.parent})", file=sys.stderr)
            x = torch.rand(1, generator.channels, 40, 40)
            z = generator.draw_noise(x, levels, torch.Generator().manual_seed(0))
            shapes = [[-1, generator.channels, -1, -1]] + [[-1, generator.noise_channels, -1, -1]] * levels
            # no_grad: with gradients on, full_precision's ops run as an autograd Function, which torch.jit's
            # trace records differently on each invocation ("Graphs differed across invocations")
            # GMGBP.forward's shape checks become constants in the trace: fine
            with warnings.catch_warnings(), torch.no_grad(), _without_usage_reports():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                # OpenVINO's converter traces with torch.jit; torch's note that tracing is deprecated is about
                # OpenVINO's code, and `mgsr upscale` would print it as a warning about the user's image
                # (a DeprecationWarning up to torch 2.13, a FutureWarning from 2.14: any category is ignored)
                warnings.filterwarnings("ignore", r"`torch\.jit\.trace")
                model = ov.convert_model(
                    ExplicitNoiseGenerator(generator, levels).eval(),
                    example_input=(x, *z, torch.ones(levels)),
                    input=[*shapes, [levels]],
                )
            unshare_constants(model)
            try:
                _save_ir(model, path)
            except OSError as exc:
                print(f"mgsr: warning: cannot cache the OpenVINO model in {path.parent} ({exc})", file=sys.stderr)
        self.core, self.model = core, model
        # as many threads as torch: one knob for both backends (torchrun's ranks get 1 each via OMP_NUM_THREADS)
        self.config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        self._dynamic: Any = None  # openvino.InferRequest of the model with free height and width
        self._dynamic_pixels = 0  # the largest call it has run: its buffers stay allocated at that size
        self._static_shape: tuple[int, int, int] | None = None
        self._static: Any = None  # openvino.InferRequest of the model compiled for _static_shape

    def _request_for(self, n: int, h: int, w: int) -> Any:
        """The dynamic model for small calls, else one compiled for (n, h, w): a smaller working set.

        Compiled for the shape, a call needs about a quarter less memory at the same speed, but a compile
        costs ~1-2 s, so only calls large enough for memory to matter use it.  Only the last shape's
        model is kept (its buffers are the tile's working set), and the dynamic model is dropped first when
        it holds buffers for a mid-sized call, so the two never hold a large working set each.
        """
        pixels, shape = n * (h * w << 2 * self.levels), (n, h, w)
        if pixels < STATIC_FROM_OUTPUT_PIXELS:
            if self._dynamic is None:
                self._dynamic = self.core.compile_model(self.model, "CPU", self.config).create_infer_request()
            self._dynamic_pixels = max(self._dynamic_pixels, pixels)
            return self._dynamic
        if self._static_shape != shape:
            self._static = None  # the old shape's buffers go before the new ones are allocated
            self._static_shape = None
            self._take_static_slot()
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

    def _take_static_slot(self) -> None:
        """Drop the model another generator compiled for a shape (its buffers) before this one compiles."""
        global _static_holder
        other = _static_holder() if _static_holder is not None else None
        if other is not None and other is not self:
            other._static, other._static_shape = None, None  # a call running on it keeps its own reference
        _static_holder = weakref.ref(self)

    def __call__(
        self, x: torch.Tensor, amplitudes: list[float | torch.Tensor], noise: list[torch.Tensor] | None
    ) -> torch.Tensor:
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
