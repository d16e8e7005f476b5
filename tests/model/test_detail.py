"""The detail scale: t -> W through a model's measured curve, the curve in the card, --detail on the CLI and API."""

from __future__ import annotations

import csv
import itertools
import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from PIL import Image

import mgsr
from mgsr.assembly.loading import MODELS, load_generator
from mgsr.cli import main
from mgsr.errors import MgsrError, WeightsError
from mgsr.evaluation.curve import measure_curve
from mgsr.evaluation.scoring import Evaluation
from mgsr.model.card import ModelCard, PDCurve
from mgsr.model.detail import detail_for_noise, implied_noise, noise_for_detail, refuse_noise_and_detail
from mgsr.model.weights import BUNDLED, bundled_path, read_weights, save_generator, write_card

from ..conftest import RECIPES

#: shaped like R3's path on photos: RMSE overshoots and falls back, NIQE rises again, a flat stretch in between
CURVE = PDCurve(
    noise=(0.0, 0.005, 0.01, 0.02, 0.04, 0.1, 0.3, 1.0),
    rmse=(8.10, 8.09, 8.27, 9.02, 9.33, 9.43, 9.43, 9.41),
    niqe=(7.53, 7.42, 5.83, 4.45, 4.38, 4.33, 4.33, 4.36),
    image_set="test",
    images=("a.png",),
    scale=4,
    protocol={"name": "pirm2018"},
    command="mgsr ...",
)
CARD = ModelCard("r3-like", 1.0, curve=CURVE)


def test_detail_is_monotone_from_zero_to_the_top():
    ts = np.linspace(0, 1, 201)
    noises = [noise_for_detail(CARD, t) for t in ts]
    assert noises[0] == 0.0 and noises[-1] == CURVE.noise[-1]
    assert all(b >= a for a, b in itertools.pairwise(noises))
    # where the curve moves, W moves little per step of t; where it is flat, W jumps: R3's 0..0.04 gets most of t
    assert noise_for_detail(CARD, 0.8) < 0.04


def test_a_curve_that_starts_or_ends_flat_still_spans_zero_to_the_top():
    flat_ends = attrs.evolve(CURVE, rmse=(8.1, 8.1, *CURVE.rmse[2:-1], 9.43), niqe=(7.5, 7.5, *CURVE.niqe[2:-1], 4.33))
    card = ModelCard("flat", 1.0, curve=flat_ends)
    assert noise_for_detail(card, 0.0) == 0.0 and noise_for_detail(card, 1.0) == 1.0
    assert 0.005 < noise_for_detail(card, 1e-9) < 0.006  # the first W where it moves
    assert noise_for_detail(card, 1 - 1e-9) == pytest.approx(0.1, rel=1e-6)  # where it stops moving


def test_detail_and_noise_round_trip():
    for t in np.linspace(0, 1, 41):
        assert detail_for_noise(CARD, noise_for_detail(CARD, t)) == pytest.approx(t, abs=1e-12)
    for w in (0.0, 0.003, 0.0125, 0.07, 0.5):  # inside segments where the curve moves
        assert noise_for_detail(CARD, detail_for_noise(CARD, w)) == pytest.approx(w, rel=1e-9)
    assert detail_for_noise(CARD, 5.0) == 1.0


def test_a_model_without_a_curve_names_the_fix():
    with pytest.raises(WeightsError, match=r"no perception-distortion curve.*mgsr calibrate --curve"):
        noise_for_detail(ModelCard("plain", 1.0), 0.5)
    with pytest.raises(MgsrError, match=r"detail must be a number in \[0, 1\]"):
        noise_for_detail(CARD, 1.5)


def test_bundled_models_carry_curves_that_end_at_their_recorded_w():
    for name, (_, recorded) in BUNDLED.items():
        card = load_generator(name).card
        assert card.curve is not None and card.curve.scale == 4 and len(card.curve.noise) >= 10
        assert noise_for_detail(card, 0.0) == 0.0 and noise_for_detail(card, 1.0) == recorded


def test_the_curve_round_trips_through_the_weights_header(tmp_path):
    spec = attrs.evolve(mgsr.load_recipe(RECIPES / "pirm_r3.toml").model, features=8)
    generator = mgsr.build_generator(spec)
    path = save_generator(tmp_path / "g.safetensors", generator, spec, ModelCard("mine", 0.5))
    assert load_generator(path).card.curve is None
    before, _ = read_weights(path)
    write_card(path, attrs.evolve(load_generator(path).card, curve=CURVE))
    loaded = load_generator(path)
    assert loaded.card == ModelCard("mine", 0.5, curve=CURVE)
    after, _ = read_weights(path)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def _fake_evaluation(rmse: float, niqe: float) -> Evaluation:
    return Evaluation(
        {"name": "pirm2018"}, ("rmse", "niqe"), {"rmse": False, "niqe": False}, (), {"rmse": rmse, "niqe": niqe}, ()
    )


