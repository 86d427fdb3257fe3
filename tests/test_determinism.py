"""Reruns give the same numbers: the same command and seed on the CPU give the same JSON, apart from timings.

Also checks that the parsed-data cache is rebuilt when it is stale or
altered, so a rerun never reads data that differs from the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import zsl_cl.data.cache as cache_module
import zsl_cl.data.femnist as femnist_module
from test_cli_errors import write_femnist
from zsl_cl.config import get_preset
from zsl_cl.data import load_source
from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.runner import EvaluateRequest, deterministic_algorithms, run_evaluate

TIMING_FIELDS = ("timing",)
EXPERIENCE_TIMING_FIELDS = ("adapt_seconds",)


def without_timing(text: str) -> str:
    """Return the JSON text again without the wall-clock fields, in the same layout."""
    results = json.loads(text)
    for name in TIMING_FIELDS:
        results.pop(name)
    for record in results["experiences"]:
        for name in EXPERIENCE_TIMING_FIELDS:
            record.pop(name)
    return json.dumps(results, indent=2, sort_keys=True)


# ---------------------------------------------------------------- the real command, twice


def run_cli(args: list[str], cache_home: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="200")
    environment.pop("ZSL_CL_DATA", None)
    return subprocess.run([sys.executable, "-m", "zsl_cl", "evaluate", *args], capture_output=True, text=True, env=environment, timeout=1800)


@pytest.mark.slow
def test_same_seed_same_json(shared_data: Path, tmp_path: Path) -> None:
    # R1 has the fewest base classes, so experience 0 trains on the least data.
    args = ["--source", "femnist", "--data-dir", str(shared_data), "--split", "R1", "--epochs", "1", "--no-download", "--quiet"]
    texts = []
    for run in ("first", "second"):
        output = tmp_path / f"{run}.json"
        completed = run_cli([*args, "--output", str(output)], tmp_path / "cache-home")
        assert completed.returncode == 0, completed.stderr
        texts.append(output.read_text())

    first, second = (json.loads(text) for text in texts)
    assert first["timing"]["total_seconds"] > 0
    assert all(record["adapt_seconds"] > 0 for record in first["experiences"])
    assert without_timing(texts[0]) == without_timing(texts[1])
    assert first["final"] == second["final"]


# ---------------------------------------------------------------- in-process runs on small data


def run_small(data: Path, seed: int) -> dict:
    request = EvaluateRequest(config=get_preset("default", epochs=1, k=32), source="femnist", data_dir=data, download=False, seed=seed)
    plugin_manager = get_plugin_manager()
    return run_evaluate(request, plugin_manager, collect_components(plugin_manager))


def test_small_runs_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    write_femnist(tmp_path / "data")
    first, second, other_seed = (json.dumps(run_small(tmp_path / "data", seed)) for seed in (0, 0, 1))
    assert without_timing(first) == without_timing(second)
    # A test that could not fail would pass here too; another seed must change the results.
    assert without_timing(first) != without_timing(other_seed)


def test_deterministic_mode_restored() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms("cpu"):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_deterministic_mode_restored_after_error() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError):
        with deterministic_algorithms("cpu"):
            raise ValueError("stop")
    assert torch.are_deterministic_algorithms_enabled() == before


# ---------------------------------------------------------------- the parsed-data cache


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = femnist_module.parse_shards

    def counted(files):
        calls.append(1)
        return original(files)

    monkeypatch.setattr(femnist_module, "parse_shards", counted)
    return calls


def test_cache_other_format_version_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_femnist(tmp_path / "data", writers=2)
    calls = count_parses(monkeypatch)
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    monkeypatch.setattr(cache_module, "FORMAT_VERSION", cache_module.FORMAT_VERSION + 1)
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    assert calls == [1, 1]


def test_cache_replaced_arrays_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A cache file whose arrays were swapped for other data, with both checksums kept, is rebuilt from the shards.
    write_femnist(tmp_path / "data", writers=2)
    calls = count_parses(monkeypatch)
    original = load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    with np.load(cache_file) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["images"] = 255 - arrays["images"]
    np.savez(cache_file.with_suffix(""), **arrays)

    reloaded = load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")

    assert calls == [1, 1]
    assert np.array_equal(reloaded.train_images, original.train_images)
    assert np.array_equal(reloaded.test_images, original.test_images)
