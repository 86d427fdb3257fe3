"""Open-world evaluate on the real FEMNIST data: new classes found without labels."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def open_world_run(shared_data, tmp_path_factory, data_cache_dir):
    folder = tmp_path_factory.mktemp("open-world")
    output = folder / "ow.json"
    completed = subprocess.run(
        [sys.executable, "-m", "zsl_cl", "evaluate", "--source", "femnist", "--data-dir", str(shared_data),
         "--split", "R0", "--epochs", "1", "--open-world", "--output", str(output)],
        capture_output=True, text=True, timeout=1200,
        env=dict(os.environ, XDG_CACHE_HOME=str(data_cache_dir), COLUMNS="160"),
    )
    assert completed.returncode == 0, completed.stderr
    return completed, json.loads(output.read_text())


def test_open_world_records_each_later_experience(open_world_run):
    _, results = open_world_run
    records = results["open_world"]["experiences"]
    assert [r["index"] for r in records] == [1, 2, 3]
    assert [r["classes_true"] for r in records] == [3, 6, 9]


def test_open_world_finds_classes(open_world_run):
    _, results = open_world_run
    records = results["open_world"]["experiences"]
    found = [r["classes_found"] for r in records]
    assert found[-1] >= 1
    assert found == sorted(found)  # classes found earlier stay known


def test_open_world_scores_in_range(open_world_run):
    _, results = open_world_run
    for record in results["open_world"]["experiences"]:
        assert 40.0 < record["known_accuracy"] <= 100.0
        assert 0.0 <= record["novel_cluster_accuracy"] <= 100.0
        assert record["novelty_auroc"] > 60.0
    assert 0.0 < results["open_world"]["novelty_threshold"] < 2.0


def test_open_world_prints_table(open_world_run):
    completed, _ = open_world_run
    assert "open world" in completed.stdout
    assert "classes found" in completed.stdout
