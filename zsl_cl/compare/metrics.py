"""Metric definitions: the accuracy matrix, forgetting, backward transfer, cost.

Accuracies are percentages. ``matrix[i][j]`` is the accuracy on the test data
of experience j after training on experience i, for j <= i. The definitions
below are those of Avalanche 0.6.0's ExperienceForgetting and StreamBWT, so
the SAE, whose metrics compare computes itself, is scored like the baselines,
whose metrics come from Avalanche's EvaluationPlugin.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Callable

__all__ = [
    "base_forgetting",
    "stream_bwt",
    "final_average_accuracy",
    "average_incremental_accuracy",
    "read_avalanche_accuracies",
    "read_avalanche_final",
    "measure",
    "mean_std",
]

# Avalanche 0.6.0's metric names; the task part appears only on task-aware streams.
_EXPERIENCE_ACCURACY = re.compile(r"^Top1_Acc_Exp/eval_phase/[^/]+(?:/Task\d+)?/Exp(\d+)$")
_STREAM_ACCURACY = re.compile(r"^Top1_Acc_Stream/eval_phase/[^/]+(?:/Task\d+)?$")
_BASE_FORGETTING = re.compile(r"^ExperienceForgetting/eval_phase/[^/]+(?:/Task\d+)?/Exp0+$")
_STREAM_BWT = re.compile(r"^StreamBWT/eval_phase/[^/]+$")


def base_forgetting(matrix: list[list[float]]) -> float:
    """Accuracy on the base classes right after experience 0 minus after the last experience, in points."""
    return matrix[0][0] - matrix[-1][0]


def stream_bwt(matrix: list[list[float]]) -> float:
    """Mean over every experience j but the last of (final accuracy on j - accuracy on j right after training j).

    Negative values mean forgetting. With one experience there is nothing to
    average and the result is 0, as Avalanche's StreamBWT reports.
    """
    last = matrix[-1]
    gaps = [last[j] - matrix[j][j] for j in range(len(matrix) - 1)]
    return statistics.fmean(gaps) if gaps else 0.0


def final_average_accuracy(matrix: list[list[float]]) -> float:
    """Mean over experiences of the accuracy on each one's test data after the last experience.

    Unlike the accuracy on all seen test samples, every experience weighs the
    same here, so the few new classes count as much as the many base classes.
    """
    return statistics.fmean(matrix[-1])


def average_incremental_accuracy(seen_accuracy: list[float]) -> float:
    """Mean over experiences of the accuracy on every class seen so far."""
    return statistics.fmean(seen_accuracy)


def read_avalanche_accuracies(metrics: dict, experiences: list[int]) -> dict:
    """Return {"per_experience": {j: %}, "seen": %} from an EvaluationPlugin's last metrics.

    Avalanche reports fractions; they are turned into percentages here.
    Raises ValueError when an evaluated experience has no accuracy, which
    means the evaluator lacks accuracy_metrics(experience=True, stream=True).
    """
    per_experience, seen = {}, None
    for name, value in metrics.items():
        if match := _EXPERIENCE_ACCURACY.match(name):
            per_experience[int(match.group(1))] = 100.0 * float(value)
        elif _STREAM_ACCURACY.match(name):
            seen = 100.0 * float(value)
    missing = [j for j in experiences if j not in per_experience]
    if missing or seen is None:
        raise ValueError(f"the evaluator reported no accuracy for experiences {missing or experiences}: add accuracy_metrics; got {sorted(metrics)}")
    return {"per_experience": {j: per_experience[j] for j in experiences}, "seen": seen}


def read_avalanche_final(metrics: dict) -> dict:
    """Return {"base_forgetting": points, "bwt": points} from the metrics of the last evaluation."""
    final = {}
    for name, value in metrics.items():
        if _BASE_FORGETTING.match(name):
            final["base_forgetting"] = 100.0 * float(value)
        elif _STREAM_BWT.match(name):
            final["bwt"] = 100.0 * float(value)
    return final


def measure(action: Callable[[], None], sample_seconds: float = 0.05) -> tuple[float, float]:
    """Run ``action`` and return (wall seconds, peak resident memory in MB of this process).

    The peak comes from Avalanche's MaxRAM, which samples the process RSS
    every ``sample_seconds`` on a thread, so a shorter spike can be missed.
    """
    from zsl_cl.compare._avalanche import MaxRAM

    ram = MaxRAM(every=sample_seconds)
    ram.start_thread()
    start = time.perf_counter()
    try:
        action()
    finally:
        seconds = time.perf_counter() - start
        ram.stop_thread()
    return seconds, float(ram.result())


def mean_std(values: list[float]) -> tuple[float, float]:
    """Return (mean, sample standard deviation); the deviation is 0 for a single value."""
    if not values:
        return float("nan"), float("nan")
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread
