"""Plugin manager: loads built-in, installed and local plugins and collects their components.

Plugins are registered in this order:

1. the built-in modules in ``zsl_cl.plugins`` (source "built-in");
2. installed packages with an entry point in the ``zsl_cl`` group (source
   "entry point"), unless ``ZSL_CL_LOAD_ENTRY_POINTS`` is 0;
3. the specs in ``ZSL_CL_PLUGINS`` (comma-separated), then those passed with
   ``--plugin`` (source "local"). A spec is ``module`` or ``module:attr``.

``ZSL_CL_DISABLE_PLUGINS`` (comma-separated plugin names) blocks plugins from
every source. Every problem is raised as a one-line ValueError that names the
plugin, so a broken or clashing plugin is never skipped or overridden silently.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import pluggy

from zsl_cl import hookspecs
from zsl_cl.registry import KINDS, Component, ComponentRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginSource",
    "Registries",
    "ZslPluginManager",
    "collect_components",
    "describe_plugins",
    "get_plugin_manager",
]

ENTRY_POINT_GROUP = "zsl_cl"
PLUGINS_ENV = "ZSL_CL_PLUGINS"
DISABLE_ENV = "ZSL_CL_DISABLE_PLUGINS"
LOAD_ENTRY_POINTS_ENV = "ZSL_CL_LOAD_ENTRY_POINTS"

BUILT_IN, ENTRY_POINT, LOCAL = "built-in", "entry point", "local"

# Built-in plugins, registered through the same hooks as third-party ones.
BUILTIN_PLUGINS = {
    "builtin-solvers": "zsl_cl.plugins.solvers",
    "builtin-distances": "zsl_cl.plugins.distances",
    "builtin-decoders": "zsl_cl.plugins.decoders",
}

# The hook that registers each component kind.
REGISTRATION_HOOKS = {"solver": "register_solvers", "distance": "register_distances", "decoder": "register_decoders"}

_TRUE_VALUES = {"1", "true", "yes", "on"}
_FALSE_VALUES = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class PluginSource:
    """Origin of a registered plugin: built-in, entry point or local."""

    source: str
    module: str
    distribution: str | None = None  # "name version" of the installed package, for entry points


class ZslPluginManager(pluggy.PluginManager):
    """A pluggy manager for the zsl_cl hooks that records the source of every plugin."""

    def __init__(self) -> None:
        super().__init__("zsl_cl")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, PluginSource] = {}
        self.blocked_names: list[str] = []

    def source_of(self, name: str) -> PluginSource:
        """Return the recorded source of plugin ``name``, which is local for a plugin passed straight to ``register()``."""
        if name in self.sources:
            return self.sources[name]
        return PluginSource(LOCAL, _module_of(self.get_plugin(name)))


class Registries:
    """The solver, distance and decoder registries built from one plugin manager."""

    def __init__(self) -> None:
        self.solver = ComponentRegistry("solver")
        self.distance = ComponentRegistry("distance")
        self.decoder = ComponentRegistry("decoder")

    def get(self, kind: str) -> ComponentRegistry:
        """Return the registry of ``kind`` (solver, distance or decoder)."""
        assert kind in KINDS, kind
        return getattr(self, kind)

    def components(self) -> Iterator[Component]:
        """Yield every component, solvers first, then distances, then decoders, each sorted by name."""
        for kind in KINDS:
            registry = self.get(kind)
            for name in registry.names():
                yield registry.components[name]


# ----------------------------------------------------------------- discovery


def get_plugin_manager(local_plugins: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> ZslPluginManager:
    """Create a plugin manager with the built-in, entry-point and local plugins registered and validated.

    ``local_plugins`` are the ``--plugin`` specs. ``environ`` defaults to ``os.environ``.
    Raises ValueError with a one-line message for any plugin that fails to load or validate.
    """
    env = os.environ if environ is None else environ
    pm = ZslPluginManager()
    for name in _split_list(env.get(DISABLE_ENV, "")):
        pm.set_blocked(name)
        pm.blocked_names.append(name)

    for name, module_name in BUILTIN_PLUGINS.items():
        if not pm.is_blocked(name):  # a blocked built-in is never imported
            _register(pm, importlib.import_module(module_name), name, PluginSource(BUILT_IN, module_name))
    if _entry_points_enabled(env):
        _register_entry_points(pm)

    specs = [(spec, PLUGINS_ENV) for spec in _split_list(env.get(PLUGINS_ENV, ""))]
    specs += [(spec, "--plugin") for spec in local_plugins]
    _register_local_specs(pm, specs)

    _check_pending(pm)
    return pm


def _register_entry_points(pm: ZslPluginManager) -> None:
    # A hand-written loop in place of pm.load_setuptools_entrypoints, because that
    # one skips an entry point whose name is already taken and lets import errors
    # escape without naming the package.
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(entry_point.name):
            continue
        dist = entry_point.dist
        distribution = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
        try:
            loaded = entry_point.load()
        except (ImportError, AttributeError, SyntaxError) as error:
            raise ValueError(
                f"entry point {entry_point.name} = {entry_point.value!r} of {distribution} failed to load "
                f"({type(error).__name__}: {_one_line(error)}): reinstall or fix that package, "
                f"or block it with {DISABLE_ENV}={entry_point.name}"
            ) from None
        plugin = _as_plugin(loaded, f"entry point {entry_point.name} of {distribution}")
        _register(pm, plugin, entry_point.name, PluginSource(ENTRY_POINT, _module_of(plugin), distribution))


def _register_local_specs(pm: ZslPluginManager, specs: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for spec, origin in specs:
        spec = spec.strip()
        if spec in seen:  # the same spec in ZSL_CL_PLUGINS and --plugin loads once
            continue
        seen.add(spec)
        if pm.is_blocked(spec):
            continue
        plugin = _as_plugin(_import_spec(spec, origin), f"plugin spec {spec!r} from {origin}")
        _register(pm, plugin, spec, PluginSource(LOCAL, _module_of(plugin)))


def _import_spec(spec: str, origin: str) -> Any:
    """Import ``module`` or ``module:attr``; ``attr`` may be dotted, e.g. ``module:Class.instance``."""
    module_name, colon, attr = (part.strip() for part in spec.partition(":"))
    if not module_name or module_name.startswith(".") or (colon and not attr):
        raise ValueError(f"invalid plugin spec {spec!r} from {origin}: use module or module:attr, e.g. my_plugins:Recorder")
    try:
        target = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as error:
        raise ValueError(
            f"cannot import module {module_name!r} of plugin spec {spec!r} from {origin} "
            f"({type(error).__name__}: {_one_line(error)}): install its package or add its folder to PYTHONPATH"
        ) from None
    for part in attr.split(".") if attr else ():
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"module {module_name!r} has no attribute {attr!r}, named in plugin spec {spec!r} from {origin}: "
                f"check the name after the colon"
            ) from None
    return target


def _as_plugin(loaded: Any, label: str) -> Any:
    """Return ``loaded``, or an instance of it when it is a class, so that its hook methods are bound."""
    if not inspect.isclass(loaded):
        return loaded
    try:
        return loaded()
    except TypeError as error:
        raise ValueError(
            f"{label} names class {loaded.__name__}, which cannot be created without arguments ({_one_line(error)}): "
            f"point the spec at an instance instead"
        ) from None


def _register(pm: ZslPluginManager, plugin: Any, name: str, source: PluginSource) -> None:
    """Register ``plugin`` as ``name``, turning pluggy's clashes and validation errors into one-line ValueErrors."""
    if pm.is_blocked(name):
        return
    if pm.has_plugin(name):
        raise ValueError(
            f"two plugins are called {name!r}: one from {pm.source_of(name).source} ({pm.source_of(name).module}) "
            f"and one from {source.source} ({source.module}): uninstall or rename one, or block the name with {DISABLE_ENV}"
        )
    other = pm.get_name(plugin)
    if other is not None:
        raise ValueError(f"plugin {name!r} is already loaded as plugin {other!r} ({pm.source_of(other).source}): load it only once")

    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as error:
        raise ValueError(_invalid_hookimpl_message(pm, name, error)) from None
    pm.sources[name] = source
    if not pm.get_hookcallers(plugin):
        pm.unregister(plugin)
        raise ValueError(
            f"plugin {name!r} ({source.module}) implements no hooks: decorate its hook functions "
            f"with zsl_cl.hookspecs.hookimpl"
        )


