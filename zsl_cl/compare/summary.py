"""Per-run metrics from a strategy job's record, and their mean and spread over seeds."""

from __future__ import annotations

import math
import statistics

from zsl_cl.compare.metrics import average_incremental_accuracy, base_forgetting, final_average_accuracy, mean_std, stream_bwt

__all__ = ["SUMMARY_METRICS", "run_metrics", "summarise"]

# name -> (column title, unit); every metric is summarised as mean and std over seeds.
SUMMARY_METRICS = {
    "final_accuracy": ("final seen acc", "%"),
    "final_average_accuracy": ("final avg acc", "%"),
    "avg_incremental_accuracy": ("avg incr acc", "%"),
    "base_forgetting": ("base forgetting", "points"),
    "bwt": ("BWT", "points"),
    "adapt_seconds": ("adapt / exp", "s"),
    "base_seconds": ("exp-0 state", "s"),
    "peak_rss_mb": ("peak RSS", "MB"),
}


def accuracy_matrix(record: dict) -> list[list[float]]:
    """Return matrix[i][j]: accuracy (%) on experience j's test data after training experience i."""
    return [[experience["accuracy"][str(j)] for j in range(experience["index"] + 1)] for experience in record["experiences"]]


def run_metrics(record: dict) -> dict:
    """Return the summary metrics of one successful strategy job.

    Forgetting and BWT come from Avalanche's EvaluationPlugin when the
    strategy reported them. For the SAE and custom learners, they are
    computed from the accuracy matrix with the same definitions.
    """
    experiences = record["experiences"]
    matrix = accuracy_matrix(record)
    later = [e["adapt_seconds"] for e in experiences[1:]]
    return {
        "final_accuracy": experiences[-1]["seen_accuracy"],
        "final_average_accuracy": final_average_accuracy(matrix),
        "avg_incremental_accuracy": average_incremental_accuracy([e["seen_accuracy"] for e in experiences]),
        "base_forgetting": experiences[-1].get("base_forgetting", base_forgetting(matrix)),
        "bwt": experiences[-1].get("bwt", stream_bwt(matrix)),
        "adapt_seconds": statistics.fmean(later) if later else math.nan,
        "base_seconds": experiences[0]["adapt_seconds"],
        "peak_rss_mb": max(e["peak_rss_mb"] for e in experiences),
        "seen_accuracy": [e["seen_accuracy"] for e in experiences],
    }


def summarise(records: list[dict], strategies: tuple[str, ...]) -> list[dict]:
    """Return one row per strategy: mean and std of each metric over its successful seeds, and its errors."""
    per_run = {id(r): run_metrics(r) for r in records if r["status"] == "ok"}
    rows = []
    for name in strategies:
        runs = [r for r in records if r["strategy"] == name]
        metrics = [per_run[id(r)] for r in runs if id(r) in per_run]
        row = {"strategy": name, "runs": len(runs), "ok": len(metrics)}
        row["errors"] = [f"seed {r['seed']}: {r['error']}" for r in runs if r["status"] != "ok"]
        for key in SUMMARY_METRICS:
            row[key] = mean_std([m[key] for m in metrics if not math.isnan(m[key])])
        curves = [m["seen_accuracy"] for m in metrics]
        row["seen_accuracy"] = [mean_std([curve[i] for curve in curves]) for i in range(min(map(len, curves), default=0))]
        rows.append(row)
    _add_time_ratio(rows)
    return rows


def _add_time_ratio(rows: list[dict]) -> None:
    # The ratio compares mean adaptation times over the same seeds of this run.
    sae = next((row for row in rows if row["strategy"] == "sae"), None)
    reference = sae["adapt_seconds"][0] if sae else math.nan
    for row in rows:
        usable = reference > 0 and not math.isnan(row["adapt_seconds"][0])
        row["adapt_ratio_to_sae"] = row["adapt_seconds"][0] / reference if usable else math.nan
