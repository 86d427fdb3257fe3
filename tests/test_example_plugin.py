"""The example package docs/examples/zsl-cl-manhattan installs, is found as an entry point, and runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "zsl-cl-manhattan"
DOCS = ROOT / "docs" / "plugins.md"


def fenced_blocks(language: str) -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_tutorial_module_matches_example():
    module = (EXAMPLE / "zsl_cl_manhattan.py").read_text(encoding="utf-8")

    assert module in fenced_blocks("python")


def test_tutorial_pyproject_matches_example():
    pyproject = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")

    assert pyproject in fenced_blocks("toml")
    assert '[project.entry-points.zsl_cl]\nmanhattan = "zsl_cl_manhattan"' in pyproject


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """Install the example into a temporary --target folder and return that folder.

    The package is copied first, because building in place would leave build/
    and egg-info folders in the repository.
    """
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "source"
    target = work / "site"
    shutil.copytree(EXAMPLE, source)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--no-cache-dir", "--target", str(target), str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return target


def run_cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m zsl_cl`` with the example's install folder on PYTHONPATH."""
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
    environment = {**os.environ, "PYTHONPATH": python_path, "ZSL_CL_LOAD_ENTRY_POINTS": "1", **env}
    return subprocess.run([sys.executable, "-m", "zsl_cl", *args], capture_output=True, text=True, env=environment, timeout=1800)


def listed_plugins(site: Path, **env: str) -> dict:
    result = run_cli(site, "plugins", "--json", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_example_listed_as_entry_point(installed_example):
    listing = listed_plugins(installed_example)
    by_name = {entry["name"]: entry for entry in listing["plugins"]}

    assert "manhattan" in by_name
    assert by_name["manhattan"]["source"] == "entry point"
    assert by_name["manhattan"]["distribution"] == "zsl-cl-manhattan 0.1.0"
    assert by_name["manhattan"]["module"] == "zsl_cl_manhattan"
    assert by_name["manhattan"]["hooks"] == ["register_distances"]
    assert [(c["kind"], c["name"]) for c in by_name["manhattan"]["components"]] == [("distance", "manhattan")]


@pytest.mark.slow
def test_example_skipped_without_entry_points(installed_example):
    listing = listed_plugins(installed_example, ZSL_CL_LOAD_ENTRY_POINTS="0")

    assert "manhattan" not in {entry["name"] for entry in listing["plugins"]}


@pytest.mark.slow
def test_example_blocked_by_name(installed_example):
    listing = listed_plugins(installed_example, ZSL_CL_DISABLE_PLUGINS="manhattan")

    assert "manhattan" not in {entry["name"] for entry in listing["plugins"]}
    assert listing["blocked"] == ["manhattan"]


@pytest.mark.slow
def test_example_distance_runs_evaluate(installed_example, shared_data, data_cache_dir, tmp_path):
    output = tmp_path / "out.json"
    arguments = [
        "evaluate", "--stream", "emnist-incremental", "--source", "femnist", "--data-dir", str(shared_data),
        "--split", "R0", "--epochs", "1", "--distance", "manhattan", "--no-download", "--output", str(output), "-q",
    ]

    result = run_cli(installed_example, *arguments, XDG_CACHE_HOME=str(data_cache_dir))

    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["config"]["config"]["distance"] == "manhattan"
    mappings = results["final"]["mappings"]
    assert set(mappings) == {"U->U", "U->Omega", "T->T", "T->Omega", "Omega->Omega"}
    for name, scores in mappings.items():
        assert 0.0 <= scores["top1"] <= 100.0, name
    base_classes = results["experiences"][0]["new_classes"]
    chance = 100.0 / len(base_classes)
    assert mappings["T->T"]["top1"] > chance
