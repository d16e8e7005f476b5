"""The registry: hookspecs, built-ins, inline plugins, conflicts and broken plugins."""

from __future__ import annotations

import inspect
import math

import attrs
import cattrs
import numpy as np
import pytest
import torch

import mgsr
from mgsr import hookimpl, hookspecs
from mgsr.assembly.build import part_builder
from mgsr.errors import DuplicateComponentError, PluginError, UnknownComponentError
from mgsr.interfaces import FilterBlock
from mgsr.kinds import BY_NAME, KINDS
from mgsr.recipe import make_converter, resolve_parts
from mgsr.registry import Registry, make_plugin_manager
from mgsr.specs import DiscriminatorSpec


def test_the_built_in_plugin_list_and_the_entry_points_agree():
    """DEFAULT_PLUGINS (registered first, in order) and pyproject's ``mgsr`` entry points (what an installed
    mgsr declares) name the same modules, each entry point under its module's name, and every module of
    plugins/ is one of them: a plugin added, renamed or removed in one place only fails here."""
    import tomllib

    from mgsr.registry import DEFAULT_PLUGINS

    from ..conftest import REPO

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["mgsr"]
    assert sorted(declared.values()) == sorted(DEFAULT_PLUGINS)
    assert all(module == f"mgsr_plugins.{name}" for name, module in declared.items())
    files = {f"mgsr_plugins.{p.stem}" for p in (REPO / "plugins").glob("*.py") if p.stem != "__init__"}
    assert files == set(DEFAULT_PLUGINS)


def test_every_hookspec_is_documented_and_known():
    specs = {n: f for n, f in vars(hookspecs).items() if n.startswith("mgsr_") and inspect.isfunction(f)}
    assert set(specs) == {kind.hook_name for kind in KINDS}
    for name, func in specs.items():
        doc = inspect.getdoc(func) or ""
        assert doc.splitlines()[0].startswith("Return the "), name
        assert ":return:" in doc and ".. versionadded::" in doc, name


def test_builtins_are_registered(builtin_registry):
    assert builtin_registry.names("filter_block") == ["dense"]
    assert builtin_registry.names("classic_upscaler") == ["learned_bicubic"]
    assert builtin_registry.names("noise_source") == ["gaussian"]
    assert builtin_registry.names("metric") == ["cx", "l1", "lpips", "niqe", "period2", "psnr", "rmse", "ssim"]
    assert mgsr.list_components("filter_block", builtin_registry) == ["dense"]
    assert builtin_registry.providers("filter_block", "dense")[0].plugin.name == "mgsr_plugins.dense"


def test_builtins_come_from_entry_points_when_installed():
    registry = mgsr.default_registry()
    info = registry.providers("filter_block", "dense")[0].plugin
    assert info.distribution == "mgsr"


#: Settings a built-in needs to build offline (its default reads a weights file that CI does not have).
OFFLINE = {
    ("feature_extractor", "vgg19"): {"pretrained": False},
    ("loss", "contextual"): {"features": {"type": "vgg19", "layer": "conv1_2", "pretrained": False}},
    ("metric", "cx"): {"features": {"type": "vgg19", "layer": "conv1_2", "pretrained": False}, "max_side": 32},
    ("metric", "lpips"): {"pretrained": False},
}


def spec_class(kind):
    """The recipe spec class of a kind, from its one declaration in mgsr.kinds."""
    return BY_NAME[kind].spec


def _run_component(kind, module, registry):
    """Run a built component on a tiny input; return the output shape and the shape expected."""
    if kind in ("filter_block", "classic_upscaler"):
        y = module(torch.rand(1, 4, 6, 7))
        return y.shape, ((1, 4, 12, 14) if kind == "classic_upscaler" else (1, 4, 6, 7))
    if kind == "discriminator_input":
        return module(torch.rand(2, 3, 6, 7)).shape, (2, module.out_channels, 6, 7)
    if kind == "feature_extractor":
        y = module(torch.rand(1, 3, 8, 8))
        return y.shape[:1], (1,)
    if kind == "discriminator":
        return module([torch.rand(2, 3, 4, 5), torch.rand(2, 3, 8, 10)]).shape, (2,)
    if kind == "loss":
        targets = [torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)]
        outputs = {w: [x.clamp(0.1, 0.9) for x in targets] for w in module.config.noise}
        tiny = {
            "type": "multiscale_recursive",
            "features": 4,
            **{part: {"type": "dense", "layers": 1, "growth": 2} for part in ("analysis", "pooling", "synthesis")},
        }
        discriminator = part_builder(registry)(make_converter(registry).structure(tiny, DiscriminatorSpec), channels=3)
        value = module(outputs, targets, discriminator=discriminator)
        assert torch.isfinite(value)
        return value.shape, ()
    raise AssertionError(f"no tiny run defined for kind {kind}")


