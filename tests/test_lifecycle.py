"""Lifecycle hooks fire with the right arguments during a real FEMNIST run."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from zsl_cl.config import get_preset
from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.runner import EvaluateRequest, run_evaluate

pytestmark = pytest.mark.slow

RECORDER_MODULE = '''
from zsl_cl.hookspecs import hookimpl


class Recorder:
    """Record every lifecycle hook call, copying what later steps would change."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def after_backbone_trained(self, strategy, model):
        self.calls.append(("after_backbone_trained", {
            "strategy": strategy, "model": model, "sae_solved": strategy.sae is not None, "references": strategy.references,
            "backbone": {name: value.clone() for name, value in model.features.state_dict().items()},
        }))

    @hookimpl
    def after_references_rebuilt(self, strategy, references):
        self.calls.append(("after_references_rebuilt", {
            "strategy": strategy, "classes": list(references.classes), "sources": list(references.sources),
            "rows": int(references.vectors.shape[0]), "is_current": strategy.references is references,
        }))

    @hookimpl
    def after_head_expanded(self, strategy, head, new_classes):
        self.calls.append(("after_head_expanded", {
            "strategy": strategy, "head": head, "new_classes": list(new_classes), "active_units": int(head.active_units.sum()),
        }))

    @hookimpl
    def after_experience_evaluated(self, strategy, experience_index, metrics):
        self.calls.append(("after_experience_evaluated", {
            "strategy": strategy, "index": experience_index, "metrics": dict(metrics),
        }))


recorder = Recorder()
'''


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory, shared_data, data_cache_dir):
    """Run emnist-incremental on FEMNIST (R0, one epoch, growing head) with a recorder loaded by --plugin spec."""
    folder = tmp_path_factory.mktemp("lifecycle-plugin")
    (folder / "lifecycle_recorder.py").write_text(textwrap.dedent(RECORDER_MODULE), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        patch.setenv("XDG_CACHE_HOME", str(data_cache_dir))  # parsed-data caches stay out of ~/.cache
        plugin_manager = get_plugin_manager(local_plugins=["lifecycle_recorder:recorder"])
        request = EvaluateRequest(
            config=get_preset("default", epochs=1), stream="emnist-incremental", source="femnist",
            data_dir=shared_data, download=False, split="R0", seed=0, expand_head=True,
        )
        results = run_evaluate(request, plugin_manager, collect_components(plugin_manager))
        recorder = sys.modules["lifecycle_recorder"].recorder
        sys.modules.pop("lifecycle_recorder", None)
    return results, recorder.calls


def calls_of(calls, hook):
    return [arguments for name, arguments in calls if name == hook]


def class_ids(names):
    return sorted(CLASS_NAMES.index(name) for name in names)


def test_run_has_several_experiences(recorded_run):
    results, _ = recorded_run

    assert len(results["experiences"]) >= 2


def test_hooks_fire_in_order(recorded_run):
    results, calls = recorded_run
    later = ["after_references_rebuilt", "after_experience_evaluated"] * (len(results["experiences"]) - 1)

    names = [name for name, _ in calls if name != "after_head_expanded"]

    assert names == ["after_backbone_trained", "after_references_rebuilt", "after_experience_evaluated", *later]


def test_after_backbone_trained_arguments(recorded_run):
    _, calls = recorded_run

    [call] = calls_of(calls, "after_backbone_trained")

    assert isinstance(call["model"], torch.nn.Module)
    assert call["model"] is call["strategy"].model
    assert call["sae_solved"]
    assert call["references"] is None  # fires before the first references are built


def test_after_references_rebuilt_once_per_experience(recorded_run):
    results, calls = recorded_run
    rebuilt = calls_of(calls, "after_references_rebuilt")

    assert len(rebuilt) == len(results["experiences"])
    base = class_ids(results["experiences"][0]["new_classes"])
    for call, experience in zip(rebuilt, results["experiences"]):
        assert sorted(call["classes"]) == class_ids(experience["seen_classes"])
        assert call["rows"] == len(call["classes"])
        assert call["is_current"]
        shots = sorted(c for c, source in zip(call["classes"], call["sources"]) if source == "shot")
        assert shots == sorted(set(class_ids(experience["seen_classes"])) - set(base))


def test_after_experience_evaluated_arguments(recorded_run):
    results, calls = recorded_run
    evaluated = calls_of(calls, "after_experience_evaluated")

    assert [call["index"] for call in evaluated] == list(range(len(results["experiences"])))
    for call, experience in zip(evaluated, results["experiences"]):
        assert call["metrics"] == experience
        assert 0.0 <= call["metrics"]["accuracy"] <= 100.0


def test_hooks_share_one_strategy(recorded_run):
    _, calls = recorded_run

    strategies = {id(arguments["strategy"]) for _, arguments in calls}

    assert len(strategies) == 1


def test_after_head_expanded_arguments(recorded_run):
    results, calls = recorded_run
    expanded = calls_of(calls, "after_head_expanded")

    assert len(expanded) == len(results["experiences"]) - 1
    for call, experience in zip(expanded, results["experiences"][1:]):
        assert sorted(call["new_classes"]) == class_ids(experience["new_classes"])
        assert call["active_units"] == len(experience["seen_classes"])


# The same run checks head growth end to end, because it grows the head at every experience.


def test_expanded_head_scores_every_experience(recorded_run):
    results, _ = recorded_run
    for experience in results["experiences"]:
        assert 0.0 <= experience["head_top1"] <= experience["head_top3"] <= 100.0
    # Chance over 35 classes is under 3%; imprinted rows keep the head far above it.
    assert results["experiences"][-1]["head_top1"] > 20.0


def test_novelty_auroc_above_chance(recorded_run):
    results, _ = recorded_run
    *earlier, last = results["experiences"]
    for experience in earlier:
        assert experience["novelty_auroc"] > 60.0
    assert last["novelty_auroc"] is None


def test_later_experiences_take_no_gradient_steps(recorded_run):
    _, calls = recorded_run
    trained = calls_of(calls, "after_backbone_trained")[0]
    final = trained["model"].features.state_dict()
    for name, value in trained["backbone"].items():
        assert torch.equal(final[name], value), name