def _invalid_hookimpl_message(pm: ZslPluginManager, name: str, error: pluggy.PluginValidationError) -> str:
    # pluggy's message spans several lines: "Plugin 'x' for hook 'y'", the hookimpl
    # definition, then the reason. Keep the hook name and the reason.
    text = str(error)
    match = re.search(r"hook '([^']+)'", text)
    hook_name = match.group(1) if match else "unknown"
    reason = text.strip().splitlines()[-1]
    expected = ""
    caller = getattr(pm.hook, hook_name, None)
    if caller is not None and caller.spec is not None:
        expected = f", and the hookspec is {hook_name}({', '.join(caller.spec.argnames)})"
    return (
        f"plugin {name!r} has an invalid implementation of hook {hook_name!r}: {reason}{expected}: "
        f"fix the signature or block the plugin with {DISABLE_ENV}={name}"
    )


def _check_pending(pm: ZslPluginManager) -> None:
    """Reject hookimpls for hooks that no hookspec defines, e.g. a misspelled hook name."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        match = re.search(r"unknown hook '([^']+)'", str(error))
        hook_name = match.group(1) if match else "unknown"
        name = pm.get_name(error.plugin) or repr(error.plugin)
        known = ", ".join(hook_names())
        raise ValueError(
            f"plugin {name!r} implements unknown hook {hook_name!r}: rename it to one of {known}, "
            f"or mark it @hookimpl(optionalhook=True)"
        ) from None


# ---------------------------------------------------------------- components


def collect_components(pm: pluggy.PluginManager) -> Registries:
    """Call every registration hook, recording which plugin registered each component."""
    registries = Registries()
    for kind, hook_name in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            _call_registration_hook(impl, hook_name, registries.get(kind))
    return registries


def _call_registration_hook(impl: pluggy.HookImpl, hook_name: str, registry: ComponentRegistry) -> None:
    # Each hookimpl is called on its own, so that every component is recorded
    # with the plugin that registered it.
    plugin_name = impl.plugin_name
    if impl.wrapper or impl.hookwrapper:
        raise ValueError(f"plugin {plugin_name!r} implements {hook_name} as a wrapper: registration hooks must be plain functions")

    def register(name: str, factory: Any, description: str = "") -> None:
        registry.add(name, factory, description, plugin_name)

    arguments = {"register": register}
    try:
        impl.function(*[arguments[arg] for arg in impl.argnames])
    except TypeError as error:
        raise ValueError(
            f"plugin {plugin_name!r} failed in {hook_name} (TypeError: {_one_line(error)}): "
            f"call register(name, factory, description) with a string name and a callable factory"
        ) from None


# ------------------------------------------------------------------- listing


def hook_names() -> list[str]:
    """Return the names of every hookspec, in the order ``zsl_cl.hookspecs`` defines them."""
    names = [name for name, value in vars(hookspecs).items() if hasattr(value, "zsl_cl_spec")]
    return names


def describe_plugins(pm: ZslPluginManager, registries: Registries) -> dict:
    """Return every registered plugin with its source, hooks and components, as JSON-ready data."""
    order = {name: index for index, name in enumerate(hook_names())}
    plugins = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a blocked name
            continue
        source = pm.source_of(name)
        hooks = sorted((caller.name for caller in pm.get_hookcallers(plugin) or ()), key=lambda hook: order.get(hook, len(order)))
        components = [
            {"kind": component.kind, "name": component.name, "description": component.description}
            for component in registries.components()
            if component.plugin == name
        ]
        plugins.append(
            {
                "name": name,
                "source": source.source,
                "module": source.module,
                "distribution": source.distribution,
                "hooks": hooks,
                "components": components,
            }
        )
    return {"plugins": plugins, "blocked": list(pm.blocked_names)}


# ------------------------------------------------------------------- helpers


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _entry_points_enabled(env: Mapping[str, str]) -> bool:
    """Read ZSL_CL_LOAD_ENTRY_POINTS, which enables entry points when unset or empty."""
    value = env.get(LOAD_ENTRY_POINTS_ENV, "").strip().lower()
    if not value or value in _TRUE_VALUES:
        return True
    if value in _FALSE_VALUES:
        return False
    raise ValueError(f"invalid {LOAD_ENTRY_POINTS_ENV}={env[LOAD_ENTRY_POINTS_ENV]!r}: use 1 to load installed plugins or 0 to skip them")


def _module_of(plugin: Any) -> str:
    if inspect.ismodule(plugin):
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
