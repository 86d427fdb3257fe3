"""zsl-cl compare: option parsing, metric definitions, budgets, and real runs on FEMNIST."""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from zsl_cl.commands.compare import compare
from zsl_cl.compare import CompareRequest, parse_seeds, parse_strategies, run_compare
from zsl_cl.compare.budgets import budget_stream
from zsl_cl.compare.evaluation import SeenClassesOnly
from zsl_cl.compare.jobs import cap_samples
from zsl_cl.compare.loggers import parse_loggers
from zsl_cl.compare.metrics import average_incremental_accuracy, base_forgetting, final_average_accuracy, stream_bwt
from zsl_cl.compare.report import write_outputs
from zsl_cl.compare.request import DEFAULT_BUFFER_SIZE
from zsl_cl.compare.samples import SampleRecorder, digest_of, image_digest
from zsl_cl.compare.strategies import STRATEGY_NAMES
from zsl_cl.compare.summary import accuracy_matrix, run_metrics, summarise
from zsl_cl.config import get_preset
from zsl_cl.streams import CharacterDataset, StreamLayout, build_stream, draw_references, plan_stream

# The compare command as its own program, so that these tests do not depend on
# which commands zsl_cl.cli registers.
COMPARE_COMMAND = [sys.executable, "-c", "import typer; from zsl_cl.commands.compare import compare; typer.run(compare)"]

# A custom strategy builder that always raises, loaded by module:attr in the worker processes.
EXPLODING_MODULE = '''
def build(context):
    raise RuntimeError("exploding strategy for seed %d" % context.seed)
'''


# ------------------------------------------------------------------ parsing


def test_parse_strategies_all_expands():
    assert parse_strategies("all") == STRATEGY_NAMES
    assert parse_strategies("sae, naive,sae") == ("sae", "naive")


def test_parse_strategies_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        parse_strategies("sae,nope")


def test_parse_strategies_rejects_missing_builder():
    with pytest.raises(ValueError, match="cannot load strategy builder 'no_such_module_xyz:build'"):
        parse_strategies("no_such_module_xyz:build")


@pytest.mark.parametrize(
    ("text", "message"),
    [("0,a", "'a' is not an integer"), ("0,-1", "seed -1 is negative"), ("1,1", "seed 1 is listed twice")],
)
def test_parse_seeds_rejects_bad_lists(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


def test_parse_seeds_keeps_order():
    assert parse_seeds("2, 0,1") == (2, 0, 1)


def _request(**changes) -> CompareRequest:
    settings = dict(config=get_preset("default"), strategies=("sae",))
    settings.update(changes)
    return CompareRequest(**settings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget": "two-shot"}, "unknown budget 'two-shot'"),
        ({"jobs": 0}, "invalid --jobs 0"),
        ({"executor": "dask"}, "unknown executor 'dask'"),
        ({"buffer_size": 0}, "invalid --buffer-size 0"),
        ({"ray_address": "10.0.0.1:6379"}, "needs --executor ray"),
        ({"samples_per_class": 0}, "invalid --samples-per-class 0"),
        ({"strategies": ("sae", "bogus")}, "unknown strategy 'bogus'"),
        ({"seeds": ()}, "--seeds is empty"),
        ({"seeds": (0, 0)}, "seed 0 is listed twice"),
    ],
)
def test_request_rejects_invalid_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        _request(**changes).validate()


def test_parse_loggers_rejects_unknown_logger():
    with pytest.raises(ValueError, match="unknown logger 'wandb'"):
        parse_loggers("text,wandb")


def test_parse_loggers_without_tensorboard(monkeypatch):
    real_find_spec = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a))
    with pytest.raises(ValueError, match="pip install tensorboard"):
        parse_loggers("text,tensorboard")


