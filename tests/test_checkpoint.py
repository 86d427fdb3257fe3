"""Checkpoints: a run stopped after experience N and resumed ends with the results of a run never stopped.

The slow tests kill a real ``zsl-cl evaluate`` process with SIGKILL on the
real FEMNIST data and resume it. The others run the job in-process on a
small FEMNIST folder written here, or test the checkpoint module directly.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_cli_errors import write_femnist
from zsl_cl._avalanche import IncrementalClassifier, SupervisedTemplate
from zsl_cl.config import get_preset
from zsl_cl.core.cnn import FEATURE_DIM, CharacterCNN
from zsl_cl.hookspecs import hookimpl
from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.runner import EvaluateRequest, run_evaluate
from zsl_cl.training import checkpoint as checkpoint_module
from zsl_cl.training.checkpoint import CHECKPOINT_FILE, NOT_STATE_ATTRIBUTES, STATE_ATTRIBUTES, capture_strategy, restore_strategy

STRATEGY_SOURCE = Path(checkpoint_module.__file__).resolve().parent / "strategy.py"


def without_timing(results: dict) -> dict:
    """Return the results without the fields that hold wall-clock times."""
    kept = {key: value for key, value in results.items() if key != "timing"}
    kept["experiences"] = [{key: value for key, value in record.items() if key != "adapt_seconds"} for record in results["experiences"]]
    return kept


def as_text(results: dict) -> str:
    return json.dumps(without_timing(results), indent=2, sort_keys=True)


# ---------------------------------------------------------------- in-process runs on small data


SMALL_K = 32


class Crash(Exception):
    """Raised by a test plugin to stop a run after an experience is evaluated."""


class CrashAt:
    def __init__(self, index: int) -> None:
        self.index = index

    @hookimpl
    def after_experience_evaluated(self, strategy, experience_index, metrics):
        if experience_index == self.index:
            raise Crash(experience_index)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-data")
    write_femnist(folder)
    return folder


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache-home"))


def run_small(
    data: Path, checkpoint_dir: Path | None = None, *, resume: bool = False, crash_at: int | None = None,
    expand_head: bool = False, distance: str | None = None,
) -> dict:
    # k=32 keeps the SAE solves fast; the checkpoint does not depend on the latent size.
    request = EvaluateRequest(
        config=get_preset("default", epochs=1, k=SMALL_K, distance=distance), source="femnist", data_dir=data, download=False,
        expand_head=expand_head,
    )
    plugin_manager = get_plugin_manager()
    if crash_at is not None:
        plugin_manager.register(CrashAt(crash_at), name="crash")
    components = collect_components(plugin_manager)
    return run_evaluate(request, plugin_manager, components, checkpoint_dir=checkpoint_dir, resume=resume)


# mahalanobis is the built-in distance that fits statistics on the base-class latents.
@pytest.mark.parametrize(
    ("expand_head", "distance"),
    [(False, None), (True, None), (False, "mahalanobis")],
    ids=["references", "expand-head", "mahalanobis"],
)
def test_resume_after_crash_same_results(small_data: Path, tmp_path: Path, expand_head: bool, distance: str | None) -> None:
    options = {"expand_head": expand_head, "distance": distance}
    reference = run_small(small_data, **options)
    with pytest.raises(Crash):
        run_small(small_data, tmp_path, crash_at=2, **options)
    manifest = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    assert [record["index"] for record in manifest["experiences"]] == [0, 1]

    resumed = run_small(small_data, tmp_path, resume=True, **options)

    assert resumed["timing"]["resumed_after_experience"] == 1
    assert as_text(resumed) == as_text(reference)


def test_resume_grown_head_restored(small_data: Path, tmp_path: Path) -> None:
    with pytest.raises(Crash):
        run_small(small_data, tmp_path, crash_at=2, expand_head=True)
    manifest = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    state = torch.load(tmp_path / manifest["files"]["state"]["name"], weights_only=True)
    # 26 base classes plus the 3 of experience 1, so the saved head is wider than a fresh one.
    assert state["model/head.active_units"].sum() == 29


def test_completed_run_resumes_to_same_results(small_data: Path, tmp_path: Path) -> None:
    first = run_small(small_data, tmp_path)
    again = run_small(small_data, tmp_path, resume=True)
    assert again["timing"]["resumed_after_experience"] == first["experiences"][-1]["index"]
    assert as_text(again) == as_text(first)


@pytest.fixture(scope="module")
def crashed_checkpoint(small_data: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crashed")
    with pytest.raises(Crash):
        run_small(small_data, folder, crash_at=2)
    return folder


def copy_checkpoint(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_corrupt_tensor_file_rejected(crashed_checkpoint: Path, small_data: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(crashed_checkpoint, tmp_path / "checkpoint")
    manifest = json.loads((folder / CHECKPOINT_FILE).read_text())
    state = folder / manifest["files"]["state"]["name"]
    payload = bytearray(state.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    state.write_bytes(bytes(payload))

    with pytest.raises(ValueError) as error:
        run_small(small_data, folder, resume=True)
    assert str(error.value) == (
        f"checkpoint file {state} does not match its sha256 in checkpoint.json, so it is corrupt: "
        f"delete {folder} to start again, or choose another --checkpoint-dir"
    )


def test_unreadable_manifest_rejected(crashed_checkpoint: Path, small_data: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(crashed_checkpoint, tmp_path / "checkpoint")
    manifest = folder / CHECKPOINT_FILE
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ValueError) as error:
        run_small(small_data, folder, resume=True)
    message = str(error.value)
    assert message.startswith(f"cannot read checkpoint {manifest} (")
    assert message.endswith(f"): delete {folder} to start again, or choose another --checkpoint-dir")


def test_other_format_rejected(crashed_checkpoint: Path, small_data: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(crashed_checkpoint, tmp_path / "checkpoint")
    manifest = json.loads((folder / CHECKPOINT_FILE).read_text())
    manifest["format"] = 99
    (folder / CHECKPOINT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as error:
        run_small(small_data, folder, resume=True)
    assert str(error.value) == (
        f"checkpoint {folder / CHECKPOINT_FILE} has format 99, and this zsl-cl reads format 1: "
        "rerun without --resume in an empty --checkpoint-dir"
    )


def test_other_settings_rejected(crashed_checkpoint: Path, small_data: Path) -> None:
    request = EvaluateRequest(config=get_preset("default", epochs=1, k=64), source="femnist", data_dir=small_data, download=False)
    plugin_manager = get_plugin_manager()
    with pytest.raises(ValueError) as error:
        run_evaluate(request, plugin_manager, collect_components(plugin_manager), checkpoint_dir=crashed_checkpoint, resume=True)
    assert str(error.value) == (
        f"the checkpoint in {crashed_checkpoint} was written with --k 32, but this run has --k 64: "
        "rerun with --k 32 to resume, or choose another --checkpoint-dir"
    )


def test_other_data_rejected(crashed_checkpoint: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_femnist(data, writers=6)
    folder = copy_checkpoint(crashed_checkpoint, tmp_path / "checkpoint")
    # Point the stored settings at the new folder, so that only the data differs.
    manifest = json.loads((folder / CHECKPOINT_FILE).read_text())
    manifest["settings"]["data_dir"] = str(data)
    (folder / CHECKPOINT_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as error:
        run_small(data, folder, resume=True)
    assert str(error.value).startswith(f"the checkpoint in {folder} was written for other data (FEMNIST 1 LEAF shards")


def test_other_files_in_folder_kept(small_data: Path, tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"someone else's weights")
    (tmp_path / "notes.txt").write_text("kept")
    run_small(small_data, tmp_path)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert "model.pt" in names
    assert "notes.txt" in names
    assert not [name for name in names if name.endswith(".tmp")]


# ---------------------------------------------------------------- the checkpoint module alone


def grown_model(units: int) -> CharacterCNN:
    head = IncrementalClassifier(FEATURE_DIM, initial_out_features=2)
    head.classifier = torch.nn.Linear(FEATURE_DIM, units)
    head.active_units = torch.zeros(units, dtype=torch.int8)
    head.active_units[: units - 2] = 1
    return CharacterCNN(head)


class Holder:
    """The attributes that capture_strategy reads, without a whole strategy."""

    def __init__(self, model) -> None:
        self.model = model
        self.distance = None


def test_restore_resizes_head() -> None:
    saved = Holder(grown_model(31))
    attributes, tensors = capture_strategy(saved)
    fresh = Holder(CharacterCNN(IncrementalClassifier(FEATURE_DIM, initial_out_features=2)))

    restore_strategy(fresh, attributes, tensors)

    head = fresh.model.head
    assert head.classifier.out_features == 31
    assert torch.equal(head.active_units, saved.model.head.active_units)
    assert torch.equal(head.classifier.weight, saved.model.head.classifier.weight)
    images = torch.rand(4, 1, 28, 28)
    saved.model.eval()
    fresh.model.eval()
    assert torch.equal(fresh.model(images), saved.model(images))


def test_restore_sets_rng_state() -> None:
    saved = Holder(grown_model(4))
    attributes, tensors = capture_strategy(saved)
    expected = torch.rand(3)
    torch.rand(10)
    restore_strategy(Holder(grown_model(4)), attributes, tensors)
    assert torch.equal(torch.rand(3), expected)


def assigned_attributes(source: Path, class_name: str) -> set[str]:
    """Return the names X of every ``self.X = ...`` in the methods of ``class_name``."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    names = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                names.add(target.attr)
    return names


