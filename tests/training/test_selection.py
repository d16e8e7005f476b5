"""training.export = "best_knob": the run exports the validated weights with the best knob, and keeps the choice
over a resume; what disqualifies a validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.assembly.loading import load_generator
from mgsr.errors import RecipeError, TrainingError
from mgsr.recipe import load_recipe
from mgsr.registry import default_registry
from mgsr.training.checkpoint import checkpoint_name, load_checkpoint
from mgsr.training.run import train
from mgsr.training.selection import BestKnob, disqualified, knob_gap

from ..conftest import RECIPES
from ..helpers import tiny_recipe

#: a validation a user would accept: W = 0 beats bicubic, W = 1 looks more natural at 1.1x the RMSE, no grid
GOOD = {
    "val/niqe_w0": 7.0,
    "val/niqe_w1": 5.5,
    "val/rmse_w0": 10.0,
    "val/rmse_w1": 11.0,
    "val/rmse_bicubic": 11.5,
    "val/period2_ratio_w0": 0.8,
    "val/period2_ratio_w1": 1.2,
    "val/phase_spread": 0.004,
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"val/rmse_w0": 11.5}, "bicubic"),
        ({"val/rmse_w1": 13.5}, "1.350x"),
        ({"val/period2_ratio_w1": 3.0}, "val/period2_ratio_w1"),
        ({"val/period2_ratio_w0": 2.5}, "val/period2_ratio_w0"),
        ({"val/phase_spread": 0.02}, "phase"),
        ({"val/niqe_w1": float("nan")}, None),  # a NaN gap is never "lower"
    ],
)
def test_what_disqualifies_a_validation(change, reason):
    assert disqualified(7, GOOD) is None
    scores = {**GOOD, **change}
    if reason is None:
        assert not BestKnob().consider(7, scores, torch.nn.Linear(1, 1))
    else:
        assert reason in disqualified(7, scores)
        assert not BestKnob().consider(7, scores, torch.nn.Linear(1, 1))
    missing = dict(GOOD)
    del missing["val/niqe_w1"]
    assert knob_gap(missing) is None and "val/niqe_w1" in disqualified(7, missing)


def test_the_lowest_qualified_gap_is_kept_and_loaded():
    module = torch.nn.Linear(2, 2)
    best = BestKnob()
    kept = {}
    for step, (niqe_w1, grid) in enumerate([(6.0, 1.0), (4.0, 3.0), (5.0, 1.0), (5.8, 1.0)], start=1):
        with torch.no_grad():
            module.weight.fill_(step)
        if best.consider(step, {**GOOD, "val/niqe_w1": niqe_w1, "val/period2_ratio_w1": grid}, module):
            kept[step] = step
    assert list(kept) == [1, 3]  # step 2's lower gap has a grid; step 4 is worse than step 3
    assert best.step == 3 and best.gap == pytest.approx(-2.0)
    with torch.no_grad():
        module.weight.fill_(9.0)
    assert "step 3 of 4" in best.chosen(module, 4)
    assert torch.equal(module.weight, torch.full((2, 2), 3.0))
    copy = BestKnob()
    copy.load_state_dict(best.state_dict())
    assert copy.step == 3 and torch.equal(copy.weights["weight"], best.weights["weight"])


def test_nothing_qualified_exports_the_last_step_and_says_so():
    module = torch.nn.Linear(1, 1)
    before = module.weight.detach().clone()
    with pytest.warns(UserWarning, match="no validation qualified"):
        assert "step 5" in BestKnob().chosen(module, 5)
    assert torch.equal(module.weight, before)


def test_a_wrong_export_value_is_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="training.export.*best_knob"):
        load_recipe(tiny_recipe(tmp_path), default_registry(), overrides=['training.export="best"'])


def test_best_knob_needs_validation_images(tmp_path):
    with pytest.raises(TrainingError, match="no validation images"):
        train(
            tiny_recipe(tmp_path),
            out=str(tmp_path / "run"),
            progress=False,
            overrides=["data.val=[]", "data.holdout=0", 'training.export="best_knob"'],
        )


def test_best_knob_needs_images_niqe_can_score(tmp_path):
    with pytest.raises(TrainingError, match="96x96"):
        train(
            tiny_recipe(tmp_path),
            out=str(tmp_path / "run"),
            progress=False,
            overrides=['training.export="best_knob"'],  # samples:val cropped to 32x32
        )


def _photo_crops(reference, folder):
    """Two 128x128 crops of reference photos: the released model beats bicubic on them, without a grid."""
    folder.mkdir()
    for name, (top, left) in {"astronaut": (40, 100), "coffee": (60, 120)}.items():
        photo = np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"))
        Image.fromarray(photo[top : top + 128, left : left + 128]).save(folder / f"{name}.png")
    return folder


def _fine_tune(recipe, out, val, steps, resume=None, extra=()):
    overrides = [
        '[{type = "gan", weight = 0.01, noise = [1.0]}, {type = "l1", weight = 10.0, noise = [0.0]}]',
        "training.scales=[1, 2]",
        "training.batch_size=2",
        "data.patch_size=32",
        "data.target_megapixels=none",
        "data.workers=0",
        'data.train=["samples:train"]',
        f"data.val=[{json.dumps(str(val))}]",
        "data.val_crop=none",
        "training.discriminator_warmup_steps=0",
        "training.lr=0.003",  # steps large enough that every validation scores differently
        f"training.steps={steps}",
        "training.validate_every=1",
        "training.checkpoint_every=1",
        "training.keep_checkpoints=10",
        "training.sample_every=100",
        "training.log_every=1",
        'training.export="best_knob"',
        *extra,
    ]
    overrides[0] = "losses=" + overrides[0]
    train(recipe, out=str(out), progress=False, overrides=overrides, resume=resume)


def test_the_run_exports_the_best_validated_knob_and_a_resume_keeps_it(tmp_path, reference):
    val = _photo_crops(reference, tmp_path / "val")
    recipe = RECIPES / "finetune_r3.toml"
    run = tmp_path / "run"
    _fine_tune(recipe, run, val, steps=3)
    _fine_tune(recipe, run, val, steps=4, resume="auto")  # the choice so far travels in the checkpoint
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = {r["step"]: r for r in records if "val/niqe_w1" in r}
    assert sorted(scored) == [1, 2, 3, 4]
    gaps = {s: r["val/niqe_w1"] - r["val/niqe_w0"] for s, r in scored.items() if disqualified(s, r) is None}
    assert gaps, "the released model fine-tuned a few steps should qualify at least once on photo crops"
    best = min(gaps, key=gaps.get)
    exported = load_generator(run)
    card = exported.card
    kept = load_checkpoint(run / "checkpoints" / checkpoint_name(best))["generator"]
    for key, tensor in exported.state_dict().items():
        assert torch.equal(tensor, kept[key]), key
    assert f"step {best} of 4" in card.source
    if best != 4:  # the last step's weights are not what was exported (nor, after the resume, step 4's alone)
        last = load_checkpoint(run / "checkpoints" / checkpoint_name(4))["generator"]
        assert any(not torch.equal(t, last[k]) for k, t in exported.state_dict().items())
    assert [r["step"] for r in records if "val/best_knob_step" in r][-1] == best


def test_the_discriminator_warm_up_is_never_the_best_knob(tmp_path, reference):
    """While only D trains, G is the stage's start (for knob_cpu: the pre-training, whose W = 1 is untrained):
    its validations are watched but never exported as the best knob, however they score."""
    val = _photo_crops(reference, tmp_path / "val")
    run = tmp_path / "run"
    _fine_tune(RECIPES / "finetune_r3.toml", run, val, steps=3, extra=["training.discriminator_warmup_steps=2"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = {r["step"]: r for r in records if "val/niqe_w1" in r}
    assert sorted(scored) == [1, 2, 3]
    assert all(disqualified(s, scored[s]) is None for s in (1, 2))  # the released knob: it would qualify
    assert [r["step"] for r in records if "val/best_knob_step" in r] in ([3], [])
    assert "step 1 " not in load_generator(run).card.source and "step 2 " not in load_generator(run).card.source