@pytest.mark.parametrize("kind_name", [(k.name, n) for k in KINDS for n in mgsr.default_registry().names(k.name)])
def test_every_component_builds_roundtrips_and_runs(kind_name):
    """As timm does for models: every registered component's default Config works."""
    kind, name = kind_name
    registry = mgsr.default_registry()
    cls = registry.get(kind, name)
    conv = make_converter(registry)
    spec_type = spec_class(kind)
    # What a recipe gets when it names only the type: the default Config with the parts it names resolved.
    resolved = conv.structure({"type": name}, spec_type).config
    assert resolve_parts(cls.Config(), registry) == resolved
    assert conv.structure(conv.unstructure(spec_type(name, resolved)), spec_type).config == resolved
    config = conv.structure({"type": name, **OFFLINE.get(kind_name, {})}, spec_type).config
    if kind == "noise_source":
        z = cls(config).sample((2, 1, 4, 5), generator=torch.Generator().manual_seed(0))
        assert z.shape == (2, 1, 4, 5)
        return
    if kind == "metric":
        rng = np.random.default_rng(0)
        output, reference = rng.integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
        metric = part_builder(registry)(spec_type(name, config))
        value = metric.score(output, reference if cls.needs_reference else None)
        assert math.isfinite(value) and math.isfinite(metric.aggregate([value, value]))
        return
    arch = {
        "feature_extractor": {},
        "loss": {},
        "discriminator": {"channels": 3},
        "discriminator_input": {"channels": 3},
    }
    module = part_builder(registry)(spec_type(name, config), **arch.get(kind, {"channels": 4}))
    shape, expected = _run_component(kind, module, registry)
    assert tuple(shape) == tuple(expected)


class TinyBlock(FilterBlock):
    name = "tiny"

    @attrs.frozen
    class Config:
        scale: float = 1.0

    def forward(self, x):
        return x * self.config.scale


class InlinePlugin:
    @hookimpl
    def mgsr_filter_blocks(self):
        return [TinyBlock]


def test_inline_plugin_registers_and_builds():
    pm = make_plugin_manager(autoload=False)
    pm.register(InlinePlugin(), name="inline")
    registry = Registry.from_plugin_manager(pm)
    assert registry.get("filter_block", "tiny") is TinyBlock


def test_duplicate_names_are_an_error_that_names_both_plugins():
    class Clash:
        @hookimpl
        def mgsr_filter_blocks(self):
            return [type("OtherDense", (TinyBlock,), {"name": "dense"})]

    pm = make_plugin_manager(autoload=False)
    pm.register(Clash(), name="acme")
    registry = Registry.from_plugin_manager(pm)
    with pytest.raises(DuplicateComponentError) as info:
        registry.get("filter_block", "dense")
    message = str(info.value)
    assert "mgsr_plugins.dense" in message and "'acme'" in message and "MGSR_DISABLED_PLUGINS=acme" in message
    assert registry.duplicates()[0][:2] == ("filter_block", "dense")


def test_unknown_name_suggests_the_close_one(builtin_registry):
    with pytest.raises(
        UnknownComponentError, match=r"unknown filter_block 'dence' \(did you mean 'dense'\?\); available: dense"
    ):
        builtin_registry.get("filter_block", "dence")


def test_misspelled_hook_fails_loudly():
    class Misspelled:
        @hookimpl
        def mgsr_filter_block(self):  # singular: not a hook mgsr defines
            return []

    pm = make_plugin_manager(autoload=False, builtins=False)
    pm.register(Misspelled(), name="typo")
    with pytest.raises(Exception, match="mgsr_filter_block"):
        pm.check_pending()


def test_component_without_proper_identity_is_reported_broken():
    class NoName(FilterBlock):
        Config = TinyBlock.Config

        def forward(self, x):
            return x

    class NotFrozen(TinyBlock):
        name = "not_frozen"

        @attrs.define
        class Config:
            a: int = 1

    class Bad:
        @hookimpl
        def mgsr_filter_blocks(self):
            return [NoName, NotFrozen, int]

    pm = make_plugin_manager(autoload=False)
    pm.register(Bad(), name="bad")
    with pytest.warns(UserWarning):
        registry = Registry.from_plugin_manager(pm)
    errors = " | ".join(b.error for b in registry.broken)
    assert "name must be" in errors and "frozen" in errors and "not a subclass" in errors
    assert registry.names("filter_block") == ["dense"]


def test_wrong_hook_signature_is_a_plugin_error():
    class WrongArgs:
        @hookimpl
        def mgsr_filter_blocks(self, unexpected):
            return []

    pm = make_plugin_manager(autoload=False)
    from mgsr.registry import PluginInfo

    with pytest.raises(PluginError, match="plugin 'wrong'"):
        pm.register_plugin(WrongArgs(), PluginInfo(name="wrong", module="tests"))


def test_registry_is_immutable(builtin_registry):
    with pytest.raises(TypeError):
        builtin_registry.components["filter_block"]["x"] = ()  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        builtin_registry.plugins = ()  # type: ignore[misc]


def test_converter_is_strict_about_bools():
    conv = make_converter(None)
    with pytest.raises(cattrs.errors.ClassValidationError):
        conv.structure(
            {"trainable": "false"}, mgsr.default_registry().get("classic_upscaler", "learned_bicubic").Config
        )
