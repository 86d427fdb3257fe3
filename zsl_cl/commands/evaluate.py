"""``zsl-cl evaluate``: the SAE strategy on a class-incremental stream of handwritten characters."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from zsl_cl.commands.errors import user_errors

__all__ = ["evaluate"]


def evaluate(
    stream: str = typer.Option("emnist-incremental", help="Class-incremental stream to walk."),
    source: str = typer.Option("mnist+emnist", help="Data: mnist+emnist (the study's data) or femnist (LEAF shards)."),
    data_dir: Optional[Path] = typer.Option(None, envvar="ZSL_CL_DATA", help="Data folder (default: $ZSL_CL_DATA, then the user cache folder)."),
    download: bool = typer.Option(True, "--download/--no-download", help="Download MNIST/EMNIST through torchvision when files are missing."),
    split: Optional[str] = typer.Option(None, help="The study's unseen set: R0 or R1 (default: R0 when no other choice is given)."),
    unseen: Optional[str] = typer.Option(None, help="Characters that arrive after experience 0, e.g. 2679ELVWY."),
    base_classes: Optional[int] = typer.Option(None, help="Draw this many base classes with the seed; the rest arrive later."),
    classes_per_exp: int = typer.Option(3, help="New classes per experience after experience 0."),
    seed: int = typer.Option(0, help="Seed for the class order, the split, the reference draws and training."),
    preset: str = typer.Option("default", help="default (the recommended recipe) or paper (the study exactly); see docs/results.md."),
    epochs: Optional[int] = typer.Option(None, help="Backbone training epochs (default: the preset's)."),
    k: Optional[int] = typer.Option(None, "--k", help="Latent size of the SAE (default: the preset's, 256)."),
    lam: Optional[float] = typer.Option(None, "--lambda", help="SAE weight λ (default: the preset's, 1)."),
    shots: Optional[int] = typer.Option(None, help="Labelled samples per new class (default: 1)."),
    solver: Optional[str] = typer.Option(None, help="Sylvester solver by name (default: the preset's); see zsl-cl plugins."),
    distance: Optional[str] = typer.Option(None, help="Latent distance by name (default: the preset's); see zsl-cl plugins."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    expand_head: bool = typer.Option(False, "--expand-head", help="Grow the classifier head by imprinted rows for each new class, and score it too."),
    open_world: bool = typer.Option(False, "--open-world", help="After experience 0, find new classes among unlabelled test samples instead of being given references."),
    output: Optional[Path] = typer.Option(None, help="Write the results as JSON to this file."),
    checkpoint_dir: Optional[Path] = typer.Option(None, help="Save the state after each experience in this folder (created if missing)."),
    resume: bool = typer.Option(False, "--resume", help="Continue after the last complete experience saved in --checkpoint-dir."),
    transductive: bool = typer.Option(False, "--transductive", help="Also refine new-class references with the experience's unlabelled training data; reads more than one sample per class."),
    settings: Optional[List[str]] = typer.Option(None, "--set", help="Override one preset setting, as NAME=VALUE, e.g. augment=false (repeatable); options such as --epochs win over it. See docs/results.md."),
    plugin: Optional[List[str]] = typer.Option(None, "--plugin", help="Load a local plugin, as module or module:attr (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
) -> None:
    """Train on the base classes, then adapt to each later experience from one labelled sample per new class."""
    console = Console(stderr=False)
    errors = Console(stderr=True)
    with user_errors(errors, interrupted=lambda: _interrupted_note(output, checkpoint_dir)):
        from zsl_cl.config import get_preset, parse_settings
        from zsl_cl.plugin_manager import collect_components, get_plugin_manager
        from zsl_cl.report import experience_table, summary_table, write_json
        from zsl_cl.runner import EvaluateRequest, run_evaluate
        from zsl_cl.training.progress import RichProgressPlugin

        if output is not None:
            check_writable_output(output)
        config = get_preset(preset, parse_settings(settings), epochs=epochs, k=k, lam=lam, shots=shots, solver=solver, distance=distance,
                            transductive=transductive or None)
        plugin_manager = get_plugin_manager(local_plugins=plugin or ())
        components = collect_components(plugin_manager)
        components.solver.get(config.solver)
        components.distance.get(config.distance)
        request = EvaluateRequest(
            config=config, preset=preset, stream=stream, source=source, data_dir=data_dir, download=download, split=split,
            unseen=unseen, base_classes=base_classes, classes_per_exp=classes_per_exp, seed=seed, device=device, expand_head=expand_head, open_world=open_world,
        )
        show = None if quiet else (lambda record: console.print(experience_table(record)))
        progress = () if quiet else (RichProgressPlugin(errors),)

        def note(text: str) -> None:
            errors.print(text, highlight=False, markup=False, soft_wrap=True)

        results = run_evaluate(
            request, plugin_manager, components, on_experience=show, progress_plugins=progress,
            checkpoint_dir=checkpoint_dir, resume=resume, on_note=note,
        )
        console.print(summary_table(results))
        if output is not None:
            write_json(output, results)
            console.print(f"Results written to {output}", highlight=False)


def check_writable_output(path: Path) -> Path:
    """Raise a ValueError now, before a long run, if ``path`` cannot be written later.

    A file is created and removed in the output folder, because permission
    bits alone do not say whether a write succeeds: root ignores them, and a
    read-only file system rejects writes that they allow.
    """
    from zsl_cl.report import check_output_path

    for parent in path.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"cannot write --output {path}: {parent} is a file, not a folder; choose a path inside a folder")
    check_output_path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"cannot write --output {path}: folder {folder} is not writable ({error.strerror}); choose another path") from None
    return path


def _interrupted_note(output: Optional[Path], checkpoint_dir: Optional[Path]) -> str:
    written = f"{output} was not written" if output is not None else "no results were written"
    if checkpoint_dir is None:
        return f"{written}."
    return f"{written}; rerun with --resume to continue from the checkpoint in {checkpoint_dir}."
