"""Weights files: round trip, corrupt and foreign files, architecture mismatch, safe loading."""

from __future__ import annotations

import json
import pickle

import attrs
import pytest
import torch

import mgsr
from mgsr.assembly.loading import load_generator
from mgsr.errors import WeightsError
from mgsr.model.official import import_official
from mgsr.model.weights import ModelCard, save_generator

from ..conftest import RECIPES


@pytest.fixture
def small_spec():
    spec = mgsr.load_recipe(RECIPES / "pirm_r3.toml").model
    return attrs.evolve(spec, features=8, default_noise=0.25)


def test_roundtrip_keeps_weights_spec_and_card(tmp_path, small_spec):
    generator = mgsr.build_generator(small_spec)
    path = save_generator(tmp_path / "g.safetensors", generator, small_spec, ModelCard("mine", 0.25))
    loaded = load_generator(path)
    assert loaded.spec == small_spec and loaded.card.name == "mine" and loaded.card.default_noise == 0.25
    for key, tensor in generator.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_run_folder_is_accepted(tmp_path, small_spec):
    save_generator(tmp_path / "generator.safetensors", mgsr.build_generator(small_spec), small_spec)
    assert load_generator(tmp_path).features == 8
    with pytest.raises(WeightsError, match="folder without generator.safetensors"):
        load_generator(tmp_path / "..")


def test_corrupt_and_foreign_files_name_the_file(tmp_path, small_spec):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match="bad.safetensors"):
        load_generator(bad)
    good = save_generator(tmp_path / "trunc.safetensors", mgsr.build_generator(small_spec), small_spec)
    good.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="trunc.safetensors"):
        load_generator(good)
    with pytest.raises(WeightsError, match="unknown model 'nothing-here'"):
        load_generator("nothing-here")


def test_architecture_mismatch_lists_keys(tmp_path, small_spec):
    path = save_generator(tmp_path / "small.safetensors", mgsr.build_generator(small_spec), small_spec)
    full = mgsr.build(RECIPES / "pirm_r3.toml").generator
    from mgsr.model.weights import load_weights_into

    with pytest.raises(
        WeightsError, match=r"\d+ shape mismatches: analysis\.block\.layers\.0\.act_in\.bias \(8,\) vs \(48,\)"
    ) as info:
        load_weights_into(full, path)
    assert "small.safetensors" in str(info.value)


def test_official_importer_refuses_pickled_objects(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # unpickling would create the marker file

    path = tmp_path / "evil.model"
    with open(path, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(WeightsError, match="evil.model"):
        import_official(path)
    assert not marker.exists()  # refused, not run


def test_official_importer_refuses_other_state_dicts(tmp_path):
    path = tmp_path / "other.model"
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="features.0.weight"):
        import_official(path)


def test_malformed_model_card_is_a_weights_error(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from mgsr.model.weights import bundled_path

    with safe_open(str(bundled_path("pirm-r3")), "pt") as fh:
        meta = dict(fh.metadata())
    meta["mgsr.card"] = json.dumps({"default_noise": "high"})
    target = tmp_path / "edited.safetensors"
    save_file(load_file(str(bundled_path("pirm-r3"))), str(target), metadata=meta)
    with pytest.raises(WeightsError, match="model card is invalid"):
        mgsr.load_generator(target)


def test_a_card_s_json_form_has_one_home(tmp_path, small_spec):
    """What the writers put in the header (ModelCard.to_json) is what the loader reads (ModelCard.from_json)."""
    from mgsr.model.card import PDCurve
    from mgsr.model.weights import CARD_KEY, read_weights

    curve = PDCurve((0.0, 0.5), (1.0, 2.0), (6.0, 4.0), "a set", ("a.png",), 4, {"name": "p"}, "mgsr ...")
    card = ModelCard("mine", 0.25, source="here", license="MIT", curve=curve)
    assert ModelCard.from_json(card.to_json(), name="other", default_noise=1.0) == card
    path = save_generator(tmp_path / "g.safetensors", mgsr.build_generator(small_spec), small_spec, card)
    assert read_weights(path)[1][CARD_KEY] == card.to_json()
    assert load_generator(path).card == card
    bare = ModelCard.from_json("{}", name="stem", default_noise=0.5)  # a header without the keys
    assert bare == ModelCard("stem", 0.5)
    with pytest.raises(AttributeError):  # not an object: the loader names the file ("model card is invalid")
        ModelCard.from_json("[]", name="stem", default_noise=0.5)
