"""Float32 convolutions that are float32 on CUDA too: no TensorFloat-32 while mgsr upscales.

Why: PyTorch lets cuDNN run float32 convolutions in TF32 on Ampere and later
cards (``torch.backends.cudnn.conv.fp32_precision`` is ``"tf32"`` by default),
which keeps 10 bits of mantissa, as float16 does.  At W = 1 the released
weights amplify rounding ~100-fold (a relative error of 2**-12 in the input
image moves 4x outputs by up to 7 grey levels, measured), so ``--precision fp32`` on
such a card would not be the release's float32 result.  Inference switches to
IEEE float32 for its whole duration and restores the caller's setting after;
training does so only around the numerics that need it (``mgsr.ops.full_precision``).
The switch itself lives in the toolkit, which training uses too.
"""

from __future__ import annotations

from mgsr.ops.precision import ieee_float32

__all__ = ["ieee_float32"]
