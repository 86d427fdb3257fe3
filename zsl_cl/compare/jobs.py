"""The two kinds of compare job, each a plain function that an executor can run in another process.

A backbone job trains the CNN of one seed. A strategy job runs one strategy
for one seed from that backbone and returns its metrics. Both return a
JSON-ready record whose ``status`` is "ok" or "failed". An exception inside a
job becomes a failed record with the error, so one broken job never stops
the others.
"""

from __future__ import annotations

import functools
import os
import platform
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zsl_cl.config import SAEConfig

__all__ = ["StreamSpec", "BackboneJob", "StrategyJob", "run_backbone_job", "run_strategy_job", "load_stream"]


@dataclass(frozen=True)
class StreamSpec:
    """Data source and stream layout shared by the jobs of one run; each job brings its own seed."""

    source: str
    data_dir: str
    download: bool = False
    split: str | None = None
    unseen: str | None = None
    classes_per_exp: int = 3
    samples_per_class: int | None = None  # cap on train and test samples per class, for quick runs
    size_normalise: bool = False  # crop each image to its ink and centre it, when the preset sets size_normalise


@dataclass(frozen=True)
class BackboneJob:
    seed: int
    stream: StreamSpec
    config: SAEConfig
    device: str = "cpu"
    threads: int = 1


@dataclass(frozen=True)
class StrategyJob:
    strategy: str
    seed: int
    budget: str
    stream: StreamSpec
    config: SAEConfig
    buffer_size: int
    device: str = "cpu"
    threads: int = 1
    loggers: tuple[str, ...] = ()
    log_dir: str | None = None


# ---------------------------------------------------------------------- data


@functools.lru_cache(maxsize=1)
def load_stream(stream: StreamSpec, seed: int):
    """Return (benchmark, layout) for one seed; a worker process keeps the last one for its next job."""
    from zsl_cl.data import load_source, size_normalised
    from zsl_cl.streams import build_stream, plan_stream

    layout = plan_stream(split=stream.split, unseen=stream.unseen, classes_per_exp=stream.classes_per_exp, seed=seed)
    data = load_source(stream.source, stream.data_dir, seed=seed, download=stream.download)
    if stream.samples_per_class is not None:
        data = cap_samples(data, stream.samples_per_class, seed)
    return build_stream(size_normalised(data, stream.size_normalise), layout), layout


def cap_samples(data, per_class: int, seed: int):
    """Keep at most ``per_class`` train and test samples of each class, drawn with the seed."""
    rng = np.random.default_rng(seed)

    def keep(labels: np.ndarray) -> np.ndarray:
        picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
        return np.sort(np.concatenate(picked))

    train, test = keep(data.train_labels), keep(data.test_labels)
    data.train_images, data.train_labels = data.train_images[train], data.train_labels[train]
    data.test_images, data.test_labels = data.test_images[test], data.test_labels[test]
    data.description += f"; at most {per_class} samples per class and split"
    return data


# ------------------------------------------------------------------------ jobs


def run_backbone_job(job: BackboneJob) -> dict:
    """Train the shared backbone of one seed; the record carries it as bytes in ``payload``."""
    from zsl_cl.compare.backbone import train_backbone
    from zsl_cl.compare.strategies import SI_EPS

    def work() -> dict:
        torch.set_num_threads(job.threads)
        benchmark, _ = load_stream(job.stream, job.seed)
        backbone = train_backbone(benchmark.train_stream[0], job.config, job.seed, job.device, si_eps=SI_EPS)
        return {"train_seconds": backbone.train_seconds, "payload": backbone.to_bytes()}

    return _guarded({"kind": "backbone", "seed": job.seed}, work)


def run_strategy_job(job: StrategyJob, backbone_record: dict) -> dict:
    """Run one strategy on one seed's stream from the shared backbone in ``backbone_record``."""
    record = {"kind": "strategy", "strategy": job.strategy, "seed": job.seed, "budget": job.budget}
    if backbone_record.get("status") != "ok":
        return {**record, "status": "failed", "error": f"the backbone of seed {job.seed} failed: {backbone_record.get('error')}"}
    return _guarded(record, lambda: _walk_stream(job, backbone_record["payload"]))


def _guarded(record: dict, work) -> dict:
    # Any exception is reported in the record, because a job must never take
    # the other jobs down; the traceback is kept for the JSON output.
    started = time.perf_counter()
    try:
        result = {**record, "status": "ok", **work()}
    except Exception as error:  # noqa: BLE001 - reported, not swallowed
        result = {**record, "status": "failed", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    result["job_seconds"] = time.perf_counter() - started
    result["worker"] = f"{platform.node()}:{os.getpid()}"
    return result


def _walk_stream(job: StrategyJob, payload: bytes) -> dict:
    from zsl_cl.compare.backbone import SharedBackbone
    from zsl_cl.compare.budgets import budget_stream
    from zsl_cl.compare.evaluation import SeenClassesOnly
    from zsl_cl.compare.loggers import close_loggers, make_loggers
    from zsl_cl.compare.samples import SampleRecorder
    from zsl_cl.compare.strategies import StrategyContext, build_learner

    # Set-up: data, backbone, loggers, and the plugins that every strategy gets.
    torch.set_num_threads(job.threads)
    benchmark, layout = load_stream(job.stream, job.seed)
    recorder = SampleRecorder() if job.budget == "one-shot" else None
    folder = Path(job.log_dir) / f"{_safe(job.strategy)}-seed{job.seed}" if job.log_dir else None
    loggers = make_loggers(job.loggers, folder) if folder else []
    plugins = [SeenClassesOnly()] + ([recorder] if recorder else [])
    context = StrategyContext(
        name=job.strategy, backbone=SharedBackbone.from_bytes(payload), config=job.config, buffer_size=job.buffer_size,
        budget=job.budget, seed=job.seed, device=job.device, plugins=plugins, loggers=loggers, recorder=recorder,
    )

    # The strategy, seeded so that its mini-batch order and buffer draws repeat.
    # Library warnings go into the record rather than onto the terminal of a
    # run with many jobs; Avalanche shows each deprecation warning once.
    torch.manual_seed(job.seed)
    with warnings.catch_warnings(record=True) as caught:
        try:
            learner = build_learner(context)
            train_stream = budget_stream(benchmark.train_stream, layout, job.budget, job.seed)
            experiences = _train_and_evaluate(learner, train_stream, benchmark.test_stream, loggers)
        finally:
            close_loggers(loggers)
    return {
        "experiences": experiences,
        "trained_on": recorder.summary() if recorder else None,
        "avalanche_metrics": learner.avalanche_metrics,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }


def _train_and_evaluate(learner, train_stream, test_stream, loggers) -> list[dict]:
    from zsl_cl.compare.loggers import log_values
    from zsl_cl.compare.metrics import measure

    records = []
    for experience in train_stream:
        index = experience.current_experience
        seconds, peak = measure(lambda: learner.train(experience))
        evaluation = learner.evaluate(test_stream[: index + 1])
        record = {
            "index": index,
            "adapt_seconds": seconds,
            "peak_rss_mb": peak,
            "accuracy": {str(j): value for j, value in evaluation["per_experience"].items()},
            "seen_accuracy": evaluation["seen"],
        }
        record.update({key: evaluation[key] for key in ("base_forgetting", "bwt") if key in evaluation})
        records.append(record)
        log_values(loggers, _logged_values(learner, record), step=index)
    return records


def _logged_values(learner, record: dict) -> dict[str, float]:
    # Avalanche's EvaluationPlugin already sends the baselines' accuracies to
    # the loggers; the SAE's are sent here under the same names, as fractions.
    values = {"compare/adapt_seconds": record["adapt_seconds"], "compare/peak_rss_mb": record["peak_rss_mb"]}
    if not learner.avalanche_metrics:
        for j, accuracy in record["accuracy"].items():
            values[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{int(j):03d}"] = accuracy / 100.0
        values["Top1_Acc_Stream/eval_phase/test_stream"] = record["seen_accuracy"] / 100.0
    return values


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
