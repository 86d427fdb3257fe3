"""Run the evaluate job for several splits and seeds; print its accuracy and wall time.

Each run is the installed ``zsl-cl evaluate`` command in a fresh process, so
the wall time includes start-up, data loading (cached after the first run),
backbone training, the SAE solve, adaptation and evaluation.

    python benchmarks/bench_evaluate.py --splits R0,R1 --seeds 0,1,2 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

MAPPINGS = ["U->U", "U->Omega", "T->T", "T->Omega", "Omega->Omega"]


def run_once(args, split: str, seed: int) -> dict:
    output = Path(args.output_dir) / f"{args.preset}_{split}_seed{seed}.json"
    command = [
        sys.executable, "-m", "zsl_cl", "evaluate", "--stream", "emnist-incremental", "--source", args.source,
        "--data-dir", args.data_dir, "--split", split, "--preset", args.preset, "--seed", str(seed),
        "--output", str(output), "--quiet", *args.extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    results = json.loads(output.read_text())
    return {"split": split, "seed": seed, "wall": wall, "results": results}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def print_report(runs: list[dict]) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for run in runs:
        if "open_world" in run["results"]:
            print(f"{run['split']} seed {run['seed']}: open-world run, {run['wall']:.0f} s; its metrics are in the JSON output")
    runs = [run for run in runs if "final" in run["results"]]
    header = ["split", "seed", *[f"{m} top1" for m in MAPPINGS], "train s", "wall s"]
    print(" | ".join(header))
    for run in runs:
        mappings = run["results"]["final"]["mappings"]
        timing = run["results"]["timing"]
        cells = [run["split"], str(run["seed"]), *[f"{mappings[m]['top1']:.1f}" for m in MAPPINGS]]
        print(" | ".join(cells + [f"{timing.get('backbone_seconds', 0):.0f}", f"{run['wall']:.0f}"]))
    for split in sorted({run["split"] for run in runs}):
        group = [run for run in runs if run["split"] == split]
        top1 = [mean_std([r["results"]["final"]["mappings"][m]["top1"] for r in group]) for m in MAPPINGS]
        top3 = [mean_std([r["results"]["final"]["mappings"][m]["top3"] for r in group]) for m in MAPPINGS]
        print(f"{split} mean ± std over {len(group)} seeds, top-1: " + " | ".join(top1))
        print(f"{split} mean ± std over {len(group)} seeds, top-3: " + " | ".join(top3))
        print(f"{split} wall time per run: {mean_std([r['wall'] for r in group])} s")
        adapt = [1000 * e["adapt_seconds"] for r in group for e in r["results"]["experiences"][1:]]
        print(f"{split} adaptation per later experience: {mean_std(adapt)} ms (max {max(adapt):.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", default="R0,R1", help="comma-separated splits")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--source", default="femnist")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--output-dir", default="out/bench_evaluate")
    parser.add_argument("extra", nargs="*", help="more options for zsl-cl evaluate, after --")
    args = parser.parse_args()
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)

    runs = [run_once(args, split, int(seed)) for split in args.splits.split(",") for seed in args.seeds.split(",")]
    print_report(runs)


if __name__ == "__main__":
    main()
