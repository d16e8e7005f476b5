"""Float32 convolutions that are float32 on CUDA too: no TensorFloat-32 while mgsr upscales.

Why: PyTorch lets cuDNN run float32 convolutions in TF32 on Ampere and later
cards (``torch.backends.cudnn.conv.fp32_precision`` is ``"tf32"`` by default),
which keeps 10 bits of mantissa, as float16 does.  At W = 1 the released
weights amplify rounding ~100-fold (rounding the input to float16's precision
moves 4x outputs by up to 7 grey levels, measured), so ``--precision fp32`` on
such a card would not be the release's float32 result.  Inference switches
cuDNN to IEEE float32 for its duration and restores the caller's setting
after; training keeps whatever the process chose (TF32 is fine there).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_lock = threading.Lock()
_depth = 0  # calls inside ieee_float32() now (serve runs several threads): the last one out restores
_saved: tuple[str, str] = ("", "")


@contextlib.contextmanager
def ieee_float32() -> Iterator[None]:
    """cuDNN convolutions (and RNNs, so the legacy ``allow_tf32`` flag stays readable) in IEEE float32."""
    global _depth, _saved
    cudnn = torch.backends.cudnn
    with _lock:
        if _depth == 0:
            _saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
            cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = _saved
