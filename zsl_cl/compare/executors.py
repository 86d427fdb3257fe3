"""Run the backbone and strategy jobs in local processes or on a Ray cluster.

Each seed's backbone job runs first; its strategy jobs start as soon as it
finishes, with the trained backbone passed to them as bytes. An executor
returns every job's record, failed ones included, in submission order.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from zsl_cl.compare.jobs import BackboneJob, StrategyJob, run_backbone_job, run_strategy_job

__all__ = ["Plan", "run_local", "run_ray"]

# One entry per seed: its backbone job and the strategy jobs that start from it.
Plan = list[tuple[BackboneJob, list[StrategyJob]]]
Report = Callable[[dict], None]


def _failed(job, error: str) -> dict:
    if isinstance(job, BackboneJob):
        return {"kind": "backbone", "seed": job.seed, "status": "failed", "error": error}
    return {"kind": "strategy", "strategy": job.strategy, "seed": job.seed, "budget": job.budget, "status": "failed", "error": error}


# ----------------------------------------------------------------------- local


def run_local(plan: Plan, workers: int, on_record: Report | None = None) -> tuple[list[dict], list[dict]]:
    """Run the plan in ``workers`` spawned processes; return (backbone records, strategy records).

    A job whose worker process dies (a crash, not an exception) breaks the
    pool for the jobs running beside it. Each such job is therefore retried
    alone in a fresh one-worker pool. The job that crashes again is reported
    as failed, and the others complete.
    """
    results: dict[int, dict] = {}
    retry: list[tuple] = []
    with _pool(workers) as pool:
        pending: dict[Future, tuple] = {}

        def submit(key: tuple) -> None:
            try:
                pending[pool.submit(*_call(key))] = key
            except BrokenProcessPool:
                retry.append(key)

        for position, (backbone_job, _) in enumerate(plan):
            submit((position, backbone_job, None))

        # As each backbone finishes, its seed's strategy jobs queue behind the work already queued.
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                key = pending.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool:
                    retry.append(key)
                    continue
                _store(results, key, record, on_record)
                for follower in _followers(plan, key, record, results, on_record):
                    submit(follower)

    # Only after a crash: every affected job again, one at a time.
    while retry:
        key = retry.pop(0)
        record = _run_alone(key)
        _store(results, key, record, on_record)
        retry += _followers(plan, key, record, results, on_record)
    return _split(results)


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn, because forking a process that already holds torch threads can deadlock.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _call(key: tuple) -> tuple:
    _, job, backbone_record = key
    if isinstance(job, BackboneJob):
        return run_backbone_job, job
    return run_strategy_job, job, backbone_record


def _followers(plan: Plan, key: tuple, record: dict, results: dict, on_record: Report | None) -> list[tuple]:
    """Return the strategy jobs that a finished backbone unblocks; after a failed backbone, record them as failed."""
    if record["kind"] != "backbone":
        return []
    position = key[0]
    keys = [(_slot(plan, position, offset), job, record) for offset, job in enumerate(plan[position][1], start=1)]
    if record["status"] == "ok":
        return keys
    for slot, job, _ in keys:
        _store(results, (slot,), run_strategy_job(job, record), on_record)  # returns at once: the backbone failed
    return []


def _run_alone(key: tuple) -> dict:
    with _pool(1) as pool:
        try:
            return pool.submit(*_call(key)).result()
        except BrokenProcessPool as error:
            return _failed(key[1], f"the worker process died while running this job ({error or 'no message'})")


def _slot(plan: Plan, seed_position: int, offset: int) -> int:
    # Backbones take positions 0..len(plan)-1; strategy jobs follow, seed by seed.
    before = sum(len(jobs) for _, jobs in plan[:seed_position])
    return len(plan) + before + offset - 1


def _store(results: dict, key, record: dict, on_record: Report | None) -> None:
    results[key[0]] = record
    if on_record is not None:
        on_record(record)


def _split(results: dict[int, dict]) -> tuple[list[dict], list[dict]]:
    ordered = [results[position] for position in sorted(results)]
    backbones = [{k: v for k, v in r.items() if k != "payload"} for r in ordered if r["kind"] == "backbone"]
    return backbones, [r for r in ordered if r["kind"] == "strategy"]


# ------------------------------------------------------------------------- ray


def run_ray(plan: Plan, address: str | None, on_record: Report | None = None) -> tuple[list[dict], list[dict]]:
    """Run the plan as Ray tasks, one CPU each; the backbone reaches its strategy jobs through the object store.

    Connects to ``address`` when given. Without it, an already initialised
    Ray is used, or a local Ray instance is started and stopped again.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        backbone_task = ray.remote(num_cpus=1)(run_backbone_job)
        strategy_task = ray.remote(num_cpus=1)(run_strategy_job)
        submitted = []
        for backbone_job, strategy_jobs in plan:
            backbone_ref = backbone_task.remote(backbone_job)
            submitted.append((backbone_job, backbone_ref))
            submitted += [(job, strategy_task.remote(job, backbone_ref)) for job in strategy_jobs]
        return _split(dict(enumerate(_collect_ray(ray, submitted, on_record))))
    finally:
        if started_here:
            ray.shutdown()


def _collect_ray(ray, submitted, on_record: Report | None) -> list[dict]:
    records = []
    for job, ref in submitted:
        try:
            record = ray.get(ref)
        except ray.exceptions.RayError as error:  # the task's worker died or Ray lost the task
            record = _failed(job, f"Ray could not run this job: {type(error).__name__}: {error}")
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray, which is not installed: pip install 'zsl-cl[ray]'") from None
    return ray
