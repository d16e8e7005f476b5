"""Fine-tuning: a discriminator warmed up alone (G frozen) before both train; recipes/finetune_r3.toml."""

from __future__ import annotations

import pytest
import torch

import mgsr
from mgsr.assembly.build import build
from mgsr.errors import RecipeError, TrainingError
from mgsr.recipe import load_recipe
from mgsr.registry import default_registry
from mgsr.training.run import train

from ..conftest import RECIPES
from ..helpers import assert_same_state, final_state, tiny_recipe, tiny_trainer


@pytest.fixture(autouse=True)
def _deterministic_off_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def _steps(trainer, hr: torch.Tensor, count: int) -> None:
    for _ in range(count):
        trainer.train_step(hr)
        trainer.step += 1


def test_warmup_trains_only_the_discriminator_then_both_train(tmp_path):
    trainer = tiny_trainer(tmp_path, ["training.discriminator_warmup_steps=2"])
    run = trainer.optimization
    g0, d0 = _copy(trainer.generator), _copy(run.discriminator)
    hr = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    graph_of_g = []
    hook = trainer.generator.register_forward_hook(lambda *_: graph_of_g.append(torch.is_grad_enabled()))
    _steps(trainer, hr, 2)
    hook.remove()
    assert graph_of_g and not any(graph_of_g)  # G only produced the fakes, without a graph for backward
    assert _same(trainer.generator, g0)  # bit-identical: no G step, no graph of G
    assert not _same(run.discriminator, d0)
    assert run.opt_g.state == {} and run.sched_g.last_epoch == 0  # Adam moments and lr schedule untouched
    assert run.sched_d.last_epoch == 2
    logs = trainer.read_losses(flush=True)
    assert "loss/total" not in logs and any(k.startswith("d_loss/gan@") for k in logs)
    d1 = _copy(run.discriminator)
    _steps(trainer, hr, 1)
    assert not _same(trainer.generator, g0) and not _same(run.discriminator, d1)
    assert run.sched_g.last_epoch == 1 and "loss/total" in trainer.read_losses(flush=True)


def test_resume_inside_the_warmup_is_exact(tmp_path):
    recipe = tiny_recipe(tmp_path, steps=3, discriminator_warmup_steps=2, validate_every=10, sample_every=10)
    train(recipe, out=str(tmp_path / "straight"), overrides=["data.val=[]"], progress=False)
    train(recipe, out=str(tmp_path / "resumed"), overrides=["data.val=[]", "training.steps=1"], progress=False)
    train(recipe, out=str(tmp_path / "resumed"), overrides=["data.val=[]"], resume="auto", progress=False)
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "resumed"))


def test_warmup_without_a_discriminator_names_the_key(tmp_path):
    with pytest.raises(RecipeError, match=r"training.discriminator_warmup_steps = 3 .* no \[discriminator\] table"):
        load_recipe(RECIPES / "pirm_r3.toml", overrides=["discriminator=none", "training.discriminator_warmup_steps=3"])
    with pytest.raises(TrainingError, match=r"training.discriminator_warmup_steps = 3, but no loss trains"):
        tiny_trainer(tmp_path, ['losses=[{type = "l1", noise = [0.0]}]', "training.discriminator_warmup_steps=3"])


def test_finetune_recipe_starts_from_the_released_weights():
    registry = default_registry()
    recipe = load_recipe(RECIPES / "finetune_r3.toml", registry)
    base = load_recipe(RECIPES / "pirm_r3.toml", registry)
    assert recipe.model.weights == "pirm-r3" and recipe.discriminator == base.discriminator
    assert 0 < recipe.training.discriminator_warmup_steps < recipe.training.steps < base.training.steps
    assert recipe.training.lr < base.training.lr
    generator = build(recipe, registry).generator  # the bundled weights: no download
    released = mgsr.pretrained("pirm-r3").state_dict()
    assert all(torch.equal(v, released[k]) for k, v in generator.state_dict().items())
