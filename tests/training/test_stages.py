"""Training stages: the L1 pre-training, then the objective from its result, in one run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tomli_w
import torch
from safetensors.torch import load_file

from mgsr.cli import main
from mgsr.errors import TrainingError
from mgsr.recipe import load_recipe
from mgsr.recipe.tables import read_recipe_table
from mgsr.registry import default_registry
from mgsr.training.run import train
from mgsr.training.stages import SKIP, plan_stages, starting_points

from ..conftest import RECIPES
from ..helpers import tiny_paper_recipe, tiny_recipe
from ..http_helpers import serve_fake_vgg19

L1_AT_W0 = [{"type": "l1", "weight": 1.0, "noise": [0.0]}]


def staged_recipe(tmp_path: Path, **training) -> Path:
    """The tiny quickstart objective with a 2-step [pretrain] stage and no from_scratch."""
    table = read_recipe_table(tiny_recipe(tmp_path, **training))
    table["training"].pop("from_scratch")
    table["pretrain"] = {"steps": 2, "lr": 1e-3, "losses": L1_AT_W0}
    path = tmp_path / "staged.toml"
    path.write_text(tomli_w.dumps(table))
    return path


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory) -> Path:
    """One staged run: 2 pre-training steps at lr 1e-3, then 2 steps of the objective at a learning rate too
    small to move float32 weights, so the objective's generator is the pre-training's result."""
    tmp = tmp_path_factory.mktemp("staged")
    run = tmp / "run"
    train(staged_recipe(tmp, steps=2, lr=1e-30, validate_every=10, sample_every=10), out=str(run), progress=False)
    torch.use_deterministic_algorithms(False)
    return run


def test_pretraining_runs_first_and_the_objective_starts_from_its_result(staged_run):
    pre = load_file(staged_run / "pretrain" / "generator.safetensors")
    final = load_file(staged_run / "generator.safetensors")
    assert pre["synthesis.conv_out.weight"].abs().sum() > 0  # trained: the output convolution starts at zero
    for key, tensor in pre.items():
        torch.testing.assert_close(final[key], tensor, rtol=0, atol=1e-20, msg=key)
    stages = [(r["stage"], r["step"]) for r in records(staged_run) if "loss/total" in r]
    assert stages == [("pretrain", 1), ("pretrain", 2), ("train", 1), ("train", 2)]
    pre_losses = [k for r in records(staged_run) if r["stage"] == "pretrain" for k in r if k.startswith("loss/")]
    assert pre_losses and all(k.startswith(("loss/l1", "loss/total")) for k in pre_losses)  # L1 only
    assert (staged_run / "pretrain" / "checkpoints").is_dir() and (staged_run / "checkpoints").is_dir()


def test_resume_auto_finds_the_stage_to_continue(staged_run, tmp_path):
    recipe = load_recipe(staged_run / "recipe.toml")  # the objective's resolved recipe
    staged = load_recipe(
        RECIPES / "quickstart.toml",
        overrides=["training.from_scratch=false", "pretrain.steps=2", "pretrain.losses=[{type = 'l1', noise = [0.0]}]"],
    )
    assert recipe.model.weights == str(staged_run / "pretrain")
    run = tmp_path / "copy"
    shutil.copytree(staged_run, run)
    stages = plan_stages(staged, run, default_registry())
    assert [s.name for s in stages] == ["pretrain", "train"]
    starts = starting_points(stages, "auto")
    assert starts[0] == SKIP and starts[1][0].name == "step-000000002.pt"  # the objective had started
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        starting_points(stages, None)
    shutil.rmtree(run / "checkpoints")  # a crash exactly at the boundary: pre-training exported, nothing after
    (run / "generator.safetensors").unlink()
    assert starting_points(stages, "auto") == [SKIP, None]
    (run / "pretrain" / "generator.safetensors").unlink()  # a crash during the pre-training
    starts = starting_points(stages, "auto")
    assert starts[0][0] == run / "pretrain" / "checkpoints" / "step-000000002.pt" and starts[1] is None
    explicit = starting_points(stages, str(run / "pretrain" / "checkpoints" / "step-000000002.pt"))
    assert explicit[0][0].name == "step-000000002.pt" and explicit[1] is None


def test_an_adversarial_objective_from_random_weights_is_refused_with_the_fixes(tmp_path):
    registry = default_registry()
    bare = load_recipe(RECIPES / "pirm_r3.toml", overrides=["pretrain=none"])
    with pytest.raises(TrainingError) as info:
        plan_stages(bare, tmp_path, registry, where="recipe r3.toml")
    message = str(info.value)
    assert "r3.toml" in message and "[pretrain]" in message and "model.weights" in message
    assert "training.from_scratch" in message
    assert [
        s.name
        for s in plan_stages(
            load_recipe(RECIPES / "pirm_r3.toml", overrides=["pretrain=none", "training.from_scratch=true"]),
            tmp_path,
            registry,
        )
    ] == ["train"]
    given = load_recipe(RECIPES / "pirm_r3.toml", overrides=["model.weights=pirm-r3"])
    assert [s.name for s in plan_stages(given, tmp_path, registry)] == ["train"]  # weights: no pre-training
    no_gan = load_recipe(RECIPES / "ablations" / "no_gan.toml", overrides=["pretrain=none"])
    assert len(plan_stages(no_gan, tmp_path, registry)) == 1  # nothing adversarial: random weights are fine


@pytest.mark.parametrize("name", ["pirm_r1", "pirm_r2", "pirm_r3"])
def test_the_paper_recipes_pretrain_with_l1_at_w0(name, tmp_path):
    recipe = load_recipe(RECIPES / f"{name}.toml")
    stages = plan_stages(recipe, tmp_path, default_registry())
    pre, objective = stages
    assert [(s.type, s.config.noise) for s in pre.recipe.losses] == [("l1", (0.0,))]
    assert pre.recipe.training.steps == recipe.pretrain.steps > 0 and pre.run_dir == tmp_path / "pretrain"
    assert objective.recipe.losses == recipe.losses and objective.recipe.model.weights == str(tmp_path / "pretrain")


def test_bad_pretrain_tables_name_the_key(tmp_path):
    from mgsr.errors import RecipeError

    with pytest.raises(RecipeError, match=r"pretrain needs steps or epochs.*\$\.pretrain"):
        load_recipe(RECIPES / "pirm_r3.toml", overrides=["pretrain.steps=0"])
    with pytest.raises(RecipeError, match="pretrain.steps = 5 and pretrain.epochs = 2"):
        load_recipe(RECIPES / "pirm_r3.toml", overrides=["pretrain.steps=5", "pretrain.epochs=2"])
    with pytest.raises(RecipeError, match="pretrain has no losses"):
        load_recipe(RECIPES / "pirm_r3.toml", overrides=["pretrain.losses=[]"])


def test_the_paper_recipe_fails_fast_then_resumes_after_a_crash_at_the_stage_boundary(
    server,
    online,
    monkeypatch,
    tmp_path,
    capsys,
):
    """The paper's recipe end to end, small: the objective's VGG-19 download fails (the server lacks it: exit 4)
    before any step, the pre-training's included, and before any store is prepared; with the file served,
    `mgsr train recipes/pirm_r3.toml --data RAWDIR` prepares the raw folder into the cache once, pre-trains,
    validates on held-out images with the period-2 and phase numbers, and trains the objective.  A crash at
    the stage boundary (the pre-training exported, the objective not started) resumes with the objective
    from the finished pre-training, which does not run again, and reuses the store."""
    from ..helpers import make_images

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))
    raw = make_images(tmp_path / "photos", [(72, 60)] * 10)  # 10 images: one is held out
    name, _ = serve_fake_vgg19(server, tmp_path)
    sets = tiny_paper_recipe(
        "data.target_megapixels=0.003", "pretrain.steps=2", "training.log_every=1", "training.validate_every=2"
    )
    run = tmp_path / "run"
    args = ["train", str(RECIPES / "pirm_r3.toml"), "--data", str(raw), "--out", str(run), *sets]
    monkeypatch.setenv("MGSR_VGG19_URL", server.url("vgg19-00000000.pth"))  # not served: 404, before any step
    assert main(args) == 4
    err = capsys.readouterr().err
    assert "mgsr: running on cpu" in err and "HTTP 404" in err and "preparing" not in err
    assert not (run / "pretrain").exists() and not (tmp_path / "cache" / "stores").exists()
    monkeypatch.setenv("MGSR_VGG19_URL", server.url(name))
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "preparing" in err and "validating on 1 held-out training images" in err
    assert len(json.loads((run / "holdout.json").read_text())["sources"]) == 1
    pretrained = (run / "pretrain" / "generator.safetensors").stat().st_mtime_ns
    [store] = [p for p in (tmp_path / "cache" / "stores").iterdir() if p.is_dir()]
    arrays = {p.name: p.stat().st_mtime_ns for p in (store / "arrays").iterdir()}
    shutil.rmtree(run / "checkpoints")  # the crash: the pre-training exported, the objective left nothing
    (run / "generator.safetensors").unlink()
    (run / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in (run / "metrics.jsonl").read_text().splitlines() if '"pretrain"' in line)
    )
    assert main([*args, "-q", "--resume", "auto"]) == 0, capsys.readouterr().err
    assert (run / "pretrain" / "generator.safetensors").stat().st_mtime_ns == pretrained
    stages = [(r["stage"], r["step"]) for r in records(run) if "loss/total" in r]
    assert stages == [("pretrain", 1), ("pretrain", 2), ("train", 1)]
    validation = [r for r in records(run) if "val/rmse_w0" in r]
    assert [(r["stage"], r["step"]) for r in validation] == [("pretrain", 2), ("train", 1)]
    assert all({"val/period2_ratio_w0", "val/phase_spread"} <= set(r) for r in validation)
    # the pre-training trains no W above 0: scored at W = 0 only; the objective at both
    assert ["val/period2_ratio_w1" in r and "val/rmse_w1" in r for r in validation] == [False, True]
    assert len(arrays) == 10 and {p.name: p.stat().st_mtime_ns for p in (store / "arrays").iterdir()} == arrays
    assert [p for p in (tmp_path / "cache" / "stores").iterdir() if p.is_dir()] == [store]  # prepared once


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from ..helpers import make_images

    monkeypatch.setenv("MGSR_CACHE", str(tmp_path / "cache"))
    data = make_images(tmp_path / "photos", [(64, 48)] * 3)
    recipe = staged_recipe(tmp_path)
    args = [
        "train",
        str(recipe),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--dry-run",
        "--set",
        "data.target_megapixels=0.002",
        "--set",
        "pretrain.steps=40",
        "--set",
        "training.steps=500",
        "--set",
        "training.discriminator_warmup_steps=100",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "device      cpu (no CUDA device;" in out
    assert "3 training images, resized to 0.002 Mpx" in out and "not prepared yet" in out
    assert "stage 'pretrain'  40 steps" in out and "l1 1 (W 0)" in out
    assert "stage 'train'  500 steps" in out and f"starts from {tmp_path / 'run' / 'pretrain'}" in out
    assert out.count("measured over 3 steps each") == 2 and "GiB resident" in out
    pretrain, objective = [line for line in out.splitlines() if "measured over" in line]
    assert "s/step full" in pretrain and "D warm-up" not in pretrain  # no discriminator in the pre-training
    # the objective's 100 warm-up steps train only D: timed apart from its 400 full steps, and weighted
    assert "s/step D warm-up" in objective and "s/step full" in objective and "for 500 steps" in objective
    assert "start       stage 'pretrain' from its first step" in out
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # nothing trained or prepared
