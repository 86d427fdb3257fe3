"""Plugin discovery, validation, blocking and the ``zsl-cl plugins`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zsl_cl.cli import app
from zsl_cl.hookspecs import hookimpl
from zsl_cl.plugin_manager import BUILTIN_PLUGINS, collect_components, describe_plugins, get_plugin_manager, hook_names

BUILTIN_COMPONENTS = {
    "solver": {"scipy", "eigh"},
    "distance": {"euclidean", "cosine", "zscore-cosine", "mahalanobis"},
    "decoder": {"linear", "tconv"},
}


class TwinDistance:
    def fit(self, latents, labels):
        pass

    def scores(self, samples, references):
        return -(samples[:, None, :] - references[None, :, :]).abs().sum(-1)


class FirstTwin:
    @hookimpl
    def register_distances(self, register):
        register("twin", TwinDistance, "first")


class SecondTwin:
    @hookimpl
    def register_distances(self, register):
        register("twin", TwinDistance, "second")


class CosineImpostor:
    @hookimpl
    def register_distances(self, register):
        register("cosine", TwinDistance, "clashes with the built-in cosine")


@pytest.fixture
def write_plugin(tmp_path, monkeypatch):
    """Return a function that writes a plugin module to tmp_path and makes it importable."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written = []

    def write(source: str, name: str | None = None) -> str:
        module_name = name or f"local_plugin_{len(written)}_{tmp_path.name.replace('-', '_')}"
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        written.append(module_name)
        return module_name

    yield write
    for module_name in written:
        sys.modules.pop(module_name, None)


def names_of(pm) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def assert_one_line(message: str) -> None:
    assert "\n" not in message, message


# ------------------------------------------------------------------ built-ins


def test_builtins_registered_as_built_in():
    pm = get_plugin_manager()

    for name, module_name in BUILTIN_PLUGINS.items():
        assert pm.has_plugin(name)
        assert pm.source_of(name).source == "built-in"
        assert pm.source_of(name).module == module_name


def test_builtins_provide_expected_components():
    registries = collect_components(get_plugin_manager())

    for kind, expected in BUILTIN_COMPONENTS.items():
        assert set(registries.get(kind).names()) == expected


def test_builtin_components_recorded_with_plugin():
    registries = collect_components(get_plugin_manager())

    assert registries.solver.get("scipy").plugin == "builtin-solvers"
    assert registries.distance.get("cosine").plugin == "builtin-distances"
    assert registries.decoder.get("tconv").plugin == "builtin-decoders"


# ------------------------------------------------------- component name clashes


def test_duplicate_component_names_both_plugins():
    pm = get_plugin_manager()
    pm.register(FirstTwin(), name="first-twin")
    pm.register(SecondTwin(), name="second-twin")

    with pytest.raises(ValueError) as caught:
        collect_components(pm)

    message = str(caught.value)
    assert "'first-twin'" in message
    assert "'second-twin'" in message
    assert "'twin'" in message
    assert_one_line(message)


def test_duplicate_of_builtin_component_rejected():
    pm = get_plugin_manager()
    pm.register(CosineImpostor(), name="impostor")

    with pytest.raises(ValueError) as caught:
        collect_components(pm)

    assert "'builtin-distances'" in str(caught.value)
    assert "'impostor'" in str(caught.value)


