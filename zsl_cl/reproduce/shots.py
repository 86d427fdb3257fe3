"""Accuracy against the number of references per unseen class (shots), each averaged in the latent space."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.table import Table

from zsl_cl.core.mappings import MAPPINGS
from zsl_cl.reproduce.plotting import plt, save_figure
from zsl_cl.reproduce.table import summarise_mappings

__all__ = ["shots_curve", "write_curve_csv", "curve_table", "plot_curve"]


def shots_curve(results_by_shots: dict[int, list]) -> dict[int, dict]:
    """Summarise the DrawResults of each shot count as mean ± std of the five mappings, by ascending shots."""
    return {shots: summarise_mappings(results_by_shots[shots]) for shots in sorted(results_by_shots)}


def write_curve_csv(curve: dict[int, dict], path: Path) -> Path:
    """Write one row per (shots, mapping) pair with top-1 and top-3 mean and std in percent."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["shots", "mapping", "top1_mean", "top1_std", "top3_mean", "top3_std"])
        for shots, summary in curve.items():
            for name in MAPPINGS:
                top1, top3 = summary[name]["top1"], summary[name]["top3"]
                writer.writerow([shots, name, f"{top1['mean']:.2f}", f"{top1['std']:.2f}", f"{top3['mean']:.2f}", f"{top3['std']:.2f}"])
    return path


def curve_table(curve: dict[int, dict], title: str) -> Table:
    """Build a rich table with one row per shot count and the top-1 mean ± std of each mapping."""
    table = Table(title=title, title_justify="left")
    table.add_column("shots", justify="right")
    for name in MAPPINGS:
        table.add_column(f"{name.replace('Omega', 'Ω')} top-1 %", justify="right")
    for shots, summary in curve.items():
        cells = [f"{summary[name]['top1']['mean']:.1f} ± {summary[name]['top1']['std']:.1f}" for name in MAPPINGS]
        table.add_row(str(shots), *cells)
    return table


def plot_curve(curve: dict[int, dict], path: Path, title: str) -> Path:
    """Draw top-1 mean ± std of each mapping against the shot count, as a PNG."""
    shots = list(curve)
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    for name in MAPPINGS:
        means = [curve[k][name]["top1"]["mean"] for k in shots]
        stds = [curve[k][name]["top1"]["std"] for k in shots]
        axes.errorbar(shots, means, yerr=stds, marker="o", capsize=3, label=name.replace("Omega", "Ω"))
    axes.set_xscale("log")
    axes.set_xticks(shots, [str(k) for k in shots])
    axes.minorticks_off()
    axes.set_xlabel("references per unseen class (shots)")
    axes.set_ylabel("top-1 % (mean ± std over draws)")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return save_figure(figure, path)
