"""Component registry: the solvers, distances and decoders that plugins register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Component", "ComponentRegistry", "KINDS"]

KINDS = ("solver", "distance", "decoder")


@dataclass(frozen=True)
class Component:
    """One registered component: a named factory and the plugin that provided it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str


@dataclass
class ComponentRegistry:
    """Components of one kind, keyed by name."""

    kind: str
    components: dict[str, Component] = field(default_factory=dict)

    def add(self, name: str, factory: Callable[..., Any], description: str, plugin: str) -> None:
        """Add a component, rejecting a name that another plugin already registered."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"plugin {plugin!r} registered a {self.kind} with invalid name {name!r}: use a non-empty string")
        if not callable(factory):
            raise ValueError(f"plugin {plugin!r} registered {self.kind} {name!r} with a factory that is not callable: pass a class or function")
        if not isinstance(description, str):
            raise ValueError(f"plugin {plugin!r} registered {self.kind} {name!r} with description {description!r}: use a string")
        existing = self.components.get(name)
        if existing is not None and existing.plugin == plugin:
            raise ValueError(f"plugin {plugin!r} registers {self.kind} {name!r} twice: register each name once")
        if existing is not None:
            raise ValueError(
                f"{self.kind} {name!r} is registered by both plugin {existing.plugin!r} and plugin {plugin!r}: "
                f"rename one of them or block one with ZSL_CL_DISABLE_PLUGINS"
            )
        self.components[name] = Component(self.kind, name, factory, description, plugin)

    def get(self, name: str) -> Component:
        """Return the component called ``name`` or raise a ValueError that lists the choices."""
        try:
            return self.components[name]
        except KeyError:
            choices = ", ".join(sorted(self.components)) or "none"
            raise ValueError(f"unknown {self.kind} {name!r}: choose one of {choices}, or load a plugin that provides it (see zsl-cl plugins)") from None

    def create(self, name: str, **options: Any) -> Any:
        """Build the component called ``name`` with its factory."""
        return self.get(name).factory(**options)

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self.components)
