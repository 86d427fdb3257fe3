"""The compare run: plan one backbone job per seed and one job per (strategy, seed), run them, summarise."""

from __future__ import annotations

import os
import platform
import time
from typing import Callable

import torch

from zsl_cl.compare.executors import Plan, run_local, run_ray
from zsl_cl.compare.jobs import BackboneJob, StrategyJob, StreamSpec
from zsl_cl.compare.request import CompareRequest
from zsl_cl.compare.summary import summarise

__all__ = ["run_compare", "plan_jobs"]


def plan_jobs(request: CompareRequest) -> Plan:
    """Return, per seed, the backbone job and the strategy jobs that start from its backbone."""
    from zsl_cl.data import default_data_dir

    stream = StreamSpec(
        source=request.source,
        data_dir=str(request.data_dir or default_data_dir()),
        download=request.download,
        split=request.split,
        unseen=request.unseen,
        classes_per_exp=request.classes_per_exp,
        samples_per_class=request.samples_per_class,
        size_normalise=request.config.size_normalise,
    )
    # Local workers split the cores between them. Each Ray task reserves one CPU.
    threads = max(1, (os.cpu_count() or 1) // request.jobs) if request.executor == "local" else 1
    log_dir = str(request.output_dir / "logs") if request.output_dir and request.loggers else None
    plan: Plan = []
    for seed in request.seeds:
        backbone = BackboneJob(seed=seed, stream=stream, config=request.config, device=request.device, threads=threads)
        strategies = [
            StrategyJob(
                strategy=name, seed=seed, budget=request.budget, stream=stream, config=request.config,
                buffer_size=request.buffer_size, device=request.device, threads=threads,
                loggers=request.loggers, log_dir=log_dir,
            )
            for name in request.strategies
        ]
        plan.append((backbone, strategies))
    return plan


def check_inputs(request: CompareRequest) -> None:
    """Fail fast, before any job starts: invalid settings, an unplannable stream, unreadable data.

    Loading the first seed's data here also fills the parsed-data cache, so
    local workers read the cache rather than each parsing the source again.
    Data is not loaded for a remote Ray cluster, whose nodes read their own copy.
    """
    from zsl_cl.data import default_data_dir, load_source
    from zsl_cl.runner import check_device
    from zsl_cl.streams import plan_stream

    request.validate()
    check_device(request.device)
    for seed in request.seeds:
        plan_stream(split=request.split, unseen=request.unseen, classes_per_exp=request.classes_per_exp, seed=seed)
    if request.ray_address is None:
        load_source(request.source, request.data_dir or default_data_dir(), seed=request.seeds[0], download=request.download)


def run_compare(request: CompareRequest, on_record: Callable[[dict], None] | None = None) -> dict:
    """Run every job of ``request`` and return the results dict that compare.json holds."""
    check_inputs(request)
    started = time.perf_counter()
    plan = plan_jobs(request)
    if request.executor == "ray":
        backbones, runs = run_ray(plan, request.ray_address, on_record)
    else:
        backbones, runs = run_local(plan, request.jobs, on_record)
    return {
        "request": request.describe(),
        "machine": _machine(),
        "backbones": backbones,
        "runs": runs,
        "summary": summarise(runs, request.strategies),
        "wall_seconds": time.perf_counter() - started,
    }


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
