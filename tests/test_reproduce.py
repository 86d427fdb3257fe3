"""Tests of ``zsl-cl reproduce``: the pure table functions on hand-made inputs, and the command on real FEMNIST data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zsl_cl.cli import app
from zsl_cl.config import get_preset
from zsl_cl.core.mappings import MAPPINGS
from zsl_cl.data import CharacterData
from zsl_cl.data.classes import CLASS_NAMES, SPLITS, parse_classes
from zsl_cl.reproduce.confusion import confusion_counts, rank_assignments
from zsl_cl.reproduce.draws import adapt_draw, evaluate_draw, limit_train_per_class, train_seed
from zsl_cl.reproduce.interpolation import bilinear_grid, corner_classes
from zsl_cl.reproduce.request import ReproduceRequest, parse_int_list
from zsl_cl.reproduce.sensitivity import pick_draws
from zsl_cl.reproduce.table import mean_std
from zsl_cl.streams import draw_references

FIGURES = ["reconstructions_unseen.png", "reconstructions_seen.png", "interpolation.png", "confusion.png", "sensitivity.png", "shots_curve.png"]

# Real-data runs keep CI short: one epoch, 100 training images per class and the eigh solver,
# because these tests check the reproduction's bookkeeping, not the accuracy of the method.
QUICK = ["--epochs", "1", "--train-per-class", "100", "--solver", "eigh", "--decoder-epochs", "1"]


def run_cli(args, cache_home, timeout=900):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "zsl_cl", *args], capture_output=True, text=True, env=env, timeout=timeout)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


# ---------------------------------------------------------------- pure functions


def test_confusion_counts_rows_are_true_classes():
    counts = confusion_counts(np.array([5, 5, 5, 7]), np.array([5, 7, 7, 7]), [5, 7])

    assert counts.tolist() == [[1, 2], [0, 1]]


def test_rank_assignments_orders_by_share():
    counts = np.array([[6, 3, 1], [0, 0, 0], [2, 2, 4]])

    rankings = rank_assignments(counts, [4, 8, 9])

    assert rankings[0].true_class == 4
    assert rankings[0].samples == 10
    assert rankings[0].ranked == [(4, 60.0), (8, 30.0), (9, 10.0)]
    assert rankings[2].ranked == [(9, 50.0), (4, 25.0), (8, 25.0)]  # the tie keeps class order


def test_rank_assignments_empty_row_and_zero_shares():
    counts = np.array([[0, 0], [0, 7]])

    rankings = rank_assignments(counts, [1, 2])

    assert rankings[0].samples == 0
    assert rankings[0].ranked == []
    assert rankings[1].ranked == [(2, 100.0)]  # a class that received no sample is left out


def test_rank_assignments_shares_sum_to_100():
    counts = np.random.default_rng(0).integers(0, 50, size=(6, 6))

    for entry in rank_assignments(counts, list(range(6))):
        assert sum(share for _, share in entry.ranked) == pytest.approx(100.0)


def test_rank_assignments_rejects_wrong_shape():
    with pytest.raises(ValueError, match="invalid confusion counts"):
        rank_assignments(np.zeros((2, 3)), [0, 1])


def test_pick_draws_best_median_worst():
    best, median, worst = pick_draws([40.0, 90.0, 10.0, 70.0, 55.0])

    assert (best, median, worst) == (1, 4, 2)


def test_pick_draws_even_count_takes_lower_median():
    # Sorted, the draws are 10 (2), 40 (0), 70 (3) and 90 (1). The lower median is 40, an actual draw.
    assert pick_draws([40.0, 90.0, 10.0, 70.0]) == (1, 0, 2)


def test_pick_draws_ties_and_single_draw():
    assert pick_draws([50.0, 50.0, 50.0]) == (0, 1, 0)
    assert pick_draws([12.5]) == (0, 0, 0)
    with pytest.raises(ValueError, match="no accuracies"):
        pick_draws([])


def test_mean_std_uses_sample_std():
    figure = mean_std([1.0, 2.0, 3.0, 4.0])

    assert figure["mean"] == pytest.approx(2.5)
    assert figure["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert mean_std([7.0]) == {"mean": 7.0, "std": 0.0}


def test_bilinear_grid_corners_centre_and_edges():
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)

    grid = bilinear_grid(corners, steps=3)  # (3, 3, 2)

    assert grid.shape == (3, 3, 2)
    assert torch.equal(grid[0, 0], corners[0])
    assert torch.equal(grid[0, -1], corners[1])
    assert torch.equal(grid[-1, 0], corners[2])
    assert torch.equal(grid[-1, -1], corners[3])
    assert torch.allclose(grid[1, 1], corners.mean(dim=0))
    assert torch.allclose(grid[0, 1], (corners[0] + corners[1]) / 2)  # the top edge mixes only the top corners


def test_bilinear_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="expected \\(4, D\\)"):
        bilinear_grid(torch.zeros(3, 5), steps=4)
    with pytest.raises(ValueError, match="invalid interpolation steps"):
        bilinear_grid(torch.zeros(4, 5), steps=1)


def test_corner_classes_prefers_3g8s():
    r0_seen = [c for c in range(35) if c not in parse_classes(SPLITS["R0"])]
    r1_seen = [c for c in range(35) if c not in parse_classes(SPLITS["R1"])]

    assert [CLASS_NAMES[c] for c in corner_classes(r0_seen)] == ["3", "G", "8", "S"]
    assert [CLASS_NAMES[c] for c in corner_classes(r1_seen)] == ["5", "9", "C", "F"]  # 3 and 8 are unseen in R1


def test_parse_int_list():
    assert parse_int_list("1, 2,5,10", "--shots-curve", "1,2") == (1, 2, 5, 10)
    assert parse_int_list("none", "--shots-curve", "1,2") == ()
    with pytest.raises(ValueError, match="'x' is not an integer"):
        parse_int_list("1,x", "--shots-curve", "1,2")
    with pytest.raises(ValueError, match="repeated"):
        parse_int_list("0,1,0", "--seeds", "0,1,2")


def test_limit_train_per_class_keeps_test_split():
    labels = np.repeat([0, 1, 2], [5, 30, 12])
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    data = CharacterData(images, labels, images[:4], labels[:4], source="test", description="hand-made")

    limited = limit_train_per_class(data, 10, seed=0)

    assert np.bincount(limited.train_labels).tolist() == [5, 10, 10]
    assert limited.test_labels is data.test_labels
    assert limit_train_per_class(data, None, seed=0) is data


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"run": "R2"}, "unknown run 'R2'"),
        ({"draws": 0}, "invalid --draws 0"),
        ({"seeds": ()}, "--seeds is empty"),
        ({"seeds": (-1,)}, "invalid --seeds -1"),
        ({"shots_curve": (0, 2)}, "invalid --shots-curve 0,2"),
        ({"decoder_epochs": 0}, "invalid --decoder-epochs 0"),
        ({"train_per_class": 5}, "invalid --train-per-class 5"),
    ],
)
def test_request_validate_rejects(changes, message, tmp_path):
    request = ReproduceRequest(config=get_preset("paper"), output_dir=tmp_path, **changes)

    with pytest.raises(ValueError, match=message):
        request.validate()


# ------------------------------------------------------------ command-line errors


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run", "R7"], "unknown run 'R7'"),
        (["--draws", "0"], "invalid --draws 0"),
        (["--shots-curve", "1,two"], "invalid --shots-curve '1,two'"),
        (["--shots-curve", "0,1"], "invalid --shots-curve 0,1"),
        (["--seeds", "0,0"], "invalid --seeds '0,0'"),
        (["--shots", "0"], "invalid --shots 0"),
        (["--decoder", "nope"], "unknown decoder 'nope'"),
        (["--distance", "nope"], "unknown distance 'nope'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_reproduce_bad_input_one_line(args, message, tmp_path):
    result = CliRunner().invoke(app, ["reproduce", "--source", "femnist", "--output-dir", str(tmp_path / "out"), *args])

    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_reproduce_output_dir_is_file(tmp_path):
    existing_file = tmp_path / "existing-file"
    existing_file.write_text("not a folder")

    result = CliRunner().invoke(app, ["reproduce", "--source", "femnist", "--output-dir", str(existing_file)])

    assert result.exit_code == 1
    assert "it is a file" in result.stderr


# ------------------------------------------------------------ real data, command


@pytest.fixture(scope="module")
def reproduce_run(shared_data, data_cache_dir, tmp_path_factory):
    """Run the command once on R0 with 2 shots, 3 draws and a 1,2 shots curve; return the output folder."""
    output = tmp_path_factory.mktemp("reproduce") / "r0"
    completed = run_cli(
        ["reproduce", "--run", "R0", "--source", "femnist", "--data-dir", str(shared_data), "--no-download",
         "--seeds", "0", "--draws", "3", "--shots", "2", "--shots-curve", "1,2", *QUICK, "--output-dir", str(output)],
        cache_home=data_cache_dir,
    )
    assert completed.returncode == 0, completed.stderr
    return output, completed


@pytest.mark.slow
def test_table1_shape(reproduce_run):
    output, _ = reproduce_run
    table = json.loads((output / "table1.json").read_text())

    assert table["run"] == "R0"
    assert table["seeds"] == [0]
    assert table["draws"] == 3
    assert table["shots"] == 2
    assert table["classes"]["U"] == list("2679ELVWY")
    assert len(table["classes"]["T"]) == 26
    assert set(table["mappings"]) == set(MAPPINGS)
    for name in MAPPINGS:
        for metric in ("top1", "top3"):
            figure = table["mappings"][name][metric]
            assert set(figure) == {"mean", "std"}
            assert 0.0 <= figure["mean"] <= 100.0
            assert figure["std"] >= 0.0
        assert table["mappings"][name]["top1"]["mean"] <= table["mappings"][name]["top3"]["mean"]


@pytest.mark.slow
def test_table1_mean_matches_draws(reproduce_run):
    output, _ = reproduce_run
    table = json.loads((output / "table1.json").read_text())
    draws = table["draw_results"]

    assert [(d["seed"], d["draw"], d["shots"]) for d in draws] == [(0, 0, 2), (0, 1, 2), (0, 2, 2)]
    for name in MAPPINGS:
        values = [d["mappings"][name]["top1"] for d in draws]
        assert table["mappings"][name]["top1"]["mean"] == pytest.approx(np.mean(values))
        assert table["mappings"][name]["top1"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert table["per_seed"]["0"]["mappings"] == table["mappings"]


@pytest.mark.slow
def test_draws_change_only_unseen_references(reproduce_run):
    output, _ = reproduce_run
    mappings = json.loads((output / "table1.json").read_text())["mappings"]

    # The seen references are class means, the same in every draw, but the unseen ones are redrawn.
    assert mappings["T->T"]["top1"]["std"] == 0.0
    assert mappings["U->U"]["top1"]["std"] > 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_figure_not_blank(reproduce_run, name):
    output, _ = reproduce_run
    path = output / name

    assert path.stat().st_size > 5_000
    pixels = matplotlib.image.imread(path)  # (H, W, 4) floats in [0, 1]
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100
    assert float(pixels[..., :3].var()) > 1e-3


@pytest.mark.slow
def test_confusion_shares_sum_to_100(reproduce_run):
    output, _ = reproduce_run
    shares = defaultdict(list)
    for row in read_csv(output / "confusion.csv"):
        shares[row["true_class"]].append(float(row["share_percent"]))

    assert len(shares) == 35
    for true_class, values in shares.items():
        assert sum(values) == pytest.approx(100.0, abs=0.2), true_class  # each share is rounded to 0.01
        assert values == sorted(values, reverse=True), true_class


@pytest.mark.slow
def test_confusion_diagonal_matches_omega_accuracy(reproduce_run):
    output, _ = reproduce_run
    table = json.loads((output / "table1.json").read_text())
    correct = total = 0.0
    for row in read_csv(output / "confusion.csv"):
        if row["rank"] == "1":
            total += int(row["pooled_samples"])
        if row["assigned_class"] == row["true_class"]:
            correct += float(row["share_percent"]) / 100 * int(row["pooled_samples"])

    # Every draw scores the same test samples, so the pooled diagonal is the mean Ω→Ω top-1.
    assert 100 * correct / total == pytest.approx(table["mappings"]["Omega->Omega"]["top1"]["mean"], abs=0.05)


@pytest.mark.slow
def test_sensitivity_rows_ordered(reproduce_run):
    output, _ = reproduce_run
    rows = read_csv(output / "sensitivity.csv")

    assert [row["unseen_class"] for row in rows] == list("2679ELVWY")
    for row in rows:
        assert float(row["best_top1_percent"]) >= float(row["median_top1_percent"]) >= float(row["worst_top1_percent"])
        assert {row["best_draw"], row["median_draw"], row["worst_draw"]} <= {"0", "1", "2"}


@pytest.mark.slow
def test_shots_curve_rows(reproduce_run):
    output, _ = reproduce_run
    table = json.loads((output / "table1.json").read_text())
    rows = read_csv(output / "shots_curve.csv")

    assert sorted({int(row["shots"]) for row in rows}) == [1, 2]
    assert len(rows) == 2 * len(MAPPINGS)
    two_shot = {row["mapping"]: float(row["top1_mean"]) for row in rows if row["shots"] == "2"}
    for name in MAPPINGS:
        assert two_shot[name] == pytest.approx(table["mappings"][name]["top1"]["mean"], abs=0.01)


@pytest.mark.slow
def test_command_prints_tables(reproduce_run):
    _, completed = reproduce_run

    assert "Five mappings, mean ± std" in completed.stdout
    assert "U->Ω" in completed.stdout
    assert "best %" in completed.stdout
    assert "table1.json" in completed.stdout


# ------------------------------------------------------------ real data, in process


@pytest.fixture(scope="module")
def session(shared_data, data_cache_dir):
    """A strategy trained on R0 seed 0 with the quick settings."""
    from zsl_cl.plugin_manager import collect_components, get_plugin_manager

    request = ReproduceRequest(
        config=get_preset("paper", epochs=1, solver="eigh"), output_dir=Path("unused"), run="R0", source="femnist",
        data_dir=shared_data, download=False, train_per_class=100,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(data_cache_dir))
        plugin_manager = get_plugin_manager()
        return train_seed(request, 0, plugin_manager, collect_components(plugin_manager))


@pytest.mark.slow
@pytest.mark.parametrize("shots", [1, 3])
def test_shots_reference_is_latent_mean(session, shots):
    adapt_draw(session, draw=4, shots=shots)
    strategy = session.strategy
    experience = session.benchmark.train_stream[1]
    picked = draw_references(experience.dataset.targets, session.unseen, shots, 0, experience.current_experience, 4)
    features, labels = strategy.extract_features(torch.utils.data.Subset(experience.dataset, picked))
    latents = strategy.encode(features)  # (shots·|U|, k)

    assert len(strategy.shot_labels) == shots * len(session.unseen)
    for c in session.unseen:
        expected = latents[labels == c].mean(dim=0)
        assert torch.allclose(strategy.references.subset([c]).vectors[0], expected)


@pytest.mark.slow
def test_per_class_accuracy_averages_to_u_to_u(session):
    result = evaluate_draw(session, draw=1, shots=1)
    labels = session.data.test_labels
    counts = {c: int((labels == c).sum()) for c in session.unseen}

    weighted = sum(result.unseen_top1[c] * counts[c] for c in session.unseen) / sum(counts.values())

    assert weighted == pytest.approx(result.mappings["U->U"]["top1"], abs=1e-3)
    assert int(result.confusion.sum()) == len(labels)
