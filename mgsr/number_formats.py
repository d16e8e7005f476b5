"""The number formats a user may run the network in (``--precision``, ``training.precision``): one list.

Why a module of its own at the bottom of the package: the recipe schema validates the name, the inference
core and the training step turn it into a dtype, and the command line offers the choices; all of them read
this one mapping.
"""

from __future__ import annotations

import torch

#: name -> the dtype the filter blocks run in (float32 means: no autocast)
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