def test_the_measured_grid_is_refined_where_the_curve_moves():
    def evaluate(w: float) -> Evaluation:  # moves only between W = 0.01 and 0.03, like R3
        x = min(max((w - 0.01) / 0.02, 0.0), 1.0)
        return _fake_evaluation(8 + x, 7.5 - 3 * x)

    points = measure_curve(evaluate, 1.0, count=6, max_points=14, step=0.1)
    noises = [p.noise for p in points]
    assert noises == sorted(noises) and noises[0] == 0.0 and noises[-1] == 1.0
    assert len(points) > 7 and sum(0.01 <= w <= 0.03 for w in noises) >= 4


@pytest.fixture(scope="module")
def curved_model(tmp_path_factory):
    """pirm-r3's weights with CURVE in their card."""
    path = tmp_path_factory.mktemp("model") / "r3.safetensors"
    shutil.copy(bundled_path("pirm-r3"), path)
    write_card(path, ModelCard("r3-like", 1.0, curve=CURVE))
    return path


@pytest.fixture(scope="module")
def tiny_image(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    rgb = np.asarray(Image.open(reference / "images" / "astronaut.png").convert("RGB"))
    Image.fromarray(rgb[20:52, 100:132]).save(path)
    return path


def test_upscale_detail_is_upscale_noise_at_the_w_it_prints(curved_model, tiny_image, tmp_path, capsys):
    t = 0.5
    w = noise_for_detail(CARD, t)
    assert (
        main(
            [
                "upscale",
                str(tiny_image),
                "-o",
                str(tmp_path / "d.png"),
                "--model",
                str(curved_model),
                "--detail",
                str(t),
            ]
        )
        == 0
    )
    assert f"detail 0.5 means W = {w:.6g}" in capsys.readouterr().err
    assert (
        main(
            [
                "upscale",
                str(tiny_image),
                "-o",
                str(tmp_path / "n.png"),
                "--model",
                str(curved_model),
                "--noise",
                repr(w),
            ]
        )
        == 0
    )
    assert (
        main(["upscale", str(tiny_image), "-o", str(tmp_path / "0.png"), "--model", str(curved_model), "--noise", "0"])
        == 0
    )
    assert (tmp_path / "d.png").read_bytes() == (tmp_path / "n.png").read_bytes()
    assert (tmp_path / "d.png").read_bytes() != (tmp_path / "0.png").read_bytes()
    api = mgsr.upscale(Image.open(tiny_image), model=curved_model, detail=t, tile=None)
    assert np.array_equal(np.asarray(api), np.asarray(Image.open(tmp_path / "n.png")))
    with pytest.raises(MgsrError, match="noise or detail, not both"):
        mgsr.upscale(Image.open(tiny_image), model=curved_model, detail=t, noise=0.1)
    assert main(["upscale", str(tiny_image), "-o", str(tmp_path / "x.png"), "--detail", "0.5", "--noise", "0.1"]) == 1
    MODELS.clear()


def test_upscale_detail_with_a_model_without_a_curve_says_how_to_measure_it(tiny_image, tmp_path, capsys):
    spec = attrs.evolve(mgsr.load_recipe(RECIPES / "pirm_r3.toml").model, features=8)
    path = save_generator(
        tmp_path / "run" / "generator.safetensors", mgsr.build_generator(spec), spec, ModelCard("run", 1.0)
    )
    code = main(
        ["upscale", str(tiny_image), "-o", str(tmp_path / "o.png"), "--model", str(path.parent), "--detail", "0.5"]
    )
    assert code == WeightsError.exit_code and "mgsr calibrate --curve" in capsys.readouterr().err
    MODELS.clear()


@pytest.fixture(scope="module")
def hr_dir(reference, tmp_path_factory):
    """One 104x104 crop: the smallest NIQE scores after the 4-pixel shave."""
    folder = tmp_path_factory.mktemp("hr")
    rgb = np.asarray(Image.open(reference / "images" / "astronaut.png").convert("RGB"))
    Image.fromarray(rgb[:104, 40:144]).save(folder / "astronaut.png")
    return folder


def test_sweep_over_detail_writes_t_and_w(curved_model, hr_dir, tmp_path):
    prefix = tmp_path / "s"
    assert (
        main(
            ["sweep", "--model", str(curved_model), "--hr", str(hr_dir), "--detail", "0,0.5,1", "-q", "-o", str(prefix)]
        )
        == 0
    )
    rows = list(
        csv.DictReader(line for line in Path(f"{prefix}.csv").read_text().splitlines() if not line.startswith("#"))
    )
    assert [float(r["detail"]) for r in rows] == [0.0, 0.5, 1.0]
    assert [float(r["noise"]) for r in rows] == [noise_for_detail(CARD, t) for t in (0.0, 0.5, 1.0)]
    assert float(rows[0]["rmse"]) != float(rows[2]["rmse"])
    assert (
        main(
            [
                "sweep",
                "--model",
                str(curved_model),
                "--hr",
                str(hr_dir),
                "--detail",
                "0:1:3",
                "--noise",
                "0,1",
                "-o",
                str(prefix),
            ]
        )
        == 6
    )


def test_calibrate_curve_measures_and_writes_the_card(hr_dir, tmp_path, capsys):
    model = tmp_path / "run" / "generator.safetensors"
    model.parent.mkdir()
    shutil.copy(bundled_path("pirm-r3"), model)
    write_card(model, ModelCard("run", 1.0))
    out = tmp_path / "curve.json"
    assert (
        main(
            [
                "calibrate",
                "--curve",
                "--model",
                str(model.parent),
                "--hr",
                str(hr_dir),
                "--points",
                "2",
                "--max-points",
                "3",
                "--write-card",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    curve = load_generator(model.parent).card.curve
    assert curve.noise[0] == 0.0 and curve.noise[-1] == 1.0 and len(curve.noise) == 3
    assert curve.images == ("astronaut.png",) and "--curve" in curve.command and curve.protocol["name"] == "pirm2018"
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert 0.0 < noise_for_detail(load_generator(model.parent).card, 0.5) < 1.0
    assert main(["calibrate", "--model", str(model.parent), "--hr", str(hr_dir)]) == 6  # neither budget nor curve
    MODELS.clear()


def test_implied_noise_is_the_detail_w_else_the_recorded_w():
    """The one home of "detail -> W, else the model's W" (mgsr upscale, its videos and mgsr.upscale call it)."""
    spec = attrs.evolve(mgsr.load_recipe(RECIPES / "pirm_r3.toml").model, features=8, default_noise=0.25)
    generator = mgsr.build_generator(spec)
    assert implied_noise(generator) == 0.25  # no card: the spec's W
    generator.card = CARD
    assert implied_noise(generator) == CARD.default_noise
    assert implied_noise(generator, 0.5) == noise_for_detail(CARD, 0.5)
    generator.card = ModelCard("flat", 0.25)
    with pytest.raises(WeightsError, match="model 'flat' has no perception-distortion curve.*mgsr calibrate --curve"):
        implied_noise(generator, 0.5)
    # the scale's ends need no curve (ComfyUI's node, mgsr upscale and mgsr.upscale alike): 0 is W = 0, 1 the W
    assert (implied_noise(generator, 0.0), implied_noise(generator, 1.0)) == (0.0, generator.default_noise)
    generator.card = None
    assert (implied_noise(generator, 0.0), implied_noise(generator, 1.0)) == (0.0, 0.25)


def test_noise_and_detail_together_are_refused_in_the_callers_words():
    refuse_noise_and_detail(None, 0.5)
    refuse_noise_and_detail(0.1, None)
    with pytest.raises(MgsrError) as api:
        refuse_noise_and_detail(0.0, 0.5)  # W = 0 is given too: only None is "not given"
    assert str(api.value) == "give noise or detail, not both: detail t in [0, 1] chooses the noise W itself"
    with pytest.raises(MgsrError) as cli:
        refuse_noise_and_detail([0.1, 1.0], 0.5, options=True)
    assert str(cli.value) == "give --noise or --detail, not both: --detail T chooses the noise W itself"


def test_upscale_refuses_noise_and_detail_before_loading_the_model(tmp_path, capsys):
    missing = tmp_path / "no-such-model.safetensors"
    code = main(
        ["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--model", str(missing)]
        + ["--noise", "0", "--detail", "0.5"]
    )
    assert code == MgsrError.exit_code
    assert "--detail T chooses the noise W itself" in capsys.readouterr().err
