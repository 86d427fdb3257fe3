"""The evaluate job end to end on the real FEMNIST data, through the installed zsl-cl command."""

import json
import os
import subprocess
import sys

import pytest

MAPPING_NAMES = ["U->U", "U->Omega", "T->T", "T->Omega", "Omega->Omega"]


def run_cli(args, cache_home, timeout=900):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "zsl_cl", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module")
def r0_run(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    output = folder / "r0.json"
    result = run_cli(
        ["evaluate", "--stream", "emnist-incremental", "--source", "femnist", "--data-dir", str(shared_data),
         "--split", "R0", "--preset", "paper", "--epochs", "1", "--output", str(output)],
        cache_home=folder / "cache",
    )
    assert result.returncode == 0, result.stderr
    return result, json.loads(output.read_text())


@pytest.mark.slow
def test_evaluate_json_layout(r0_run):
    _, results = r0_run
    assert results["stream"] == "emnist-incremental"
    assert results["source"] == "femnist"
    assert results["seed"] == 0
    assert results["config"]["config"]["k"] == 256
    assert [e["index"] for e in results["experiences"]] == [0, 1, 2, 3]
    assert set(results["final"]["mappings"]) == set(MAPPING_NAMES)


@pytest.mark.slow
def test_evaluate_experiences_grow_seen_classes(r0_run):
    _, results = r0_run
    experiences = results["experiences"]
    assert len(experiences[0]["new_classes"]) == 26
    new_later = sorted(c for e in experiences[1:] for c in e["new_classes"])
    assert new_later == sorted("2679ELVWY")
    sizes = [len(e["seen_classes"]) for e in experiences]
    assert sizes == [26, 29, 32, 35]
    for e in experiences:
        assert 0.0 <= e["accuracy"] <= 100.0
        assert e["adapt_seconds"] > 0.0


@pytest.mark.slow
def test_evaluate_accuracy_above_chance(r0_run):
    _, results = r0_run
    mappings = results["final"]["mappings"]
    # Chance is 1/26 for T->T and 1/9 for U->U; a trained backbone is far above both.
    assert mappings["T->T"]["top1"] > 50.0
    assert mappings["U->U"]["top1"] > 25.0
    for name in MAPPING_NAMES:
        assert mappings[name]["top1"] <= mappings[name]["top3"]
    assert results["final"]["accuracy"] == results["experiences"][-1]["accuracy"]
    assert results["final"]["accuracy"] == pytest.approx(mappings["Omega->Omega"]["top1"])


@pytest.mark.slow
def test_evaluate_prints_tables(r0_run):
    completed, _ = r0_run
    assert "Experience 0" in completed.stdout
    assert "Experience 3" in completed.stdout
    assert "U->Ω" in completed.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stream", "nope"], "unknown stream 'nope'"),
        (["--preset", "fast"], "unknown preset 'fast'"),
        (["--distance", "nope"], "unknown distance 'nope'"),
        (["--solver", "nope"], "unknown solver 'nope'"),
        (["--epochs", "0"], "invalid --epochs 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--output", "/nonexistent-folder/r.json"], "does not exist"),
    ],
)
def test_evaluate_bad_input_one_line(args, message, tmp_path, shared_data):
    completed = run_cli(["evaluate", "--source", "femnist", "--data-dir", str(shared_data), *args], cache_home=tmp_path, timeout=300)
    assert completed.returncode == 1
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
