"""``zsl-cl reproduce``: the study's tables and figures on its static R0 or R1 split, with one command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from zsl_cl.commands.errors import user_errors

__all__ = ["reproduce"]


def reproduce(
    run: str = typer.Option("R0", "--run", help="The study's split: R0 (9 unseen classes) or R1 (23 unseen classes)."),
    source: str = typer.Option("mnist+emnist", help="Data: mnist+emnist (the study's data) or femnist (LEAF shards)."),
    data_dir: Optional[Path] = typer.Option(None, envvar="ZSL_CL_DATA", help="Data folder (default: $ZSL_CL_DATA, then the user cache folder)."),
    download: bool = typer.Option(True, "--download/--no-download", help="Download MNIST/EMNIST through torchvision when files are missing."),
    seeds: str = typer.Option("0", help="Comma-separated seeds; each trains its own backbone, e.g. 0,1,2."),
    draws: int = typer.Option(10, help="Independent reference draws per seed."),
    preset: str = typer.Option("default", help="default (the recommended recipe) or paper (the study exactly); see docs/results.md."),
    epochs: Optional[int] = typer.Option(None, help="Backbone training epochs (default: the preset's)."),
    shots: Optional[int] = typer.Option(None, help="References per unseen class for the tables, averaged in the latent space (default: 1)."),
    shots_curve: str = typer.Option("1,2,5,10", help="Comma-separated shot counts for the accuracy-against-shots curve, or none."),
    solver: Optional[str] = typer.Option(None, help="Sylvester solver by name (default: the preset's); see zsl-cl plugins."),
    distance: Optional[str] = typer.Option(None, help="Latent distance by name (default: the preset's); see zsl-cl plugins."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Fit the decoders and draw the reconstruction and interpolation figures."),
    decoder: str = typer.Option("tconv", help="Decoder for latent codes in the figures, by name; see zsl-cl plugins."),
    decoder_epochs: int = typer.Option(4, help="Training epochs of each figure decoder."),
    train_per_class: Optional[int] = typer.Option(None, help="Use at most this many training images per class, for a quick check (default: all)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    output_dir: Optional[Path] = typer.Option(None, help="Folder for table1.json, the CSV tables and the PNG figures, created if missing (default: out/reproduce-RUN)."),
    transductive: bool = typer.Option(False, "--transductive", help="Also refine new-class references with the experience's unlabelled training data; reads more than one sample per class."),
    settings: Optional[List[str]] = typer.Option(None, "--set", help="Override one preset setting, as NAME=VALUE, e.g. augment=false (repeatable); options such as --epochs win over it. See docs/results.md."),
    plugin: Optional[List[str]] = typer.Option(None, "--plugin", help="Load a local plugin, as module:attr (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the tables."),
) -> None:
    """Reproduce the study's tables and figures: five mappings over reference draws, confusion, sensitivity, decoders."""
    console = Console()
    errors = Console(stderr=True)
    with user_errors(errors):
        from zsl_cl.config import get_preset, parse_settings
        from zsl_cl.plugin_manager import collect_components, get_plugin_manager
        from zsl_cl.reproduce.job import run_reproduce
        from zsl_cl.reproduce.request import ReproduceRequest, parse_int_list
        from zsl_cl.training.progress import RichProgressPlugin

        config = get_preset(preset, parse_settings(settings), epochs=epochs, shots=shots, solver=solver, distance=distance,
                            transductive=transductive or None)
        plugin_manager = get_plugin_manager(local_plugins=plugin or ())
        components = collect_components(plugin_manager)
        components.solver.get(config.solver)
        components.distance.get(config.distance)
        output_dir = output_dir or Path("out") / f"reproduce-{run}"
        request = ReproduceRequest(
            config=config, output_dir=output_dir, run=run, preset=preset, source=source, data_dir=data_dir, download=download,
            seeds=parse_int_list(seeds, "--seeds", "0,1,2"), draws=draws,
            shots_curve=parse_int_list(shots_curve, "--shots-curve", "1,2,5,10"), figures=figures, decoder=decoder,
            decoder_epochs=decoder_epochs, train_per_class=train_per_class, device=device,
        )
        progress = () if quiet else (RichProgressPlugin(errors),)
        log = Console(stderr=True, quiet=quiet)
        outcome = run_reproduce(request, plugin_manager, components, console=console, log=log, progress_plugins=progress)
        console.print(f"Written to {output_dir}: {', '.join(path.name for path in outcome.files)}", highlight=False)
