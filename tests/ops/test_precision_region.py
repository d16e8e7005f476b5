"""The float32 numerics (VN+SC statistics, S_down, contextual similarity) run in IEEE float32 both ways.

On a card, cuDNN and cuBLAS read the TF32 settings when a kernel starts, backward kernels included, long
after the forward's region has closed.  On the CPU the settings change no result, so the numeric tests here
stand in for cuDNN and cuBLAS with a convolution and a batched product that do what those libraries do: read
the live settings, in the forward and in the backward, and round their float32 operands to TF32's 10-bit
mantissa where the setting is "tf32".  A gradient taken through the region must then match float64 to
float32 rounding; the same computation with only its forward in the region (what the region did before)
must not.
"""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import mgsr.ops.contextual
import mgsr.ops.local_stats
from mgsr.nn import _image_to_features
from mgsr.ops.contextual import contextual_similarity
from mgsr.ops.imresize import imresize
from mgsr.ops.local_stats import gaussian_window, variance_normalize
from mgsr.ops.precision import full_precision, ieee_float32
from mgsr_plugins.learned_bicubic import LearnedBicubic

from .test_precision_settings import baseline


@pytest.fixture(autouse=True)
def _settings():
    """Tests here change process-wide TF32 settings: start and end at torch's (see baseline)."""
    baseline()
    yield
    baseline()


def tf32(x: torch.Tensor) -> torch.Tensor:
    """``x`` (float32) rounded to nearest, ties to even, at 10 mantissa bits: what TF32 keeps of an operand."""
    bits = x.view(torch.int32)
    return ((bits + 0xFFF + ((bits >> 13) & 1)) & -8192).view(torch.float32)


def _rounding(tensors: tuple[torch.Tensor, ...], library: str) -> tuple[torch.Tensor, ...]:
    """The operands as the library would use them under the live setting (float64 is never TF32)."""
    setting = torch.backends.cudnn.conv if library == "cudnn" else torch.backends.cuda.matmul
    if tensors[0].dtype != torch.float32 or setting.fp32_precision != "tf32":
        return tensors
    return tuple(tf32(t) for t in tensors)


class CudnnLikeConv(torch.autograd.Function):
    """``F.conv2d`` (no padding, stride 1) honouring the cuDNN TF32 setting as cuDNN does, both ways."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return F.conv2d(*_rounding((x, w), "cudnn"))

    @staticmethod
    def backward(ctx, grad):
        x, w, grad = _rounding((*ctx.saved_tensors, grad), "cudnn")
        return torch.nn.grad.conv2d_input(x.shape, w, grad), torch.nn.grad.conv2d_weight(x, w.shape, grad)


class CublasLikeBmm(torch.autograd.Function):
    """``torch.bmm`` honouring the CUDA matmul TF32 setting as cuBLAS does, both ways."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return torch.bmm(*_rounding((a, b), "cublas"))

    @staticmethod
    def backward(ctx, grad):
        a, b, grad = _rounding((*ctx.saved_tensors, grad), "cublas")
        return torch.bmm(grad, b.transpose(1, 2)), torch.bmm(a.transpose(1, 2), grad)


class _TorchWithCublasLikeBmm:
    bmm = staticmethod(CublasLikeBmm.apply)

    def __getattr__(self, name):
        return getattr(torch, name)


def p99_relative_error(grad: torch.Tensor, reference: torch.Tensor) -> float:
    """99th percentile of |grad - reference| / (|reference| + 1e-3 max |reference|)."""
    floor = 1e-3 * reference.abs().max()
    return float(((grad.double() - reference).abs() / (reference.abs() + floor)).flatten().quantile(0.99))


