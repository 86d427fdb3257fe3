"""``zsl-cl compare``: the SAE strategy against Avalanche's baseline strategies on the same stream."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from zsl_cl.commands.errors import user_errors

__all__ = ["compare"]


def compare(
    strategies: str = typer.Option(
        "sae,ncm,naive", help="Comma-separated strategies: sae, ncm, naive, replay, ewc, lwf, si, icarl, gdumb, slda, cumulative, or all."
    ),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds; every strategy runs once per seed."),
    budget: str = typer.Option("one-shot", help="one-shot (one labelled sample per new class, as the SAE gets) or full (all labelled data)."),
    buffer_size: int = typer.Option(200, help="Stored samples for Replay, GDumb and iCaRL (Avalanche's default mem_size)."),
    source: str = typer.Option("mnist+emnist", help="Data: mnist+emnist or femnist (LEAF shards)."),
    data_dir: Optional[Path] = typer.Option(None, envvar="ZSL_CL_DATA", help="Data folder (default: $ZSL_CL_DATA, then the user cache folder)."),
    download: bool = typer.Option(True, "--download/--no-download", help="Download MNIST/EMNIST through torchvision when files are missing."),
    split: Optional[str] = typer.Option(None, help="Unseen set R0 or R1 (default: R0 when --unseen is not given)."),
    unseen: Optional[str] = typer.Option(None, help="Characters that arrive after experience 0, e.g. 2679ELVWY."),
    classes_per_exp: int = typer.Option(3, help="New classes per experience after experience 0."),
    preset: str = typer.Option("default", help="SAE preset and backbone recipe: paper or default."),
    settings: Optional[List[str]] = typer.Option(None, "--set", help="Override one preset setting, as NAME=VALUE, e.g. augment=false (repeatable); options such as --epochs win over it. See docs/results.md."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs of the backbone and of each later experience (default: the preset's: 20, or 4 in paper)."),
    samples_per_class: Optional[int] = typer.Option(None, help="Keep at most this many train and test samples per class, for quick runs."),
    jobs: int = typer.Option(1, help="Jobs run at once in local worker processes (--executor local)."),
    executor: str = typer.Option("local", help="local (worker processes on this machine) or ray (a Ray cluster)."),
    ray_address: Optional[str] = typer.Option(None, help="Address of a running Ray cluster (default: start a local Ray instance)."),
    loggers: str = typer.Option("", help="Avalanche loggers for every job: comma-separated text, csv, tensorboard; needs --output-dir."),
    output_dir: Optional[Path] = typer.Option(None, help="Folder for compare.json, runs.csv, summary.csv, accuracy.png and logs/."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
) -> None:
    """Compare the SAE with Avalanche's continual-learning strategies on one stream, budget and set of seeds."""
    console = Console()
    errors = Console(stderr=True)
    with user_errors(errors):
        from zsl_cl.compare import CompareRequest, parse_seeds, parse_strategies, run_compare
        from zsl_cl.compare.loggers import parse_loggers
        from zsl_cl.compare.report import failure_lines, summary_table, write_outputs
        from zsl_cl.config import get_preset, parse_settings

        logger_names = parse_loggers(loggers)
        if logger_names and output_dir is None:
            raise ValueError(f"--loggers {loggers} writes log files: add --output-dir FOLDER")
        _check_output_dir(output_dir)
        request = CompareRequest(
            config=get_preset(preset, parse_settings(settings), epochs=epochs), strategies=parse_strategies(strategies), seeds=parse_seeds(seeds),
            budget=budget, buffer_size=buffer_size, preset=preset, source=source, data_dir=data_dir, download=download,
            split=split, unseen=unseen, classes_per_exp=classes_per_exp, samples_per_class=samples_per_class, jobs=jobs,
            executor=executor, ray_address=ray_address, loggers=logger_names, output_dir=output_dir, device=device,
        ).validate()

        results = run_compare(request, on_record=lambda record: _print_progress(errors, record))
        console.print(summary_table(results))
        for line in failure_lines(results):
            errors.print(f"[red]failed[/red] {line}", highlight=False, soft_wrap=True)
        if output_dir is not None:
            paths = write_outputs(results, output_dir)
            console.print(f"Results written to {', '.join(str(path) for path in paths.values())}", highlight=False)
        if not any(row["ok"] for row in results["summary"]):
            raise typer.Exit(1)


def _check_output_dir(folder: Path | None) -> None:
    if folder is not None and folder.exists() and not folder.is_dir():
        raise ValueError(f"cannot write --output-dir {folder}: it is a file; give a folder")


def _print_progress(console: Console, record: dict) -> None:
    seconds = record.get("job_seconds", 0.0)
    what = f"backbone seed {record['seed']}" if record["kind"] == "backbone" else f"{record['strategy']} seed {record['seed']}"
    if record["status"] == "ok":
        console.print(f"done {what} in {seconds:.0f} s", highlight=False)
    else:
        console.print(f"[red]failed[/red] {what}: {record['error']}", highlight=False, soft_wrap=True)
