"""Plugin discovery: a pluggy manager plus the ``mgsr`` entry points, frozen into a Registry.

Nothing here is module-level mutable state.  ``make_plugin_manager`` builds a
manager (built-ins first, then third-party entry points) and
``Registry.from_plugin_manager`` asks every plugin for its components once and
freezes the answer.  The host looks components up by kind and name through a
Registry it is handed; it never imports a plugin module by name.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
import pluggy

from mgsr import hookspecs
from mgsr.errors import DuplicateComponentError, PluginError, UnknownComponentError
from mgsr.kinds import KINDS

ENTRY_POINT_GROUP = "mgsr"

#: The built-in plugins, registered first and the same way a third party's are.
#: They are also declared as entry points, which are skipped when already registered.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "mgsr_plugins.dense",
    "mgsr_plugins.learned_bicubic",
    "mgsr_plugins.gaussian",
    "mgsr_plugins.vn_sc",
    "mgsr_plugins.multiscale_recursive",
    "mgsr_plugins.adversarial",
    "mgsr_plugins.contextual",
    "mgsr_plugins.reconstruction",
    "mgsr_plugins.vgg19",
    "mgsr_plugins.full_reference",
    "mgsr_plugins.niqe",
    "mgsr_plugins.cx",
    "mgsr_plugins.period2",
    "mgsr_plugins.lpips",
)

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@attrs.frozen
class PluginInfo:
    """Where a plugin comes from: its registered name, module and distribution."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        where = self.module if self.module != self.name else ""
        dist = f"{self.distribution} {self.version}" if self.distribution else ""
        extra = ", ".join(x for x in (where, dist) if x)
        return f"plugin '{self.name}'" + (f" ({extra})" if extra else "")


@attrs.frozen
class BrokenPlugin:
    """A plugin that could not be used, kept so errors and ``mgsr plugins`` can name it."""

    info: PluginInfo
    error: str


@attrs.frozen
class Provided:
    """One component class and the plugin that provides it."""

    cls: type
    plugin: PluginInfo


class MgsrPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers distributions and plugins that failed to load."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.broken: list[BrokenPlugin] = []

    def register_plugin(self, plugin: Any, info: PluginInfo) -> None:
        """Register ``plugin`` under ``info.name``, turning pluggy's validation errors into ours."""
        try:
            self.register(plugin, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{info.describe()} is invalid: {exc}") from exc
        self.infos[info.name] = info


def _disabled_names() -> set[str]:
    raw = os.environ.get("MGSR_DISABLED_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _autoload_disabled() -> bool:
    return os.environ.get("MGSR_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() not in ("", "0", "false", "no")


def make_plugin_manager(autoload: bool | None = None, builtins: bool = True) -> MgsrPluginManager:
    """Return a plugin manager holding the built-ins and, unless disabled, the entry-point plugins.

    ``autoload=None`` follows ``MGSR_DISABLE_PLUGIN_AUTOLOAD``; tests pass ``False``
    (and ``builtins=False`` for a completely empty manager) to register inline plugins.
    ``MGSR_DISABLED_PLUGINS=a,b`` skips plugins by entry-point, plugin or distribution name.
    """
    pm = MgsrPluginManager()
    disabled = _disabled_names()
    if builtins:
        for module_name in DEFAULT_PLUGINS:
            if module_name in disabled or module_name.rsplit(".", 1)[-1] in disabled:
                continue
            module = importlib.import_module(module_name)
            pm.register_plugin(module, PluginInfo(name=module_name, module=module_name))
    if autoload is None:
        autoload = not _autoload_disabled()
    if autoload:
        _load_entry_points(pm, disabled)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        info = pm.infos.get(name, PluginInfo(name=name, module=name))
        raise PluginError(
            f"{info.describe()} implements a hook that mgsr does not define (misspelled?): {exc}"
        ) from exc
    return pm


def _load_entry_points(pm: MgsrPluginManager, disabled: set[str]) -> None:
    seen: set[tuple[str, str]] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = ep.dist.metadata["Name"] if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        if {ep.name, dist_name} & disabled:
            continue
        info = PluginInfo(name=ep.name, module=ep.value, distribution=dist_name, version=version)
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure makes the plugin broken
            pm.broken.append(BrokenPlugin(info, f"{type(exc).__name__}: {exc}"))
            continue
        existing = pm.get_name(plugin)
        if existing is not None:  # a built-in already registered: keep its distribution facts
            old = pm.infos[existing]
            pm.infos[existing] = attrs.evolve(old, distribution=dist_name, version=version)
            continue
        if pm.has_plugin(info.name):  # two distributions use the same entry-point name
            info = attrs.evolve(info, name=f"{ep.name}@{dist_name}")
        pm.register_plugin(plugin, info)


def _component_problem(cls: Any, interface: type) -> str | None:
    if not isinstance(cls, type) or not issubclass(cls, interface):
        return f"{cls!r} is not a subclass of {interface.__module__}.{interface.__name__}"
    name = cls.__dict__.get("name", getattr(cls, "name", None))
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        return f"{cls.__qualname__}.name must be a lower-case identifier string, got {name!r}"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and attrs.has(config)):
        return f"{cls.__qualname__}.Config must be an attrs class"
    if config.__setattr__ is object.__setattr__:
        return f"{cls.__qualname__}.Config must be frozen (use @attrs.frozen)"
    base = getattr(interface, "config_base", None)
    if base is not None and not issubclass(config, base):
        return f"{cls.__qualname__}.Config must subclass {base.__module__}.{base.__qualname__}"
    return None


@attrs.frozen
class Registry:
    """Immutable map kind -> name -> providing plugins, with the plugins and the broken ones."""

    components: Mapping[str, Mapping[str, tuple[Provided, ...]]]
    plugins: tuple[PluginInfo, ...]
    broken: tuple[BrokenPlugin, ...]

    @classmethod
    def from_plugin_manager(cls, pm: MgsrPluginManager) -> Registry:
        """Ask every registered plugin for its components once and freeze the answer."""
        table: dict[str, dict[str, list[Provided]]] = {kind.name: {} for kind in KINDS}
        broken = list(pm.broken)
        infos = dict(pm.infos)
        for kind in KINDS:
            hook_name = kind.hook_name
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                info = infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name)
                try:
                    provided = list(impl.function() or ())
                except Exception as exc:  # noqa: BLE001
                    broken.append(BrokenPlugin(info, f"{hook_name}() raised {type(exc).__name__}: {exc}"))
                    continue
                for comp in provided:
                    problem = _component_problem(comp, kind.interface)
                    if problem:
                        broken.append(BrokenPlugin(info, f"{hook_name}(): {problem}"))
                        warnings.warn(f"{info.describe()}: {problem}", stacklevel=2)
                        continue
                    table[kind.name].setdefault(comp.name, []).append(Provided(comp, info))
        frozen = {
            kind: MappingProxyType({name: tuple(ps) for name, ps in sorted(names.items())})
            for kind, names in table.items()
        }
        return cls(
            components=MappingProxyType(frozen),
            plugins=tuple(infos[n] for n in sorted(infos)),
            broken=tuple(broken),
        )

    def _check_kind(self, kind: str) -> None:
        if kind not in self.components:
            raise UnknownComponentError(f"unknown component kind '{kind}'; kinds: {', '.join(self.components)}")

    def names(self, kind: str) -> list[str]:
        """The names available for ``kind``, sorted."""
        self._check_kind(kind)
        return list(self.components[kind])

    def providers(self, kind: str, name: str) -> tuple[Provided, ...]:
        """Every plugin that provides ``name``; usually one."""
        self._check_kind(kind)
        return self.components[kind].get(name, ())

    def get(self, kind: str, name: str) -> type[Any]:
        """The component class for ``kind``/``name``, or an error that says what to do."""
        providers = self.providers(kind, name)
        if len(providers) == 1:
            return providers[0].cls
        if len(providers) > 1:
            who = " and ".join(p.plugin.describe() for p in providers)
            hint = providers[-1].plugin.name
            raise DuplicateComponentError(
                f"{kind} '{name}' is provided by {who}; disable one with MGSR_DISABLED_PLUGINS={hint}"
            )
        available = self.names(kind)
        close = difflib.get_close_matches(name, available, n=1)
        message = f"unknown {kind} '{name}'"
        if close:
            message += f" (did you mean '{close[0]}'?)"
        message += f"; available: {', '.join(available) if available else '(none installed)'}"
        if self.broken:
            message += "; plugins that failed to load: " + "; ".join(
                f"{b.info.describe()}: {b.error}" for b in self.broken
            )
        raise UnknownComponentError(message)

    def duplicates(self) -> list[tuple[str, str, tuple[Provided, ...]]]:
        """(kind, name, providers) for every name provided more than once."""
        return [
            (kind, name, ps) for kind, names in self.components.items() for name, ps in names.items() if len(ps) > 1
        ]


def default_registry(autoload: bool | None = None) -> Registry:
    """A Registry of the built-ins and every installed plugin (honouring the environment switches).

    Built once per process for each combination of what changes the answer (``autoload``, the two
    environment switches, ``sys.path``), so entry points load once however many callers ask.
    """
    key = (
        autoload,
        os.environ.get("MGSR_DISABLE_PLUGIN_AUTOLOAD", ""),
        os.environ.get("MGSR_DISABLED_PLUGINS", ""),
        tuple(sys.path),
    )
    return _registry_for(key)


@functools.lru_cache(maxsize=8)
def _registry_for(key: tuple[Any, ...]) -> Registry:
    return Registry.from_plugin_manager(make_plugin_manager(autoload=key[0]))


def list_components(kind: str, registry: Registry | None = None) -> list[str]:
    """The component names available for ``kind`` (e.g. ``"filter_block"``)."""
    return (registry or default_registry()).names(kind)


def iter_components(registry: Registry) -> Iterable[tuple[str, str, Provided]]:
    """Every (kind, name, provider) triple, in kind then name order."""
    for kind, names in registry.components.items():
        for name, providers in names.items():
            for provided in providers:
                yield kind, name, provided