def gradient(fn, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_()
    (fn(x) * weights.to(x.dtype)).sum().backward()
    return x.grad


def forward_only(fn):
    """``fn`` (a full_precision function) with only its forward in the region: the region before this fix."""

    def escaped(*args):
        with ieee_float32():
            return fn.__wrapped__(*args)

    return escaped


def flat_and_textured_luminance() -> torch.Tensor:
    """(1, 1, 32, 32) on 0..255, float64: flat on the left (where μ(I²) - μ² cancels most), textured right."""
    generator = torch.Generator().manual_seed(0)
    image = torch.full((1, 1, 32, 32), 120.0, dtype=torch.float64)
    image[..., 16:] += torch.rand(1, 1, 32, 16, generator=generator, dtype=torch.float64) * 80
    return image + torch.randn(image.shape, generator=generator, dtype=torch.float64) * 0.5


def test_vn_statistics_gradient_is_ieee_float32_under_cudnn_tf32(monkeypatch):
    # cuDNN's default: float32 convolutions in TF32 (the baseline leaves it on)
    monkeypatch.setattr(mgsr.ops.local_stats, "F", types.SimpleNamespace(pad=F.pad, conv2d=CudnnLikeConv.apply))
    image = flat_and_textured_luminance()
    weights = torch.randn(image.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    window = gaussian_window()

    def statistics(x):
        return variance_normalize(x, window)

    reference = gradient(statistics, image, weights)[..., :12]  # the flat columns, away from the texture
    inside = gradient(statistics, image.float(), weights)[..., :12]
    escaped = gradient(lambda x: forward_only(variance_normalize)(x, window), image.float(), weights)[..., :12]
    assert p99_relative_error(inside, reference) < 4e-3  # measured 1.2e-3: float32's own cancellation
    assert p99_relative_error(escaped, reference) > 1e-2  # measured 1.7e-2: TF32 in the backward


def test_contextual_gradient_is_ieee_float32_under_cublas_tf32(monkeypatch):
    torch.set_float32_matmul_precision("high")  # a user's: CUDA matrix products in TF32
    monkeypatch.setattr(mgsr.ops.contextual, "torch", _TorchWithCublasLikeBmm())
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 16, 6, 6, generator=generator, dtype=torch.float64)
    y = torch.rand(2, 16, 5, 5, generator=generator, dtype=torch.float64)

    def similarity(features):
        return contextual_similarity(features, y.to(features.dtype))

    ones = torch.ones(2, dtype=torch.float64)
    reference = gradient(similarity, x, ones)
    inside = gradient(similarity, x.float(), ones)
    escaped = gradient(lambda f: forward_only(contextual_similarity)(f, y.float()), x.float(), ones)
    assert p99_relative_error(inside, reference) < 1e-4  # measured 3.6e-6
    assert p99_relative_error(escaped, reference) > 1e-3  # measured 5.2e-3


class SettingsSeen(TorchDispatchMode):
    """Records, for every convolution and matrix product torch runs, the TF32 settings it starts under."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name.startswith(("convolution", "mm", "bmm", "addmm")):
            settings = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
            self.seen.append((name, *settings))
        return func(*args, **(kwargs or {}))


def _three_statistics(wrapped: bool) -> list[tuple[str, str, str]]:
    """Forward and backward of the VN+SC statistics, S_down (imresize) and CX; what each kernel started under."""
    vn, resize, cx = (
        (variance_normalize, imresize, contextual_similarity)
        if wrapped
        else map(forward_only, (variance_normalize, imresize, contextual_similarity))
    )
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    features = torch.rand(1, 8, 6, 6, requires_grad=True)
    with SettingsSeen() as mode:
        luminance = vn(image[:, :1] * 255, gaussian_window())
        loss = luminance.square().mean() + resize(image, 0.5).mean() + cx(features, features.detach() * 0.9).mean()
        loss.backward()
    return mode.seen


def test_every_kernel_of_the_statistics_starts_in_ieee_float32_both_ways():
    torch.set_float32_matmul_precision("high")
    seen = _three_statistics(wrapped=True)
    assert {name for name, *_ in seen} >= {"convolution", "convolution_backward", "bmm", "mm"}
    assert {tuple(settings) for _, *settings in seen} == {("ieee", "ieee")}
    # the same check catches a backward outside the region
    escaped = [settings for name, *settings in _three_statistics(wrapped=False) if name == "convolution_backward"]
    assert escaped and all(settings == ["tf32", "tf32"] for settings in escaped)


def test_legacy_flags_read_inside_the_backward():
    torch.set_float32_matmul_precision("medium")
    seen = []

    @full_precision
    def probe(x):
        y = x * 2
        if y.requires_grad:  # the backward's recomputation: the hook runs in the backward itself
            y.register_hook(lambda g: seen.append(_legacy_reads()))
        seen.append(_legacy_reads())
        return y

    probe(torch.ones(3, requires_grad=True)).sum().backward()
    assert seen == [(False, False, "highest")] * 3  # forward, recomputation, backward
    assert _legacy_reads() == (True, True, "medium")  # and the caller's again after


def _legacy_reads() -> tuple[bool, bool, str]:
    cuda = torch.backends.cuda.matmul
    return torch.backends.cudnn.allow_tf32, cuda.allow_tf32, torch.get_float32_matmul_precision()


def test_module_parameters_get_their_gradients_through_the_region():
    torch.manual_seed(0)
    upscaler = LearnedBicubic(LearnedBicubic.Config(), channels=3)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    image = torch.rand(1, 3, 6, 6, requires_grad=True)
    grads = []
    for forward in (lambda x: upscaler(conv(x)), lambda x: upscaler.forward.__wrapped__(upscaler, conv(x))):
        for p in (upscaler.weight, conv.weight, image):
            p.grad = None
        forward(image).square().sum().backward()
        grads.append([p.grad.clone() for p in (upscaler.weight, conv.weight, image)])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    conv.weight.grad = None
    _image_to_features(conv, image.detach()).sum().backward()  # a module argument's parameters too
    expected = torch.nn.grad.conv2d_weight(image.detach(), conv.weight.shape, torch.ones(1, 3, 6, 6), padding=1)
    torch.testing.assert_close(conv.weight.grad, expected)


def test_backward_runs_again_under_retain_graph():
    x = torch.rand(1, 1, 12, 12, requires_grad=True) * 255
    loss = variance_normalize(x, gaussian_window()).square().sum()
    first = torch.autograd.grad(loss, x, retain_graph=True)[0]
    torch.testing.assert_close(torch.autograd.grad(loss, x)[0], first, rtol=0, atol=0)


def test_half_inputs_get_half_gradients_under_autocast():
    x = torch.rand(1, 3, 8, 8).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = imresize(x, 0.5)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad.float(), gradient(lambda t: imresize(t, 0.5), x.detach().float(), torch.ones(1)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run where one exists)")
def test_vn_statistics_gradient_on_cuda_matches_float64_with_tf32_on():
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"  # cuDNN's default, left on
    image = flat_and_textured_luminance().cuda()
    weights = torch.randn(image.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).cuda()
    window = gaussian_window().cuda()

    def statistics(x):
        return variance_normalize(x, window)

    reference = gradient(statistics, image, weights)[..., :12]
    inside = gradient(statistics, image.float(), weights)[..., :12]
    assert p99_relative_error(inside, reference) < 4e-3