def test_every_strategy_attribute_classified() -> None:
    model = CharacterCNN(IncrementalClassifier(FEATURE_DIM))
    template = SupervisedTemplate(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    own = {name for name in assigned_attributes(STRATEGY_SOURCE, "SAEStrategy") if not hasattr(template, name)}
    unclassified = own - set(STATE_ATTRIBUTES) - set(NOT_STATE_ATTRIBUTES)
    assert not unclassified, f"add each to STATE_ATTRIBUTES or NOT_STATE_ATTRIBUTES in zsl_cl/training/checkpoint.py: {sorted(unclassified)}"


# ---------------------------------------------------------------- a real process killed with SIGKILL


KILLER = '''
import os
import signal

from zsl_cl.hookspecs import hookimpl


@hookimpl
def after_experience_evaluated(strategy, experience_index, metrics):
    if experience_index == int(os.environ["KILL_AT_EXPERIENCE"]):
        os.kill(os.getpid(), signal.SIGKILL)
'''

KILL_AT = 4
R1_ARGS = ["--source", "femnist", "--split", "R1", "--preset", "paper", "--epochs", "1", "--no-download", "--quiet"]


def run_cli(args: list[str], cache_home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="200", **env)
    environment.pop("ZSL_CL_DATA", None)
    return subprocess.run([sys.executable, "-m", "zsl_cl", "evaluate", *args], capture_output=True, text=True, env=environment, timeout=1800)


@pytest.fixture(scope="module")
def killed_run(shared_data: Path, tmp_path_factory) -> dict:
    """Run R1 once uninterrupted, and once killed with SIGKILL while experience KILL_AT is evaluated."""
    folder = tmp_path_factory.mktemp("killed")
    cache_home = folder / "cache-home"
    (folder / "killer_plugin.py").write_text(KILLER)
    data = ["--data-dir", str(shared_data)]

    reference = run_cli([*R1_ARGS, *data, "--output", str(folder / "reference.json")], cache_home)
    assert reference.returncode == 0, reference.stderr

    checkpoints, output = folder / "checkpoints", folder / "resumed.json"
    killed = run_cli(
        [*R1_ARGS, *data, "--output", str(output), "--checkpoint-dir", str(checkpoints), "--plugin", "killer_plugin"],
        cache_home,
        KILL_AT_EXPERIENCE=str(KILL_AT),
        PYTHONPATH=os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
    )
    return {"folder": folder, "cache_home": cache_home, "data": data, "checkpoints": checkpoints, "output": output, "killed": killed}


@pytest.mark.slow
def test_sigkill_leaves_complete_checkpoint(killed_run: dict) -> None:
    assert killed_run["killed"].returncode == -signal.SIGKILL
    assert not killed_run["output"].exists()
    manifest = json.loads((killed_run["checkpoints"] / CHECKPOINT_FILE).read_text())
    # The hook runs before its experience is saved, so the last complete experience is the one before.
    assert [record["index"] for record in manifest["experiences"]] == list(range(KILL_AT))
    for entry in manifest["files"].values():
        assert (killed_run["checkpoints"] / entry["name"]).is_file()


@pytest.mark.slow
def test_sigkill_resume_same_results(killed_run: dict, tmp_path: Path) -> None:
    # A copy, so that the killed checkpoint stays as it was for the other tests.
    checkpoints = copy_checkpoint(killed_run["checkpoints"], tmp_path / "checkpoints")
    args = [*R1_ARGS, *killed_run["data"], "--output", str(killed_run["output"]), "--checkpoint-dir", str(checkpoints), "--resume"]
    resumed = run_cli(args, killed_run["cache_home"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from the checkpoint in {checkpoints}: experiences 0 to {KILL_AT - 1} are complete" in resumed.stderr

    reference = json.loads((killed_run["folder"] / "reference.json").read_text())
    results = json.loads(killed_run["output"].read_text())
    assert results["timing"]["resumed_after_experience"] == KILL_AT - 1
    assert len(results["experiences"]) == len(reference["experiences"])
    assert as_text(results) == as_text(reference)


@pytest.mark.slow
def test_sigkill_resume_other_seed_rejected(killed_run: dict) -> None:
    checkpoints = killed_run["checkpoints"]
    args = [*R1_ARGS, *killed_run["data"], "--checkpoint-dir", str(checkpoints), "--resume", "--seed", "1"]
    completed = run_cli(args, killed_run["cache_home"])
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        f"Error: the checkpoint in {checkpoints} was written with --seed 0, but this run has --seed 1: "
        "rerun with --seed 0 to resume, or choose another --checkpoint-dir"
    ]
