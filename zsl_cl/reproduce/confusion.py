"""Per-class top-1 confusion in the Ω→Ω mapping: which classes each true class is assigned to, ranked by share."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.reproduce.plotting import plt, save_figure

__all__ = ["ClassAssignments", "confusion_counts", "rank_assignments", "write_confusion_csv", "confusion_table", "plot_confusion"]


@dataclass
class ClassAssignments:
    """The assigned classes of one true class's test samples, most frequent first."""

    true_class: int
    samples: int  # test samples of the class, summed over every pooled draw
    ranked: list[tuple[int, float]]  # (assigned class, share %), leaving out classes that received no sample


def confusion_counts(labels: np.ndarray, predicted: np.ndarray, classes: list[int]) -> np.ndarray:
    """Count (C, C) assignments, row = true class and column = predicted class, both in ``classes`` order."""
    position = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true, assigned in zip(labels.tolist(), predicted.tolist()):
        counts[position[true], position[assigned]] += 1
    return counts


def rank_assignments(counts: np.ndarray, classes: list[int]) -> list[ClassAssignments]:
    """Rank each row of ``counts`` by share, breaking ties by the order of ``classes``.

    A row with no samples gets an empty ranking rather than a division by zero.
    """
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(f"invalid confusion counts of shape {counts.shape}: expected {(len(classes), len(classes))} for {len(classes)} classes")
    rankings = []
    for row, true_class in enumerate(classes):
        total = int(counts[row].sum())
        # A stable sort of the negated counts keeps the column order among equal counts.
        order = np.argsort(-counts[row], kind="stable")
        ranked = [(classes[col], 100.0 * float(counts[row, col]) / total) for col in order if counts[row, col] > 0]
        rankings.append(ClassAssignments(true_class, total, ranked))
    return rankings


def write_confusion_csv(rankings: list[ClassAssignments], path: Path) -> Path:
    """Write one row per (true class, assigned class) pair with its rank and share in percent."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["true_class", "pooled_samples", "rank", "assigned_class", "share_percent"])
        for entry in rankings:
            for rank, (assigned, share) in enumerate(entry.ranked, start=1):
                writer.writerow([CLASS_NAMES[entry.true_class], entry.samples, rank, CLASS_NAMES[assigned], f"{share:.2f}"])
    return path


def confusion_table(rankings: list[ClassAssignments], title: str, top: int = 3) -> Table:
    """Build a rich table with the ``top`` most frequent assignments of each class and the share of all others."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    table.add_column("pooled samples", justify="right")
    for rank in range(1, top + 1):
        table.add_column(f"#{rank}", justify="right")
    table.add_column("others %", justify="right")
    for entry in rankings:
        shown = entry.ranked[:top]
        cells = [f"{CLASS_NAMES[c]} {share:.1f}%" for c, share in shown] + [""] * (top - len(shown))
        others = sum(share for _, share in entry.ranked[top:])
        table.add_row(CLASS_NAMES[entry.true_class], str(entry.samples), *cells, f"{others:.1f}")
    return table


def plot_confusion(counts: np.ndarray, classes: list[int], unseen: list[int], path: Path, title: str) -> Path:
    """Draw the row-normalised (C, C) confusion matrix as a PNG, marking unseen class names with '*'."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = 100.0 * counts / np.maximum(totals, 1)  # (C, C) % of each true class
    names = [f"{CLASS_NAMES[c]}*" if c in unseen else CLASS_NAMES[c] for c in classes]

    figure, axes = plt.subplots(figsize=(9, 8))
    image = axes.imshow(shares, cmap="viridis", vmin=0, vmax=100)
    axes.set_xticks(range(len(classes)), names, fontsize=7)
    axes.set_yticks(range(len(classes)), names, fontsize=7)
    axes.set_xlabel("assigned class (top-1, Ω→Ω)")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, label="% of the true class's test samples")
    return save_figure(figure, path)
