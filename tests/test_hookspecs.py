"""Every hookspec has a one-line docstring and a section in docs/plugins.md whose examples are valid plugins."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

from zsl_cl import hookspecs
from zsl_cl.plugin_manager import REGISTRATION_HOOKS, ZslPluginManager, collect_components, hook_names
from zsl_cl.protocols import Decoder, Distance, Solver

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HEADING = re.compile(r"^(#{2,6})\s+(.+?)\s*$")
HOOK_HEADING = re.compile(r"^(\w+)\((.*)\)$")
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PROTOCOLS = {"solver": Solver, "distance": Distance, "decoder": Decoder}

HOOKS = hook_names()


def hook_sections() -> dict[str, tuple[str, str]]:
    """Map each hook heading in docs/plugins.md to (argument list, section text up to the next heading)."""
    sections: dict[str, tuple[str, str]] = {}
    current: str | None = None
    for line in DOCS.read_text(encoding="utf-8").splitlines(keepends=True):
        heading = HEADING.match(line)
        if heading:
            hook = HOOK_HEADING.match(heading.group(2).strip("`"))
            current = hook.group(1) if hook else None
            if current is not None:
                sections[current] = (hook.group(2), "")
            continue
        if current is not None:
            arguments, text = sections[current]
            sections[current] = (arguments, text + line)
    return sections


def spec_arguments(hook: str) -> str:
    return ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)


def load_example(source: str, hook: str) -> types.ModuleType:
    module = types.ModuleType(f"docs_example_{hook}")
    exec(compile(source, f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    return module


def test_hookspecs_found():
    assert len(HOOKS) >= 7


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_has_one_line_docstring(hook):
    docstring = inspect.getdoc(getattr(hookspecs, hook))

    assert docstring, f"hookspec {hook} has no docstring"
    assert "\n" not in docstring.strip(), f"hookspec {hook} has a docstring of more than one line"


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_documented(hook):
    sections = hook_sections()

    assert hook in sections, f"docs/plugins.md has no heading '### {hook}({spec_arguments(hook)})'"
    assert sections[hook][0] == spec_arguments(hook), f"the heading of {hook} lists other arguments than its hookspec"
    assert len(sections[hook][1].split()) >= 15, f"the section of {hook} has no description"


def test_docs_have_no_stale_hook_sections():
    documented = set(hook_sections())

    assert documented <= set(HOOKS), f"docs/plugins.md documents hooks that are not hookspecs: {sorted(documented - set(HOOKS))}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_example_is_valid_plugin(hook):
    text = hook_sections().get(hook, ("", ""))[1]
    examples = PYTHON_BLOCK.findall(text)
    assert examples, f"the section of {hook} in docs/plugins.md has no python example"

    for source in examples:
        pm = ZslPluginManager()
        module = load_example(source, hook)
        pm.register(module, name=f"example-{hook}")  # raises PluginValidationError on a wrong signature
        pm.check_pending()

        implemented = [caller.name for caller in pm.get_hookcallers(module)]
        assert implemented == [hook]


@pytest.mark.parametrize("kind", list(REGISTRATION_HOOKS))
def test_registration_example_builds_component(kind):
    hook = REGISTRATION_HOOKS[kind]
    source = PYTHON_BLOCK.findall(hook_sections()[hook][1])[0]
    pm = ZslPluginManager()
    pm.register(load_example(source, hook), name=f"example-{hook}")

    registry = collect_components(pm).get(kind)

    assert len(registry.names()) == 1
    component = registry.create(registry.names()[0])
    assert isinstance(component, PROTOCOLS[kind])
