"""Float32 convolutions that are float32 on CUDA too: no TensorFloat-32 while mgsr upscales.

Why: PyTorch lets cuDNN run float32 convolutions in TF32 on Ampere and later
cards (``torch.backends.cudnn.conv.fp32_precision`` is ``"tf32"`` by default),
which keeps 10 bits of mantissa, as float16 does.  At W = 1 the released
weights amplify rounding ~100-fold (a relative error of 2**-12 in the input
image moves 4x outputs by up to 7 grey levels, measured), so ``--precision fp32`` on
such a card would not be the release's float32 result.  Inference switches
cuDNN to IEEE float32 for its duration and restores the caller's setting
after; training keeps whatever the process chose (TF32 is fine there).
"""

from __future__ import annotations

import torch

from mgsr.inference.shared_setting import SharedSetting


def _to_ieee() -> tuple[str, str] | bool:
    cudnn = torch.backends.cudnn
    if not hasattr(cudnn, "conv"):  # torch < 2.9: only the legacy flag exists
        saved_flag = cudnn.allow_tf32
        cudnn.allow_tf32 = False
        return saved_flag
    saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = "ieee"  # both: the legacy allow_tf32 stays readable
    return saved


def _restore(saved: tuple[str, str] | bool) -> None:
    cudnn = torch.backends.cudnn
    if isinstance(saved, bool):
        cudnn.allow_tf32 = saved
    else:
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = saved


#: ``with ieee_float32():`` cuDNN convolutions in IEEE float32, the caller's setting back after the last call.
ieee_float32 = SharedSetting(_to_ieee, _restore)
