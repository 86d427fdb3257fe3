"""Time the registered Sylvester solvers side by side on SAE-shaped problems.

Each problem is built like the SAE's: S (k, N) repeats a few class codes, so
A = S Sᵀ is rank-deficient, X (d, N) contains random features, B = λ X Xᵀ and
C = (1 + λ) S Xᵀ. Every solver gets one warm-up call, then the repeats run in
round-robin order so that background load hits all solvers alike. The table
reports the median time, the speed-up against ``scipy`` (scipy time / solver time)
and the relative residual ‖AW + WB − C‖_F / ‖C‖_F.

    python benchmarks/bench_solvers.py
    python benchmarks/bench_solvers.py --device cuda --sizes 256x1568
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np
import scipy
import torch

from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.plugins.solvers import relative_residual

DEFAULT_SIZES = ["256x26", "256x256", "256x1568", "512x1568"]


def parse_size(text: str) -> tuple[int, int]:
    try:
        k, d = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use KxD, for example 256x1568") from None
    if k < 1 or d < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: k and d must be positive")
    return k, d


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[parse_size(s) for s in DEFAULT_SIZES], help="problem sizes as KxD (latent size k, data size d)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per solver and size, after one warm-up call")
    parser.add_argument("--classes", type=int, default=40, help="distinct class codes in S, which bounds the rank of A")
    parser.add_argument("--samples", type=int, default=None, help="samples N per problem (default: max(2000, 2d), so that B has full rank)")
    parser.add_argument("--lam", type=float, default=1.0, help="SAE weight λ")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of A, B and C (scipy copies them to the CPU and solves there)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random problem")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def build_problem(k: int, d: int, n: int, classes: int, lam: float, seed: int, device: str):
    """Return A (k, k), B (d, d) and C (k, d) in float64 on device."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(k, classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=generator)
    s = codes[:, labels]  # (k, N)
    x = torch.randn(d, n, generator=generator, dtype=torch.float64)  # (d, N)
    a, b, c = s @ s.T, lam * x @ x.T, (1 + lam) * s @ x.T
    return a.to(device), b.to(device), c.to(device)


def solver_variants(device: str) -> dict[str, Callable]:
    """Return every registered solver, plus eigh with each CPU path forced, for comparison."""
    registry = collect_components(get_plugin_manager()).solver
    # scipy first: it is the reference that the speed-ups divide.
    names = sorted(registry.names(), key=lambda name: (name != "scipy", name))
    variants = {name: registry.create(name) for name in names}
    if device == "cpu" and "eigh" in variants:
        variants["eigh (cpu_backend=lapack)"] = registry.create("eigh", cpu_backend="lapack")
        variants["eigh (cpu_backend=torch)"] = registry.create("eigh", cpu_backend="torch")
    return variants


def time_call(solver: Callable, a, b, c, device: str) -> tuple[float, torch.Tensor]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    w = solver(a, b, c)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, w


def benchmark_size(k: int, d: int, args: argparse.Namespace, variants: dict[str, Callable]) -> list[dict]:
    n = args.samples or max(2000, 2 * d)
    a, b, c = build_problem(k, d, n, args.classes, args.lam, args.seed, args.device)
    residuals = {}
    for name, solver in variants.items():  # warm-up, which also gives the residual
        _, w = time_call(solver, a, b, c, args.device)
        residuals[name] = relative_residual(a, b, c, w)

    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, solver in variants.items():
            elapsed, _ = time_call(solver, a, b, c, args.device)
            times[name].append(elapsed)

    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians.get("scipy")
    return [
        {"k": k, "d": d, "solver": name, "median_s": medians[name], "speedup": reference / medians[name] if reference else float("nan"), "residual": residuals[name]}
        for name in variants
    ]


def describe_machine(device: str) -> list[str]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"platform: {platform.platform()}, {platform.processor() or platform.machine()}",
        f"CPUs usable: {cpus} (os.cpu_count: {os.cpu_count()}), torch threads: {torch.get_num_threads()}",
        f"python {platform.python_version()}, torch {torch.__version__}, scipy {scipy.__version__}, numpy {np.__version__}",
    ]
    if device == "cuda":
        lines.append(f"GPU: {torch.cuda.get_device_name()}")
    return lines


def format_table(rows: list[dict]) -> list[str]:
    lines = ["| k | d | solver | median s | speed-up vs scipy | relative residual |", "|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['k']} | {row['d']} | {row['solver']} | {row['median_s']:.4f} | {row['speedup']:.1f}x | {row['residual']:.1e} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: --device cuda needs a CUDA device, but torch.cuda.is_available() is False", file=sys.stderr)
        return 0

    print("\n".join(describe_machine(args.device)))
    print(f"load average before: {os.getloadavg()[0]:.2f}; repeats: {args.repeats}; classes: {args.classes}; λ = {args.lam}; device: {args.device}")
    variants = solver_variants(args.device)
    rows = []
    for k, d in args.sizes:
        print(f"timing k={k}, d={d} ...", file=sys.stderr, flush=True)
        rows.extend(benchmark_size(k, d, args, variants))
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("\n".join(format_table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
