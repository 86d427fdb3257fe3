"""Presets and --set overrides: paper keeps the study's settings, default is pinned and beats paper on real data."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from zsl_cl.config import PRESETS, SAEConfig, get_preset, parse_settings
from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.runner import EvaluateRequest, run_evaluate

# The study's recipe, hyper-parameters and evaluation, written out so that a change to SAEConfig's defaults fails here.
STUDY = {
    "epochs": 4, "lr": 0.01, "momentum": 0.9, "batch_size": 128, "weight_decay": 0.0, "schedule": "constant",
    "head": "linear", "head_scale": 16.0, "augment": False, "size_normalise": False, "ridge": 50.0, "k": 256,
    "lam": 1.0, "refinements": 25, "shots": 1, "solver": "scipy", "distance": "zscore-cosine",
    "feature_weight": 0.0, "reference_views": 0, "calibration": "none", "transductive": False,
}

DEFAULT = {
    **STUDY,
    "epochs": 20, "lr": 0.05, "weight_decay": 5e-4, "schedule": "onecycle", "head": "cosine", "augment": True,
    "size_normalise": True, "solver": "eigh", "distance": "cosine", "feature_weight": 0.5, "reference_views": 16,
    "calibration": "validation",
}


def test_paper_preset_is_the_study() -> None:
    assert asdict(PRESETS["paper"]) == STUDY


def test_default_preset_is_pinned() -> None:
    assert asdict(PRESETS["default"]) == DEFAULT


def test_default_preset_keeps_one_shot() -> None:
    assert PRESETS["default"].shots == 1


def test_set_converts_each_type() -> None:
    settings = parse_settings(["augment=false", "feature-weight=0.3", "epochs=2", "head=linear", "size_normalise=1"])
    assert settings == {"augment": False, "feature_weight": 0.3, "epochs": 2, "head": "linear", "size_normalise": True}


def test_explicit_option_wins_over_set() -> None:
    config = get_preset("default", parse_settings(["epochs=3", "augment=false"]), epochs=5)
    assert (config.epochs, config.augment) == (5, False)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["augment"], "invalid --set 'augment': use NAME=VALUE"),
        (["colour=red"], "invalid --set 'colour=red': use NAME=VALUE with NAME one of epochs"),
        (["augment=maybe"], "invalid --set augment=maybe: use true or false"),
        (["epochs=many"], "invalid --set epochs=many: use a whole number"),
        (["epochs=2.5"], "invalid --set epochs=2.5: use a whole number"),
        (["lr=fast"], "invalid --set lr=fast: use a number"),
        (["lr=inf"], "invalid --set lr=inf: use a finite number"),
        (["ridge=nan"], "invalid --set ridge=nan: use a finite number"),
    ],
)
def test_set_rejects_bad_items(items, message) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_settings(items)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"head": "arc"}, "invalid head 'arc': use one of linear, cosine"),
        ({"schedule": "step"}, "invalid schedule 'step': use one of constant, onecycle"),
        ({"feature_weight": 1.5}, "invalid feature_weight 1.5: use a value from 0 to 1"),
        ({"reference_views": -1}, "invalid reference_views -1: use 0 or more"),
        ({"calibration": "test"}, "invalid calibration 'test': use one of none, validation"),
        ({"weight_decay": -1.0}, "invalid weight_decay -1.0: use a value >= 0"),
        ({"head_scale": 0.0}, "invalid head_scale 0.0: use a value > 0"),
        ({"momentum": 1.0}, "invalid momentum 1.0: use a value from 0 up to, not including, 1"),
    ],
)
def test_invalid_settings_named(change, message) -> None:
    with pytest.raises(ValueError, match="^" + message):
        get_preset("default", change)


def test_unset_fields_keep_their_type() -> None:
    # parse_settings converts by the annotation text, so every field must use one of the handled names.
    assert {field.type for field in SAEConfig.__dataclass_fields__.values()} <= {"int", "float", "bool", "str"}


# ---------------------------------------------------------------- real data


def final_mappings(preset: str, shared_data: Path, cache: Path) -> dict:
    request = EvaluateRequest(
        config=get_preset(preset), source="femnist", data_dir=shared_data, download=False, split="R0", seed=0,
    )
    plugin_manager = get_plugin_manager()
    return run_evaluate(request, plugin_manager, collect_components(plugin_manager))


@pytest.mark.slow
def test_default_beats_paper_on_r0(shared_data: Path, data_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(data_cache_dir))
    paper = final_mappings("paper", shared_data, data_cache_dir)
    default = final_mappings("default", shared_data, data_cache_dir)
    paper_omega = paper["final"]["mappings"]["Omega->Omega"]["top1"]
    default_omega = default["final"]["mappings"]["Omega->Omega"]["top1"]
    assert default_omega > paper_omega + 5, (default_omega, paper_omega)
