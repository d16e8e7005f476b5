"""Mixed precision (autocast, the fp16 scaler, the numerics kept in float32) and the sync-free loss log."""

from __future__ import annotations

import pytest
import torch

from mgsr.training.loss_log import LossLog, NonFiniteLoss
from mgsr.training.mixed_precision import MixedPrecision


def test_loss_log_means_between_flushes():
    log = LossLog(torch.device("cpu"))
    for step, (a, b) in enumerate([(1.0, 4.0), (3.0, 8.0)], start=1):
        log.add("loss/a", torch.tensor(a), step)
        log.add("loss/b", torch.tensor(b), step)
        log.end_step()
    assert log.flush() == {"loss/a": 2.0, "loss/b": 6.0}
    assert log.flush() == {}
    log.add("loss/a", torch.tensor(5.0), 3)
    log.end_step()
    assert log.flush() == {"loss/a": 5.0}


def test_loss_log_names_the_first_non_finite_step_and_term():
    log = LossLog(torch.device("cpu"))
    values = {"loss/a": [1.0, 1.0, float("inf"), float("nan")], "loss/b": [1.0, float("nan"), float("nan"), 2.0]}
    for step in range(1, 5):
        for name in ("loss/a", "loss/b"):
            log.add(name, torch.tensor(values[name][step - 1]), 1000000000 + step)
        log.end_step()
    with pytest.raises(NonFiniteLoss, match="step 1000000002: loss term 'loss/b' is nan") as info:
        log.flush()
    assert info.value.step == 1000000002 and info.value.term == "loss/b"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_mixed_precision_trains_a_layer(precision):
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 3, 3, padding=1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    amp = MixedPrecision(precision, torch.device("cpu"))
    x = torch.rand(2, 3, 8, 8)
    before = layer.weight.detach().clone()
    with amp.autocast():
        y = layer(x)
    assert y.dtype == {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    loss = (y.float() - x).abs().mean()
    amp.backward(loss)
    amp.step(optimizer, None)
    assert not torch.equal(layer.weight, before) and torch.isfinite(layer.weight).all()
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        MixedPrecision("fp8", torch.device("cpu"))


def test_precision_critical_numerics_stay_float32_under_autocast():
    from mgsr.ops.contextual import contextual_similarity
    from mgsr.ops.imresize import s_down
    from mgsr.ops.local_stats import gaussian_window, variance_normalize

    torch.manual_seed(0)
    y = torch.rand(2, 1, 24, 24) * 255
    x = torch.rand(2, 3, 16, 16)
    fx, fy = torch.rand(2, 8, 6, 6), torch.rand(2, 8, 5, 5)
    window = gaussian_window(dtype=torch.float32)
    plain = variance_normalize(y, window), s_down(x, 2), contextual_similarity(fx, fy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = variance_normalize(y, window), s_down(x.bfloat16(), 2), contextual_similarity(fx.bfloat16(), fy)
    assert all(m.dtype == torch.float32 for m in mixed)
    torch.testing.assert_close(mixed[0], plain[0])  # float32 input: the same result as without autocast
    torch.testing.assert_close(mixed[1], plain[1], atol=4e-3, rtol=0)  # only the input was rounded to bf16
    torch.testing.assert_close(mixed[2], plain[2], atol=2e-2, rtol=0)


def _tf32_flags() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


def test_full_precision_runs_ieee_float32_and_restores_the_callers_setting():
    from mgsr.ops.precision import full_precision

    @full_precision
    def probe(x: torch.Tensor) -> tuple[str, str]:
        return _tf32_flags()

    before = _tf32_flags()
    assert before[0] == "tf32"  # PyTorch's default for cuDNN convolutions: what must not reach these numerics
    assert probe(torch.zeros(1)) == ("ieee", "ieee")
    assert _tf32_flags() == before


def _flags_inside_a_training_step(tmp_path, monkeypatch, device: str) -> list[tuple[str, str]]:
    """The TF32 flags seen by the VN+SC local statistics and MATLAB's bicubic S_down during one real step."""
    import mgsr.ops.imresize
    import mgsr.ops.local_stats

    from ..helpers import tiny_trainer

    seen: list[tuple[str, str]] = []

    def recording(real):
        def wrapper(*args, **kwargs):
            seen.append(_tf32_flags())
            return real(*args, **kwargs)

        return wrapper

    for module, name in ((mgsr.ops.local_stats, "local_mean"), (mgsr.ops.imresize, "resize_matrix")):
        monkeypatch.setattr(module, name, recording(getattr(module, name)))
    trainer = tiny_trainer(tmp_path, ['discriminator.input={type = "vn_sc"}'], device=device)
    before = _tf32_flags()
    trainer.train_step(torch.rand(4, 3, 16, 16))
    assert _tf32_flags() == before == ("tf32", torch.backends.cuda.matmul.fp32_precision)
    return seen


def test_training_statistics_run_in_ieee_float32(tmp_path, monkeypatch):
    seen = _flags_inside_a_training_step(tmp_path, monkeypatch, "cpu")
    assert len(seen) > 4 and set(seen) == {("ieee", "ieee")}  # VN+SC at every level, S_down of the cycle loss


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run where one exists)")
def test_training_statistics_run_in_ieee_float32_on_cuda(tmp_path, monkeypatch):
    seen = _flags_inside_a_training_step(tmp_path, monkeypatch, "cuda")
    assert len(seen) > 4 and set(seen) == {("ieee", "ieee")}


def test_loss_means_count_only_the_steps_that_recorded_the_term():
    log = LossLog(torch.device("cpu"))
    for step, value in enumerate([2.0, 4.0, 6.0], start=1):
        log.add("d_loss/a", torch.tensor(value), step)
        if step == 3:  # a generator term first recorded after a discriminator warm-up
            log.add("loss/g", torch.tensor(value), step)
        log.end_step()
    assert log.flush() == {"d_loss/a": 4.0, "loss/g": 6.0}
