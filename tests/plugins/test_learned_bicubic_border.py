"""The classic upscaler's border under torch.compile: slices and concatenations, the same pixels as F.pad."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mgsr_plugins.learned_bicubic import border_copies, replicate_border


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize(
    ("shape", "nhwc"), [((2, 3, 8, 8), False), ((3, 3, 7, 5), True), ((1, 3, 1, 1), False), ((2, 1, 1, 6), True)]
)
def test_border_copies_are_replicate_padding_bit_for_bit(shape, nhwc, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype)
    if nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    eager, copies = x.clone().requires_grad_(), x.clone().requires_grad_()
    padded = F.pad(eager, (1, 1, 1, 1), mode="replicate")
    copied = border_copies(copies)
    assert torch.equal(copied, padded)
    grad = torch.randn_like(padded)
    padded.backward(grad)
    copied.backward(grad)
    # the border pixels sum up to four gradients, in another order: equal to rounding
    tol = {"rtol": 2e-2, "atol": 4e-2} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(copies.grad, eager.grad, **tol)


def test_eager_keeps_f_pad():
    """Outside torch.compile the border is F.pad itself (its backward's summation order included)."""
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    assert replicate_border(x).grad_fn.name() == F.pad(x, (1, 1, 1, 1), mode="replicate").grad_fn.name()


def test_an_export_keeps_its_padding_op():
    """torch.export (ONNX export's tracer) counts as compiling; its graph keeps the one padding op."""

    class Border(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return replicate_border(x)

    graph = torch.export.export(Border(), (torch.rand(1, 3, 4, 4),)).graph
    ops = [str(node.target) for node in graph.nodes if node.op == "call_function"]
    assert ops == ["aten.pad.default"]
