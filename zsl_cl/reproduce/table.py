"""The five mappings as mean ± standard deviation over reference draws, and the table1.json payload."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from rich.table import Table

from zsl_cl.core.mappings import MAPPINGS
from zsl_cl.data.classes import CLASS_NAMES

__all__ = ["STUDY_RESULTS", "mean_std", "summarise_mappings", "table_payload", "mappings_table"]

# The study's published top-1 / top-3 % on MNIST digits + EMNIST uppercase letters, one reference draw.
STUDY_RESULTS: dict[str, dict[str, tuple[float, float]]] = {
    "R0": {"U->U": (83.8, 97.0), "U->Omega": (17.0, 72.1), "T->T": (93.3, 99.3), "T->Omega": (92.1, 98.9), "Omega->Omega": (84.2, 96.7)},
    "R1": {"U->U": (53.8, 81.1), "U->Omega": (23.4, 70.2), "T->T": (96.3, 99.8), "T->Omega": (90.8, 98.7), "Omega->Omega": (54.5, 83.7)},
}

POOLING = "mean and sample standard deviation (n - 1) over every (seed, draw) pair; per_seed pools the draws of one seed"


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Return {"mean", "std"} with the sample standard deviation (n − 1), which is 0 for one value."""
    if not values:
        raise ValueError("no values to average: run at least one reference draw")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return {"mean": mean, "std": 0.0}
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return {"mean": mean, "std": math.sqrt(variance)}


def summarise_mappings(results: Iterable) -> dict[str, dict[str, dict[str, float]]]:
    """Pool DrawResults into {mapping: {"top1": {"mean", "std"}, "top3": {...}}}, shaped like evaluate's final.mappings."""
    results = list(results)
    return {
        name: {metric: mean_std([r.mappings[name][metric] for r in results]) for metric in ("top1", "top3")}
        for name in MAPPINGS
    }


def table_payload(request, results: list, seed_info: dict[int, dict], seen: list[int], unseen: list[int]) -> dict:
    """Build table1.json: pooled and per-seed summaries, every draw's raw figures, and the run's settings."""
    per_seed = {
        str(seed): {**info, "mappings": summarise_mappings(r for r in results if r.seed == seed)}
        for seed, info in seed_info.items()
    }
    return {
        "run": request.run,
        "source": request.source,
        "preset": request.preset,
        "distance": request.config.distance,
        "shots": request.config.shots,
        "seeds": list(request.seeds),
        "draws": request.draws,
        "pooling": POOLING,
        "classes": {"T": [CLASS_NAMES[c] for c in seen], "U": [CLASS_NAMES[c] for c in unseen]},
        "mappings": summarise_mappings(results),
        "per_seed": per_seed,
        "draw_results": [{"seed": r.seed, "draw": r.draw, "shots": r.shots, "mappings": r.mappings} for r in results],
        "study_mnist_emnist": {name: {"top1": pair[0], "top3": pair[1]} for name, pair in STUDY_RESULTS[request.run].items()},
        "config": request.describe(),
    }


def mappings_table(summary: dict, title: str, run: str | None = None) -> Table:
    """Build a rich table of the five mappings as mean ± std, with the study's numbers beside them when ``run`` is given."""
    table = Table(title=title, title_justify="left")
    table.add_column("mapping")
    table.add_column("top-1 %", justify="right")
    table.add_column("top-3 %", justify="right")
    if run is not None:
        table.add_column("study top-1 / top-3 %", justify="right")
    for name in MAPPINGS:
        cells = [_mean_std_text(summary[name][metric]) for metric in ("top1", "top3")]
        if run is not None:
            top1, top3 = STUDY_RESULTS[run][name]
            cells.append(f"{top1:.1f} / {top3:.1f}")
        table.add_row(name.replace("Omega", "Ω"), *cells)
    return table


def _mean_std_text(figure: dict[str, float]) -> str:
    return f"{figure['mean']:.1f} ± {figure['std']:.1f}"
