"""precision=fp32|bf16|fp16 for inference: reduced precision stays near fp32; unknown names are clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mgsr
from mgsr.cli import main
from mgsr.errors import MgsrError
from mgsr.inference.core import choose_backend, upscale_tensor
from mgsr.io.images import to_uint8


@pytest.fixture(scope="module")
def lr() -> torch.Tensor:
    """A smooth picture with grain: pirm-r3 at W = 1 amplifies input rounding most where there is texture."""
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(24, 24), mode="bicubic")
    return (smooth + 0.05 * torch.randn(smooth.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)


@pytest.mark.parametrize("precision,worst,mean", [("bf16", 5, 0.55), ("fp16", 1, 0.08)])
def test_reduced_precision_on_cpu_is_near_fp32(lr, precision, worst, mean):
    # measured on pirm-r3, this case at 2x (AVX2 EPYC): bf16 at most 4 grey levels off, mean 0.43; fp16 1, 0.057.
    # With the image's first convolution under autocast too (not kept in float32): bf16 6, 0.73; fp16 1, 0.097
    model = mgsr.pretrained("pirm-r3")
    ref = to_uint8(upscale_tensor(model, lr, scale=2, noise_amp=1.0, seed=0)).astype(int)
    low = upscale_tensor(model, lr, scale=2, noise_amp=1.0, seed=0, precision=precision)
    assert low.dtype == torch.float32
    diff = np.abs(to_uint8(low).astype(int) - ref)
    assert diff.max() <= worst and diff.mean() <= mean
    assert diff.max() > 0  # the reduced precision really ran


def test_unknown_precision_is_a_clear_error(lr, tmp_path, capsys):
    with pytest.raises(MgsrError, match="precision 'fp8': use one of fp32, bf16, fp16"):
        upscale_tensor(mgsr.pretrained("pirm-r1"), lr, scale=2, precision="fp8")
    with pytest.raises(MgsrError, match="backend 'openvino' runs in float32"):
        choose_backend("openvino", "cpu", "bf16")
    assert choose_backend("torch", "cpu", "bf16") == "torch"
    with pytest.raises(SystemExit):
        main(["upscale", "in.png", "-o", str(tmp_path / "o.png"), "--precision", "half"])
    assert "--precision: invalid choice: 'half'" in capsys.readouterr().err


def test_inference_runs_ieee_float32_convolutions_and_restores_the_callers_setting(lr):
    # cuDNN's default for float32 convolutions is TF32 (10-bit mantissa): at W = 1 that alone is grey levels off
    cudnn = torch.backends.cudnn
    model = mgsr.pretrained("pirm-r3")
    seen = []
    handle = model.analysis.conv_in.register_forward_pre_hook(lambda *_: seen.append(cudnn.conv.fp32_precision))
    before = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    try:
        upscale_tensor(model, lr[..., :8, :8], scale=2, noise_amp=1.0, seed=0)
    finally:
        handle.remove()
    assert seen and set(seen) == {"ieee"}
    assert (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision) == before == ("tf32", "tf32")
    assert cudnn.allow_tf32  # the legacy flag stays readable (conv and rnn agree) and is the caller's again


def test_nested_and_concurrent_inference_restore_only_at_the_end():
    import threading

    from mgsr.ops.precision import ieee_float32

    cudnn = torch.backends.cudnn
    inside, release = threading.Event(), threading.Event()

    def other_call() -> None:
        with ieee_float32():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other_call)
    worker.start()
    inside.wait(10)
    with ieee_float32():
        assert cudnn.conv.fp32_precision == "ieee"
    assert cudnn.conv.fp32_precision == "ieee"  # the other call still runs: not restored under it
    release.set()
    worker.join()
    assert cudnn.conv.fp32_precision == "tf32"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run where one exists)")
@pytest.mark.parametrize("noise,worst", [(0.0, 1), (1.0, 2)])
def test_fp16_on_cuda_is_near_ieee_fp32_on_cuda_and_on_cpu(lr, noise, worst):
    # 2x: fp16 emulated on the CPU is at most 1 level off at W = 0 and W = 1 here (4x at W = 1: 4, the generator
    # amplifies rounding there); the W = 1 bound leaves the card's own fp16 kernels one level more
    model = mgsr.pretrained("pirm-r3", device="cuda")
    cpu = to_uint8(upscale_tensor(mgsr.pretrained("pirm-r3"), lr, scale=2, noise_amp=noise, seed=0)).astype(int)
    fp32 = to_uint8(upscale_tensor(model, lr, scale=2, noise_amp=noise, seed=0, device="cuda").cpu()).astype(int)
    fp16 = to_uint8(
        upscale_tensor(model, lr, scale=2, noise_amp=noise, seed=0, device="cuda", precision="fp16").cpu()
    ).astype(int)
    assert np.abs(fp32 - cpu).max() <= 1  # IEEE float32 on the card: the CPU's result (no TF32)
    assert np.abs(fp16 - fp32).max() <= worst
