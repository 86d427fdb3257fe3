"""Reference sensitivity: each unseen class's U→U top-1 accuracy under its best, median and worst reference draw."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.table import Table

from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.reproduce.plotting import plt, save_figure

__all__ = ["DrawPick", "ClassSensitivity", "pick_draws", "class_sensitivity", "write_sensitivity_csv", "sensitivity_table", "plot_sensitivity"]


@dataclass(frozen=True)
class DrawPick:
    """One reference draw and the accuracy (%) that a class reached under it."""

    seed: int
    draw: int
    accuracy: float


@dataclass(frozen=True)
class ClassSensitivity:
    """The best, median and worst reference draw of one unseen class."""

    unseen_class: int
    best: DrawPick
    median: DrawPick
    worst: DrawPick


def pick_draws(accuracies: Sequence[float]) -> tuple[int, int, int]:
    """Return the indices of the best, median and worst of ``accuracies``.

    The median is the lower median, so it is always one of the draws, never an
    average of two. Among equal accuracies the earliest index wins.
    """
    if not accuracies:
        raise ValueError("no accuracies to rank: run at least one reference draw")
    ascending = sorted(range(len(accuracies)), key=lambda i: (accuracies[i], i))
    best = max(range(len(accuracies)), key=lambda i: (accuracies[i], -i))
    return best, ascending[(len(accuracies) - 1) // 2], ascending[0]


def class_sensitivity(results: list, unseen: list[int]) -> list[ClassSensitivity]:
    """Rank the pooled DrawResults of every seed per unseen class by that class's U→U top-1 accuracy."""
    rows = []
    for c in unseen:
        picks = [DrawPick(r.seed, r.draw, r.unseen_top1[c]) for r in results]
        best, median, worst = pick_draws([p.accuracy for p in picks])
        rows.append(ClassSensitivity(c, picks[best], picks[median], picks[worst]))
    return rows


def write_sensitivity_csv(rows: list[ClassSensitivity], path: Path) -> Path:
    """Write one row per unseen class: accuracy and (seed, draw) of its best, median and worst draw."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        header = ["unseen_class"]
        for which in ("best", "median", "worst"):
            header += [f"{which}_top1_percent", f"{which}_seed", f"{which}_draw"]
        writer.writerow(header)
        for row in rows:
            cells = [CLASS_NAMES[row.unseen_class]]
            for pick in (row.best, row.median, row.worst):
                cells += [f"{pick.accuracy:.2f}", pick.seed, pick.draw]
            writer.writerow(cells)
    return path


def sensitivity_table(rows: list[ClassSensitivity], title: str) -> Table:
    """Build a rich table of each unseen class's best, median and worst U→U top-1 accuracy."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    for which in ("best", "median", "worst"):
        table.add_column(f"{which} %", justify="right")
    table.add_column("spread", justify="right")
    for row in rows:
        spread = row.best.accuracy - row.worst.accuracy
        table.add_row(CLASS_NAMES[row.unseen_class], *(f"{p.accuracy:.1f}" for p in (row.best, row.median, row.worst)), f"{spread:.1f}")
    return table


def plot_sensitivity(rows: list[ClassSensitivity], path: Path, title: str) -> Path:
    """Draw each unseen class's worst-to-best range as a bar with its median marked, as a PNG."""
    names = [CLASS_NAMES[r.unseen_class] for r in rows]
    positions = range(len(rows))
    figure, axes = plt.subplots(figsize=(max(4.0, 0.45 * len(rows) + 1.5), 3.6))
    axes.vlines(positions, [r.worst.accuracy for r in rows], [r.best.accuracy for r in rows], color="tab:blue", linewidth=3, label="worst to best")
    axes.scatter(positions, [r.median.accuracy for r in rows], color="black", zorder=3, s=18, label="median")
    axes.set_xticks(list(positions), names)
    axes.set_ylim(-2, 102)
    axes.set_ylabel("U→U top-1 % of the class")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside, so it never hides a bar
    axes.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)