def test_same_plugin_registering_twice_rejected(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        @hookimpl
        def register_solvers(register):
            register("again", lambda: None, "first")
            register("again", lambda: None, "second")
        """
    )
    pm = get_plugin_manager(local_plugins=[module])

    with pytest.raises(ValueError, match="registers solver 'again' twice"):
        collect_components(pm)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ('register("", TwinDistance, "empty name")', "invalid name"),
        ('register("broken", 42, "not callable")', "not callable"),
        ('register("broken", TwinDistance, 7)', "description 7"),
        ('register("broken")', "TypeError"),
    ],
)
def test_invalid_register_call_names_plugin(write_plugin, call, expected):
    module = write_plugin(
        f"""
        from zsl_cl.hookspecs import hookimpl

        class TwinDistance:
            pass

        @hookimpl
        def register_distances(register):
            {call}
        """
    )
    pm = get_plugin_manager(local_plugins=[module])

    with pytest.raises(ValueError) as caught:
        collect_components(pm)

    assert expected in str(caught.value)
    assert f"'{module}'" in str(caught.value)
    assert_one_line(str(caught.value))


# ------------------------------------------------------------ hookimpl checks


def test_wrong_signature_names_plugin_and_hook(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        @hookimpl
        def register_distances(register, options):
            pass
        """
    )

    with pytest.raises(ValueError) as caught:
        get_plugin_manager(local_plugins=[module])

    message = str(caught.value)
    assert f"plugin '{module}'" in message
    assert "hook 'register_distances'" in message
    assert "options" in message
    assert "register_distances(register)" in message
    assert_one_line(message)


def test_fewer_arguments_than_hookspec_accepted(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        calls = []

        @hookimpl
        def register_decoders():
            calls.append("register_decoders")

        @hookimpl
        def after_experience_evaluated(metrics):
            calls.append(metrics)
        """
    )
    pm = get_plugin_manager(local_plugins=[module])
    collect_components(pm)
    pm.hook.after_experience_evaluated(strategy=None, experience_index=0, metrics={"accuracy": 1.0})

    assert sys.modules[module].calls == ["register_decoders", {"accuracy": 1.0}]


def test_unknown_hook_names_plugin_and_hook(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        @hookimpl
        def after_backbone_trianed(strategy, model):
            pass
        """
    )

    with pytest.raises(ValueError) as caught:
        get_plugin_manager(local_plugins=[module])

    message = str(caught.value)
    assert f"plugin '{module}'" in message
    assert "unknown hook 'after_backbone_trianed'" in message
    assert "after_backbone_trained" in message  # the list of valid hooks
    assert_one_line(message)


