"""training.precision / channels_last / compile, and the deferred (sync-free) loss read-back."""

from __future__ import annotations

import itertools
import json
import math
import tomllib

import pytest
import tomli_w
import torch

import mgsr
from mgsr.errors import RecipeError, TrainingError
from mgsr.recipe import load_recipe
from mgsr.training.checkpoint import checkpoint_step, list_checkpoints
from mgsr.training.compiling import compiled
from mgsr.training.run import train
from mgsr_plugins.learned_bicubic import replicate_border

from ..conftest import RECIPES
from ..helpers import assert_same_state, final_state, tiny_recipe


def quiet_recipe(tmp_path, **training):
    """tiny_recipe without validation images: these tests are about the step."""
    path = tiny_recipe(tmp_path, **training)
    table = tomllib.loads(path.read_text())
    table["data"]["val"] = []
    path.write_text(tomli_w.dumps(table))
    return path


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _loss_records(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss/total" in r]


def test_bf16_trains_the_quickstart_on_cpu_with_finite_losses(tmp_path):
    run = tmp_path / "run"
    train(quiet_recipe(tmp_path, precision="bf16", log_every=2), out=str(run), progress=False)
    records = _loss_records(run)
    assert [r["step"] for r in records] == [2, 4]  # one read-back per log_every steps
    assert {"loss/gan@L1", "loss/l1@L2", "d_loss/gan@L2"} <= set(records[0])
    assert all(math.isfinite(v) for r in records for k, v in r.items() if k != "stage")
    state = final_state(run)
    assert state["step"] == 4 and state["scaler"] == {}  # no scaler outside fp16
    torch.manual_seed(3)  # the recipe's seed: the initial weights train() started from
    g0 = mgsr.build(load_recipe(run / "recipe.toml"), training=True).generator.state_dict()
    assert all(t.dtype == torch.float32 for t in state["generator"].values())
    assert any(not torch.equal(g0[k], t) for k, t in state["generator"].items())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_resume_is_exact_including_the_loss_scale(tmp_path, precision):
    recipe = quiet_recipe(tmp_path, precision=precision)
    train(recipe, out=str(tmp_path / "straight"), progress=False)
    train(recipe, out=str(tmp_path / "resumed"), overrides=["training.steps=2"], progress=False)
    train(recipe, out=str(tmp_path / "resumed"), resume="auto", progress=False)
    straight, resumed = final_state(tmp_path / "straight"), final_state(tmp_path / "resumed")
    assert_same_state(straight, resumed)  # compares the scalers' states too
    if precision == "fp16":
        # fp16 on CPU works: the scaler starts at 2^16 and halves on every overflowing step, so a resume that
        # forgot its state would end at another scale than the straight run
        assert 0 < straight["scaler"]["scale"] < 65536.0


def test_nan_is_named_at_its_step_after_a_deferred_read_back(tmp_path):
    bad = ["training.lr=10", "training.discriminator_lr=10"]  # overflows the weights within a few steps
    # the reference: reading back after every step names the step that produced the NaN
    with pytest.raises(TrainingError, match=r"step (\d+): loss term") as info:
        train(
            quiet_recipe(tmp_path, steps=8, checkpoint_every=1, log_every=1),
            out=str(tmp_path / "every"),
            overrides=bad,
            progress=False,
        )
    failed = int(str(info.value).split("step ")[1].split(":")[0])
    assert failed >= 3, "the test needs a NaN after the first checkpoint; raise the step count or lower lr"
    # read back only before checkpoints (every failed - 1 steps): the next check comes after the NaN's step
    run = tmp_path / "deferred"
    with pytest.raises(TrainingError) as info:
        train(
            quiet_recipe(tmp_path, steps=8, checkpoint_every=failed - 1, log_every=100),
            out=str(run),
            overrides=bad,
            progress=False,
        )
    message = str(info.value)
    assert message.startswith(f"step {failed}: loss term '") and "stopping without saving" in message
    saved = [checkpoint_step(p) for p in list_checkpoints(run / "checkpoints")]
    assert saved == [failed - 1]  # the last good checkpoint is kept, none written after the NaN
    assert f"step-{failed - 1:09d}.pt" in message
    assert _loss_records(run) == []


def test_channels_last_trains_like_contiguous(tmp_path):
    recipe = quiet_recipe(tmp_path, steps=2)
    train(recipe, out=str(tmp_path / "plain"), progress=False)
    train(recipe, out=str(tmp_path / "nhwc"), overrides=["training.channels_last=true"], progress=False)
    assert_same_state(final_state(tmp_path / "plain"), final_state(tmp_path / "nhwc"), exact=False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('training.precision="fp8"', r"precision must be one of 'fp32', 'bf16', 'fp16', got 'fp8' @ \$\.training"),
        ("training.precision=16", r"expected a string.* @ \$\.training\.precision"),
        ('training.channels_last="yes"', r"expected true or false.* @ \$\.training\.channels_last"),
        ("training.compile=1", r"expected true or false.* @ \$\.training\.compile"),
    ],
)
def test_bad_speed_settings_are_recipe_errors(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(RECIPES / "quickstart.toml", overrides=[override])


@pytest.mark.compat
@pytest.mark.slow
@pytest.mark.parametrize("nhwc", [False, True])
def test_compiled_step_trains_like_the_eager_one(tmp_path, nhwc):
    recipe = quiet_recipe(tmp_path, steps=2)
    layout = f"training.channels_last={str(nhwc).lower()}"  # channels-last: the classic upscaler's border
    train(recipe, out=str(tmp_path / "eager"), overrides=[layout], progress=False)
    train(
        recipe,
        out=str(tmp_path / "compiled"),
        overrides=["training.compile=true", "training.deterministic=false", layout],
        progress=False,
    )
    assert_same_state(final_state(tmp_path / "eager"), final_state(tmp_path / "compiled"), exact=False)


@pytest.mark.slow
def test_compiled_border_and_convolution_backward_at_every_size():
    """The two ways torch 2.13's inductor failed a CPU step's backward: replication_pad2d_backward's layout
    (the classic upscaler's border, when a channels-last image needs a gradient) and, from the third size on,
    the channels-last copy of an image that needs none, saved for the weight's gradient with the strides of
    the size that made the graph dynamic (the step calls G at every size of the patch pyramid)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, bias=False)

    def border_conv(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(conv(replicate_border(x)))

    step = compiled(border_conv)
    for size, image_grad, nhwc in itertools.product((16, 8, 4), (True, False), (False, True)):
        x = torch.rand(8, size, size, 3).permute(0, 3, 1, 2) if nhwc else torch.rand(8, 3, size, size)
        grads = []
        for call in (border_conv, step):
            conv.weight.grad = None
            image = x.clone().requires_grad_(image_grad)  # clone keeps the layout
            call(image).square().sum().backward()
            grads.append([conv.weight.grad, *([image.grad] if image_grad else [])])
        for eager, compiled_grad in zip(*grads, strict=True):
            torch.testing.assert_close(compiled_grad, eager, rtol=1e-4, atol=1e-5)
