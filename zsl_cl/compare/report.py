"""The compare results as a rich table, CSV files, a JSON file and a PNG plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from rich.table import Table

from zsl_cl.compare.summary import SUMMARY_METRICS, run_metrics
from zsl_cl.report import write_json

__all__ = ["summary_table", "failure_lines", "write_outputs", "OUTPUT_FILES"]

OUTPUT_FILES = {
    "json": "compare.json",
    "runs": "runs.csv",
    "summary": "summary.csv",
    "plot": "accuracy.png",
}


def _cell(pair: tuple[float, float], digits: int) -> str:
    mean, spread = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def summary_table(results: dict) -> Table:
    """Strategies × metrics, mean ± std over the seeds that completed."""
    request = results["request"]
    seeds = ",".join(str(seed) for seed in request["seeds"])
    table = Table(title=f"{request['budget']} budget, seeds {seeds}, {request['source']}", title_justify="left")
    table.add_column("strategy")
    table.add_column("seeds ok", justify="right")
    for title, unit in SUMMARY_METRICS.values():
        table.add_column(f"{title} ({unit})", justify="right")
    table.add_column("adapt × SAE", justify="right")

    digits = {"adapt_seconds": 3, "base_seconds": 1, "peak_rss_mb": 0}
    for row in results["summary"]:
        cells = [_cell(row[key], digits.get(key, 1)) for key in SUMMARY_METRICS]
        ratio = "-" if math.isnan(row["adapt_ratio_to_sae"]) else f"{row['adapt_ratio_to_sae']:.3g}"
        table.add_row(row["strategy"], f"{row['ok']}/{row['runs']}", *cells, ratio)
    return table


def failure_lines(results: dict) -> list[str]:
    """Return one line per failed job, for printing below the table."""
    lines = [f"backbone seed {b['seed']}: {b['error']}" for b in results["backbones"] if b["status"] != "ok"]
    return lines + [f"{row['strategy']} {error}" for row in results["summary"] for error in row["errors"]]


def write_outputs(results: dict, folder: Path) -> dict[str, Path]:
    """Write compare.json, runs.csv, summary.csv and accuracy.png into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in OUTPUT_FILES.items()}
    write_json(paths["json"], _json_ready(results))
    _write_runs_csv(paths["runs"], results["runs"])
    _write_summary_csv(paths["summary"], results["summary"])
    _plot_accuracy(paths["plot"], results)
    return paths


def _json_ready(value):
    # JSON has no NaN, so a metric that does not exist (no later experience) is null.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _write_runs_csv(path: Path, runs: list[dict]) -> None:
    # One row per (strategy, seed); seen_accuracy_i is the accuracy on every class seen after experience i.
    width = max((len(r["experiences"]) for r in runs if r["status"] == "ok"), default=0)
    header = ["strategy", "seed", "budget", "status", *SUMMARY_METRICS, *[f"seen_accuracy_{i}" for i in range(width)], "error"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for run in runs:
            metrics = run_metrics(run) if run["status"] == "ok" else {}
            curve = metrics.get("seen_accuracy", [])
            values = [metrics.get(key, "") for key in SUMMARY_METRICS]
            writer.writerow([run["strategy"], run["seed"], run["budget"], run["status"], *values, *curve, *[""] * (width - len(curve)), run.get("error", "")])


def _write_summary_csv(path: Path, rows: list[dict]) -> None:
    header = ["strategy", "runs", "ok"] + [f"{key}_{part}" for key in SUMMARY_METRICS for part in ("mean", "std")]
    header += ["adapt_ratio_to_sae", "errors"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in rows:
            values = [value for key in SUMMARY_METRICS for value in row[key]]
            writer.writerow([row["strategy"], row["runs"], row["ok"], *values, row["adapt_ratio_to_sae"], " | ".join(row["errors"])])


def _plot_accuracy(path: Path, results: dict) -> None:
    """Accuracy on the classes seen so far after each experience: one line per strategy, mean ± std band."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to the PNG
    from matplotlib import pyplot

    # tab20 and a marker cycle keep up to 20 strategies apart; the SAE's line is drawn thicker.
    colours = matplotlib.colormaps["tab20"].colors
    markers = "osD^v<>pPX*h"
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for number, row in enumerate(row for row in results["summary"] if row["seen_accuracy"]):
        steps = list(range(len(row["seen_accuracy"])))
        means = [mean for mean, _ in row["seen_accuracy"]]
        spreads = [spread for _, spread in row["seen_accuracy"]]
        colour = colours[(2 * number) % 20 + (number // 10) % 2]
        width = 2.5 if row["strategy"] == "sae" else 1.2
        axes.plot(steps, means, marker=markers[number % len(markers)], color=colour, linewidth=width, label=row["strategy"])
        axes.fill_between(steps, [m - s for m, s in zip(means, spreads)], [m + s for m, s in zip(means, spreads)], color=colour, alpha=0.12)
    axes.set_xlabel("after experience")
    axes.set_ylabel("accuracy on seen classes (%)")
    axes.set_title(f"{results['request']['budget']} budget, mean ± std over seeds")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