def test_optional_unknown_hook_accepted(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        @hookimpl(optionalhook=True)
        def after_decoder_fitted(strategy, decoder):
            pass
        """
    )

    pm = get_plugin_manager(local_plugins=[module])

    assert pm.has_plugin(module)


def test_plugin_without_hooks_rejected(write_plugin):
    module = write_plugin(
        """
        def register_distances(register):  # the @hookimpl marker is missing
            pass
        """
    )

    with pytest.raises(ValueError, match=f"plugin '{module}' .*implements no hooks"):
        get_plugin_manager(local_plugins=[module])


def test_registration_hook_as_wrapper_rejected(write_plugin):
    module = write_plugin(
        """
        from zsl_cl.hookspecs import hookimpl

        @hookimpl(wrapper=True)
        def register_solvers(register):
            return (yield)
        """
    )
    pm = get_plugin_manager(local_plugins=[module])

    with pytest.raises(ValueError, match="as a wrapper"):
        collect_components(pm)


# ------------------------------------------------------------ local plugins


RECORDER_MODULE = """
from zsl_cl.hookspecs import hookimpl


class LocalDistance:
    def fit(self, latents, labels):
        pass

    def scores(self, samples, references):
        return samples @ references.T


class Recorder:
    @hookimpl
    def register_distances(self, register):
        register("local-dot", LocalDistance, "dot product, from a local plugin")

    @hookimpl
    def after_experience_evaluated(self, strategy, experience_index, metrics):
        pass


recorder = Recorder()


class Holder:
    recorder = recorder  # the same object as the module-level recorder


@hookimpl
def register_solvers(register):
    register("local-solver", lambda: None, "module-level hook")
"""


@pytest.mark.parametrize("attr", ["Recorder", "recorder", "Holder.recorder"])
def test_plugin_spec_with_attr_loads(write_plugin, attr):
    module = write_plugin(RECORDER_MODULE)
    spec = f"{module}:{attr}"

    pm = get_plugin_manager(local_plugins=[spec])
    registries = collect_components(pm)

    assert pm.source_of(spec).source == "local"
    assert registries.distance.get("local-dot").plugin == spec
    assert "local-solver" not in registries.solver.names()


def test_plugin_spec_module_only_loads(write_plugin):
    module = write_plugin(RECORDER_MODULE)

    pm = get_plugin_manager(local_plugins=[module])
    registries = collect_components(pm)

    assert pm.source_of(module).source == "local"
    assert pm.source_of(module).module == module
    assert registries.solver.get("local-solver").plugin == module
    assert "local-dot" not in registries.distance.names()


def test_plugins_env_loads_and_dedupes(write_plugin, monkeypatch):
    module = write_plugin(RECORDER_MODULE)
    spec = f"{module}:recorder"
    monkeypatch.setenv("ZSL_CL_PLUGINS", f" {spec} , {module}")

    pm = get_plugin_manager(local_plugins=[spec])

    assert {spec, module} <= names_of(pm)
    assert collect_components(pm).distance.get("local-dot").plugin == spec


def test_same_object_twice_rejected(write_plugin):
    module = write_plugin(RECORDER_MODULE)

    with pytest.raises(ValueError, match=f"already loaded as plugin '{module}:recorder'"):
        get_plugin_manager(local_plugins=[f"{module}:recorder", f"{module}:Holder.recorder"])


def test_builtin_module_as_local_spec_rejected():
    with pytest.raises(ValueError, match="already loaded as plugin 'builtin-distances'"):
        get_plugin_manager(local_plugins=["zsl_cl.plugins.distances"])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (":recorder", "invalid plugin spec"),
        ("{module}:", "invalid plugin spec"),
        (".relative_module", "invalid plugin spec"),
        ("no_such_plugin_module_zsl", "cannot import module 'no_such_plugin_module_zsl'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:Holder.missing", "has no attribute 'Holder.missing'"),
        ("{module}:NeedsArguments", "cannot be created without arguments"),
    ],
)
def test_bad_plugin_spec_errors(write_plugin, spec, expected):
    module = write_plugin(RECORDER_MODULE + "\nclass NeedsArguments:\n    def __init__(self, size):\n        pass\n")
    spec = spec.format(module=module)

    with pytest.raises(ValueError) as caught:
        get_plugin_manager(local_plugins=[spec])

    message = str(caught.value)
    assert expected in message
    assert repr(spec) in message
    assert "--plugin" in message
    assert_one_line(message)


def test_spec_with_broken_dependency_names_spec(write_plugin):
    module = write_plugin("import no_such_dependency_zsl\n")

    with pytest.raises(ValueError) as caught:
        get_plugin_manager(local_plugins=[module])

    assert f"plugin spec '{module}'" in str(caught.value)
    assert "no_such_dependency_zsl" in str(caught.value)
    assert_one_line(str(caught.value))


def test_bad_spec_in_env_names_variable(monkeypatch):
    monkeypatch.setenv("ZSL_CL_PLUGINS", "no_such_plugin_module_zsl")

    with pytest.raises(ValueError, match="from ZSL_CL_PLUGINS"):
        get_plugin_manager()


# ------------------------------------------------------------------ blocking


def test_disable_blocks_builtin(monkeypatch):
    monkeypatch.setenv("ZSL_CL_DISABLE_PLUGINS", "builtin-decoders, builtin-solvers")

    pm = get_plugin_manager()
    registries = collect_components(pm)

    assert "builtin-decoders" not in names_of(pm)
    assert "builtin-solvers" not in names_of(pm)
    assert registries.decoder.names() == []
    assert registries.solver.names() == []
    assert set(registries.distance.names()) == BUILTIN_COMPONENTS["distance"]
    assert describe_plugins(pm, registries)["blocked"] == ["builtin-decoders", "builtin-solvers"]


def test_disable_blocks_local_spec(write_plugin, monkeypatch):
    module = write_plugin(RECORDER_MODULE)
    monkeypatch.setenv("ZSL_CL_DISABLE_PLUGINS", module)

    pm = get_plugin_manager(local_plugins=[module])

    assert module not in names_of(pm)


def test_disable_lets_clashing_plugin_replace_builtin():
    # Blocking the built-in distances is how a plugin takes over one of their names.
    pm = get_plugin_manager(environ={"ZSL_CL_DISABLE_PLUGINS": "builtin-distances", "ZSL_CL_LOAD_ENTRY_POINTS": "0"})
    pm.register(CosineImpostor(), name="impostor")

    registries = collect_components(pm)

    assert registries.distance.get("cosine").plugin == "impostor"


# --------------------------------------------------------------- entry points


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Return a function that 'installs' a distribution with zsl_cl entry points into tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = []

    def install(dist_name: str, entry_points: dict[str, str], modules_source: dict[str, str]) -> None:
        dist_info = tmp_path / f"{dist_name.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n", encoding="utf-8")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[zsl_cl]\n{lines}", encoding="utf-8")
        for module_name, source in modules_source.items():
            (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            modules.append(module_name)

    yield install
    for module_name in modules:
        sys.modules.pop(module_name, None)


ENTRY_POINT_MODULE = """
from zsl_cl.hookspecs import hookimpl

@hookimpl
def register_distances(register):
    register("installed-dot", lambda: None, "from an installed package")
"""


def test_entry_point_loaded_with_source(fake_distribution, monkeypatch):
    fake_distribution("zsl-cl-fake", {"fake": "zsl_cl_fake_plugin"}, {"zsl_cl_fake_plugin": ENTRY_POINT_MODULE})
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "1")

    pm = get_plugin_manager()

    assert pm.source_of("fake").source == "entry point"
    assert pm.source_of("fake").distribution == "zsl-cl-fake 1.0"
    assert collect_components(pm).distance.get("installed-dot").plugin == "fake"


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_entry_points_excluded_when_disabled(fake_distribution, monkeypatch, value):
    fake_distribution("zsl-cl-fake", {"fake": "zsl_cl_fake_plugin"}, {"zsl_cl_fake_plugin": ENTRY_POINT_MODULE})
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", value)

    pm = get_plugin_manager()

    assert "fake" not in names_of(pm)
    assert "zsl_cl_fake_plugin" not in sys.modules


def test_entry_points_disabled_in_test_runs():
    assert os.environ.get("ZSL_CL_LOAD_ENTRY_POINTS") == "0"


def test_entry_point_blocked_by_name(fake_distribution, monkeypatch):
    fake_distribution("zsl-cl-fake", {"fake": "zsl_cl_fake_plugin"}, {"zsl_cl_fake_plugin": ENTRY_POINT_MODULE})
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "1")
    monkeypatch.setenv("ZSL_CL_DISABLE_PLUGINS", "fake")

    pm = get_plugin_manager()

    assert "fake" not in names_of(pm)
    assert "zsl_cl_fake_plugin" not in sys.modules


def test_invalid_load_entry_points_value(monkeypatch):
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "maybe")

    with pytest.raises(ValueError, match="invalid ZSL_CL_LOAD_ENTRY_POINTS='maybe'"):
        get_plugin_manager()


def test_broken_entry_point_names_distribution(fake_distribution, monkeypatch):
    fake_distribution("zsl-cl-broken", {"broken": "zsl_cl_broken_plugin"}, {"zsl_cl_broken_plugin": "import no_such_dependency_zsl\n"})
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "1")

    with pytest.raises(ValueError) as caught:
        get_plugin_manager()

    message = str(caught.value)
    assert "entry point broken" in message
    assert "zsl-cl-broken 1.0" in message
    assert "ZSL_CL_DISABLE_PLUGINS=broken" in message
    assert_one_line(message)


def test_entry_point_named_like_builtin_rejected(fake_distribution, monkeypatch):
    fake_distribution("zsl-cl-clash", {"builtin-solvers": "zsl_cl_clash_plugin"}, {"zsl_cl_clash_plugin": ENTRY_POINT_MODULE})
    monkeypatch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "1")

    with pytest.raises(ValueError, match="two plugins are called 'builtin-solvers'"):
        get_plugin_manager()


# ------------------------------------------------------------ describe/listing


def test_describe_plugins_lists_hooks_and_components(write_plugin):
    module = write_plugin(RECORDER_MODULE)
    spec = f"{module}:Recorder"
    pm = get_plugin_manager(local_plugins=[spec])

    listing = describe_plugins(pm, collect_components(pm))
    by_name = {entry["name"]: entry for entry in listing["plugins"]}

    assert list(by_name) == [*BUILTIN_PLUGINS, spec]
    assert by_name[spec]["source"] == "local"
    assert by_name[spec]["hooks"] == ["register_distances", "after_experience_evaluated"]
    assert by_name[spec]["components"] == [{"kind": "distance", "name": "local-dot", "description": "dot product, from a local plugin"}]
    assert by_name["builtin-solvers"]["hooks"] == ["register_solvers"]


def test_hook_names_match_hookspecs():
    assert hook_names() == [
        "register_solvers",
        "register_distances",
        "register_decoders",
        "after_backbone_trained",
        "after_references_rebuilt",
        "after_head_expanded",
        "after_experience_evaluated",
    ]


# ------------------------------------------------------------------- the CLI


def test_plugins_command_text_output(write_plugin):
    module = write_plugin(RECORDER_MODULE)

    result = CliRunner().invoke(app, ["plugins", "--plugin", f"{module}:Recorder"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "builtin-distances (built-in: zsl_cl.plugins.distances)" in lines
    assert "  hooks: register_distances" in lines
    assert f"{module}:Recorder (local: {module}.Recorder)" in lines
    assert "  distance: local-dot — dot product, from a local plugin" in lines
    assert "  hooks: register_distances, after_experience_evaluated" in lines
    for kind, names in BUILTIN_COMPONENTS.items():
        for name in names:
            assert any(line.startswith(f"  {kind}: {name} — ") for line in lines), (kind, name)


def test_plugins_command_json_output(write_plugin):
    module = write_plugin(RECORDER_MODULE)

    result = CliRunner().invoke(app, ["plugins", "--json", "--plugin", module])

    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    by_name = {entry["name"]: entry for entry in listing["plugins"]}
    assert set(by_name) == {*BUILTIN_PLUGINS, module}
    assert listing["blocked"] == []
    for name in BUILTIN_PLUGINS:
        assert by_name[name]["source"] == "built-in"
        assert by_name[name]["distribution"] is None
    assert by_name[module]["source"] == "local"
    assert by_name[module]["components"] == [{"kind": "solver", "name": "local-solver", "description": "module-level hook"}]
    distances = {c["name"] for c in by_name["builtin-distances"]["components"] if c["kind"] == "distance"}
    assert distances == BUILTIN_COMPONENTS["distance"]


def test_plugins_command_json_shows_blocked(monkeypatch):
    monkeypatch.setenv("ZSL_CL_DISABLE_PLUGINS", "builtin-decoders")

    result = CliRunner().invoke(app, ["plugins", "--json"])

    listing = json.loads(result.stdout)
    assert listing["blocked"] == ["builtin-decoders"]
    assert "builtin-decoders" not in {entry["name"] for entry in listing["plugins"]}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m zsl_cl`` in a subprocess, as the ``zsl-cl`` console script would."""
    return subprocess.run(
        [sys.executable, "-m", "zsl_cl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_plugins_command_bad_spec_one_line():
    result = run_cli("plugins", "--plugin", "no_such_plugin_module_zsl:thing")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: cannot import module 'no_such_plugin_module_zsl'")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "kind", "names"),
    [("--distance", "distance", BUILTIN_COMPONENTS["distance"]), ("--solver", "solver", BUILTIN_COMPONENTS["solver"])],
)
def test_evaluate_unknown_component_lists_names(tmp_path, option, kind, names):
    # The data folder does not exist: the component name is checked before any data is read.
    missing_data = tmp_path / "no-data-here"
    arguments = ["evaluate", "--source", "femnist", "--data-dir", str(missing_data), "--no-download", "--epochs", "1", option, "nope", "-q"]

    result = CliRunner().invoke(app, arguments)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: unknown {kind} 'nope'")
    for name in names:
        assert name in lines[0]
    assert result.stdout == ""
    assert not missing_data.exists()