def test_cli_buffer_default_matches_request():
    option = inspect.signature(compare).parameters["buffer_size"].default  # a typer OptionInfo
    assert option.default == DEFAULT_BUFFER_SIZE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "sae,bogus"], "unknown strategy 'bogus'"),
        (["--budget", "half"], "unknown budget 'half'"),
        (["--seeds", "0,x"], "invalid --seeds '0,x'"),
        (["--jobs", "0"], "invalid --jobs 0"),
        (["--executor", "dask"], "unknown executor 'dask'"),
        (["--loggers", "text,wandb"], "unknown logger 'wandb'"),
        (["--loggers", "text"], "add --output-dir"),
    ],
)
def test_cli_rejects_bad_input_in_one_line(args, message):
    app = typer.Typer()
    app.command()(compare)
    result = CliRunner().invoke(app, args)
    output = result.output + (result.stderr if hasattr(result, "stderr") else "")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert message in output
    assert "Traceback" not in output


def test_cli_error_has_no_traceback_in_subprocess(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), COLUMNS="200")
    result = subprocess.run(
        [*COMPARE_COMMAND, "--strategies", "sae,bogus"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1
    assert "unknown strategy 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ metrics


MATRIX = [[90.0], [80.0, 50.0], [70.0, 40.0, 60.0]]


def test_base_forgetting_is_first_minus_last():
    assert base_forgetting(MATRIX) == pytest.approx(20.0)


def test_stream_bwt_averages_all_but_last():
    # (70 - 90) and (40 - 50): the last experience has nothing to forget yet.
    assert stream_bwt(MATRIX) == pytest.approx(-15.0)
    assert stream_bwt([[55.0]]) == 0.0


def test_final_average_accuracy_weighs_experiences_equally():
    assert final_average_accuracy(MATRIX) == pytest.approx(170.0 / 3)


def test_average_incremental_accuracy():
    assert average_incremental_accuracy([90.0, 60.0, 30.0]) == pytest.approx(60.0)


class _FakeExperience:
    def __init__(self, index, classes):
        self.current_experience = index
        self.classes_in_this_experience = set(classes)


class _FakeStrategy:
    def __init__(self, experience, output=None):
        self.experience = experience
        self.mb_output = output


def test_seen_classes_only_masks_untrained_classes():
    mask = SeenClassesOnly()
    mask.after_training_exp(_FakeStrategy(_FakeExperience(0, [0, 2])))
    scores = torch.zeros(2, 4)
    scores[:, 1] = 5.0  # an untrained class with the highest score
    mask.after_eval_forward(_FakeStrategy(None, scores))
    assert scores.argmax(dim=1).tolist() == [0, 0]
    assert scores[0, 1] == torch.finfo(torch.float32).min
    assert scores[0, 3] == torch.finfo(torch.float32).min
    assert scores[0, 2] == 0.0


def test_sample_recorder_keeps_only_new_classes():
    recorder = SampleRecorder()
    images = torch.stack([torch.full((1, 28, 28), float(i)) for i in range(4)])
    labels = torch.tensor([5, 1, 5, 7])
    recorder.add(_FakeExperience(0, [1, 5, 7]), images, labels)  # experience 0 is never recorded
    recorder.add(_FakeExperience(2, [5, 7]), images, labels)
    summary = recorder.summary()
    assert list(summary) == ["2"]
    assert summary["2"]["samples"] == 3
    expected = {image_digest(images[i], int(labels[i])) for i in (0, 2, 3)}
    assert set(summary["2"]["digests"]) == expected
    assert summary["2"]["digest"] == digest_of(expected)


# ------------------------------------------------------------------- budgets


def _tiny_benchmark():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 5)
    images = rng.integers(0, 2, (30, 28, 28)).astype(np.uint8) * 255
    layout = StreamLayout(experiences=((0, 1, 2, 3), (4,), (5,)))
    data = type("Data", (), {})()
    data.train_images, data.train_labels = images, labels
    data.test_images, data.test_labels = images, labels
    data.source = "synthetic"
    return build_stream(data, layout), layout, CharacterDataset(images, labels)


def test_one_shot_budget_keeps_the_drawn_sample():
    benchmark, layout, dataset = _tiny_benchmark()
    stream = budget_stream(benchmark.train_stream, layout, "one-shot", seed=3)
    assert len(stream[0].dataset) == 20
    for index in (1, 2):
        original = benchmark.train_stream[index].dataset
        picked = draw_references(original.targets, layout.experiences[index], 1, 3, index)
        budgeted = stream[index].dataset
        assert len(budgeted) == 1
        assert torch.equal(budgeted[0][0], original[picked[0]][0])
        assert budgeted[0][1] == original[picked[0]][1]


def test_full_budget_keeps_every_sample():
    benchmark, layout, _ = _tiny_benchmark()
    stream = budget_stream(benchmark.train_stream, layout, "full", seed=3)
    assert [len(experience.dataset) for experience in stream] == [20, 5, 5]
    assert stream[1].benchmark.classes_order == [0, 1, 2, 3, 4, 5]
    assert stream[2].benchmark.n_classes_per_exp == [4, 1, 1]


def test_backbone_records_si_trajectory():
    from zsl_cl.compare.backbone import SharedBackbone, train_backbone

    benchmark, _, _ = _tiny_benchmark()
    backbone = train_backbone(benchmark.train_stream[0], get_preset("default", epochs=1), seed=0)
    state = SharedBackbone.from_bytes(backbone.to_bytes()).si_state
    trajectory = sum(float(v.data.abs().sum()) for v in state["syn_data"]["cum_trajectory"].values())
    importance = sum(float(v.data.sum()) for v in state["ewc_data"][1].values())
    # Zero here would mean the plugin compared each parameter with a view of itself.
    assert trajectory > 0.0
    assert importance > 0.0


def test_cap_samples_limits_each_class():
    labels = np.repeat(np.arange(3), [10, 2, 7])
    data = type("Data", (), {})()
    data.train_images, data.train_labels = np.zeros((19, 28, 28), np.uint8), labels
    data.test_images, data.test_labels = np.zeros((19, 28, 28), np.uint8), labels.copy()
    data.description = "synthetic"
    capped = cap_samples(data, 4, seed=0)
    assert np.bincount(capped.train_labels).tolist() == [4, 2, 4]
    assert np.bincount(capped.test_labels).tolist() == [4, 2, 4]


# ------------------------------------------------------------------- summary


def _record(strategy, seed, seen, status="ok", seconds=(5.0, 0.5, 0.5)):
    if status != "ok":
        return {"strategy": strategy, "seed": seed, "budget": "one-shot", "status": status, "error": "RuntimeError: boom"}
    experiences = []
    for index, accuracy in enumerate(seen):
        experiences.append({
            "index": index,
            "adapt_seconds": seconds[index],
            "peak_rss_mb": 100.0 + index,
            "accuracy": {str(j): accuracy for j in range(index + 1)},
            "seen_accuracy": accuracy,
        })
    return {"strategy": strategy, "seed": seed, "budget": "one-shot", "status": "ok", "experiences": experiences}


def test_summarise_reports_failures_and_time_ratio():
    records = [
        _record("sae", 0, [90.0, 80.0, 70.0], seconds=(5.0, 0.01, 0.03)),
        _record("naive", 0, [90.0, 50.0, 30.0], seconds=(0.0, 1.0, 3.0)),
        _record("naive", 1, [0.0], status="failed"),
    ]
    rows = {row["strategy"]: row for row in summarise(records, ("sae", "naive"))}
    assert rows["naive"]["runs"] == 2
    assert rows["naive"]["ok"] == 1
    assert rows["naive"]["errors"] == ["seed 1: RuntimeError: boom"]
    assert rows["naive"]["adapt_seconds"][0] == pytest.approx(2.0)
    assert rows["naive"]["adapt_ratio_to_sae"] == pytest.approx(100.0)
    assert rows["sae"]["final_accuracy"][0] == pytest.approx(70.0)
    assert rows["naive"]["peak_rss_mb"][0] == pytest.approx(102.0)


def test_write_outputs_makes_valid_files(tmp_path):
    records = [_record("sae", 0, [90.0]), _record("naive", 0, [80.0])]  # one experience: no adaptation time
    results = {
        "request": {"budget": "one-shot", "seeds": [0], "source": "synthetic"},
        "backbones": [],
        "runs": records,
        "summary": summarise(records, ("sae", "naive")),
    }
    paths = write_outputs(results, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())  # strict JSON: NaN would not parse back as null
    assert saved["summary"][0]["adapt_seconds"] == [None, None]
    assert paths["runs"].read_text().splitlines()[0].startswith("strategy,seed,budget,status,final_accuracy")
    assert paths["summary"].read_text().count("\n") == 3
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------- real data runs


def _expected_digests(shared_data, seed, samples_per_class) -> dict[str, str]:
    """Recompute, independently of compare, the digest of the one-shot samples of each later experience."""
    from zsl_cl.data import load_source, size_normalised

    data = cap_samples(load_source("femnist", shared_data, seed=seed), samples_per_class, seed)
    data = size_normalised(data, get_preset("default").size_normalise)  # the images every strategy trains on
    layout = plan_stream(split="R0", seed=seed)
    benchmark = build_stream(data, layout)
    expected = {}
    for index in range(1, len(layout.experiences)):
        dataset = benchmark.train_stream[index].dataset
        picked = draw_references(dataset.targets, layout.experiences[index], 1, seed, index)
        expected[str(index)] = digest_of(image_digest(dataset[i][0], dataset[i][1]) for i in picked)
    return expected


@pytest.fixture(scope="module")
def local_run(shared_data, tmp_path_factory):
    """All strategies plus one that raises, one-shot budget, on a capped FEMNIST R0 stream."""
    folder = tmp_path_factory.mktemp("compare-local")
    (folder / "exploding_strategy.py").write_text(textwrap.dedent(EXPLODING_MODULE))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        patch.syspath_prepend(str(folder))  # spawned workers inherit sys.path
        request = CompareRequest(
            config=get_preset("default", epochs=1),
            strategies=(*STRATEGY_NAMES, "exploding_strategy:build"),
            seeds=(0,),
            source="femnist",
            data_dir=shared_data,
            download=False,
            split="R0",
            samples_per_class=40,
            jobs=2,
        )
        results = run_compare(request)
        return results, _expected_digests(shared_data, 0, 40)


@pytest.mark.slow
def test_one_shot_strategies_train_on_identical_samples(local_run):
    results, expected = local_run
    runs = [run for run in results["runs"] if run["status"] == "ok"]
    assert sorted(run["strategy"] for run in runs) == sorted(STRATEGY_NAMES)
    for run in runs:
        trained = run["trained_on"]
        assert sorted(trained) == ["1", "2", "3"], run["strategy"]
        for index, entry in trained.items():
            assert entry["samples"] == 3, (run["strategy"], index)
            assert entry["digest"] == expected[index], (run["strategy"], index)


@pytest.mark.slow
def test_failing_strategy_is_reported_and_others_complete(local_run):
    results, _ = local_run
    failed = [run for run in results["runs"] if run["status"] == "failed"]
    assert [run["strategy"] for run in failed] == ["exploding_strategy:build"]
    assert "RuntimeError: exploding strategy for seed 0" in failed[0]["error"]
    rows = {row["strategy"]: row for row in results["summary"]}
    assert rows["exploding_strategy:build"]["ok"] == 0
    assert rows["exploding_strategy:build"]["errors"] == ["seed 0: RuntimeError: exploding strategy for seed 0"]
    assert all(rows[name]["ok"] == 1 for name in STRATEGY_NAMES)


@pytest.mark.slow
def test_softmax_baselines_start_from_shared_backbone(local_run):
    results, _ = local_run
    after_base = {run["strategy"]: run["experiences"][0]["seen_accuracy"] for run in results["runs"] if run["status"] == "ok"}
    # Zero epochs on experience 0 leave the shared backbone's head as trained, so these agree exactly.
    softmax = [after_base[name] for name in ("naive", "replay", "ewc", "lwf", "si", "gdumb", "cumulative")]
    assert len(set(softmax)) == 1


@pytest.mark.slow
def test_sae_metrics_use_avalanche_definitions(local_run):
    results, _ = local_run
    for run in results["runs"]:
        if run["status"] != "ok" or not run["avalanche_metrics"]:
            continue
        final = run["experiences"][-1]
        matrix = accuracy_matrix(run)
        assert base_forgetting(matrix) == pytest.approx(final["base_forgetting"], abs=1e-6), run["strategy"]
        assert stream_bwt(matrix) == pytest.approx(final["bwt"], abs=1e-6), run["strategy"]


@pytest.mark.slow
def test_cli_compares_three_strategies_on_femnist(shared_data, tmp_path):
    output = tmp_path / "out"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), COLUMNS="200")
    result = subprocess.run(
        [
            *COMPARE_COMMAND, "--strategies", "sae,ncm,naive", "--seeds", "0",
            "--budget", "full", "--source", "femnist", "--data-dir", str(shared_data), "--no-download",
            "--split", "R0", "--epochs", "1", "--samples-per-class", "80", "--jobs", "2",
            "--output-dir", str(output), "--loggers", "text,csv",
        ],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    for name in ("sae", "ncm", "naive"):
        assert name in result.stdout

    results = json.loads((output / "compare.json").read_text())
    assert [row["strategy"] for row in results["summary"]] == ["sae", "ncm", "naive"]
    assert all(row["ok"] == 1 for row in results["summary"])
    for run in results["runs"]:
        assert [e["index"] for e in run["experiences"]] == [0, 1, 2, 3]
        assert run["trained_on"] is None  # samples are recorded under the one-shot budget only
        metrics = run_metrics(run)
        assert 0.0 <= metrics["final_accuracy"] <= 100.0
        assert metrics["adapt_seconds"] > 0.0
    rows = {row["strategy"]: row for row in results["summary"]}
    # Chance over the 35 seen classes is under 3 %; both frozen-feature methods are far above it.
    assert rows["sae"]["final_accuracy"][0] > 20.0
    assert rows["ncm"]["final_accuracy"][0] > 20.0
    assert not math.isnan(rows["naive"]["adapt_ratio_to_sae"])
    for name in ("runs.csv", "summary.csv", "accuracy.png", "logs/naive-seed0/log.txt", "logs/sae-seed0/csv/eval_results.csv"):
        assert (output / name).is_file(), name


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _ray_available(), reason="ray is not installed: pip install 'zsl-cl[ray]' to run this test")
def test_ray_executor_matches_local_run(local_run, shared_data, tmp_path):
    import ray

    local_results, expected = local_run
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        try:
            request = CompareRequest(
                config=get_preset("default", epochs=1), strategies=("ncm", "naive"), seeds=(0,), source="femnist",
                data_dir=shared_data, download=False, split="R0", samples_per_class=40, executor="ray",
            )
            results = run_compare(request)
        finally:
            ray.shutdown()

    assert [run["status"] for run in results["runs"]] == ["ok", "ok"]
    local = {run["strategy"]: run for run in local_results["runs"]}
    for run in results["runs"]:
        assert {k: v["digest"] for k, v in run["trained_on"].items()} == expected
        # Same seed and recipe; thread counts may differ between the executors,
        # which can change float rounding, so equality is up to a small tolerance.
        final = run["experiences"][-1]["accuracy"]
        for index, accuracy in local[run["strategy"]]["experiences"][-1]["accuracy"].items():
            assert final[index] == pytest.approx(accuracy, abs=2.0), (run["strategy"], index)
