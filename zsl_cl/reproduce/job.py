"""The reproduce job: train each seed's backbone once, evaluate every reference draw, write tables and figures."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from zsl_cl.reproduce import confusion, sensitivity, shots, table
from zsl_cl.reproduce.decoding import fit_decoders
from zsl_cl.reproduce.draws import DrawResult, SeedSession, adapt_draw, evaluate_draw, train_seed
from zsl_cl.reproduce.interpolation import corner_classes, interpolation_grids, plot_interpolation
from zsl_cl.reproduce.reconstruction import plot_reconstructions, seen_tiles, unseen_tiles
from zsl_cl.reproduce.request import ReproduceRequest
from zsl_cl.report import write_json
from zsl_cl.runner import check_device

__all__ = ["ReproduceOutcome", "prepare_output_dir", "run_reproduce"]

FIGURE_DRAW = 0  # the reference draw that the decoder figures show, on the first seed


@dataclass
class ReproduceOutcome:
    """Everything a reproduction measured, and the files it wrote."""

    results: list[DrawResult] = field(default_factory=list)  # every (seed, draw) at the requested shots
    by_shots: dict[int, list[DrawResult]] = field(default_factory=dict)  # every (seed, draw) per shot count of the curve
    seed_info: dict[int, dict] = field(default_factory=dict)  # data description and timings per seed
    files: list[Path] = field(default_factory=list)


def prepare_output_dir(path: Path) -> Path:
    """Create the output folder, or raise a ValueError now, before a long run, if it cannot be used."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"cannot write to --output-dir {path}: it is a file; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create --output-dir {path} ({error.strerror}): choose a writable folder") from None
    return path


def run_reproduce(request: ReproduceRequest, plugin_manager, components, *, console: Console | None = None,
                  log: Console | None = None, progress_plugins=()) -> ReproduceOutcome:
    """Run every seed and draw of ``request``, write the tables and figures into its output folder and return them.

    ``console`` receives the tables and ``log`` the progress lines. Either is silent when not given.
    """
    request.validate()
    check_device(request.device)
    components.decoder.get(request.decoder)  # an unknown decoder fails before the backbone trains
    output = prepare_output_dir(request.output_dir)
    console = console or Console(quiet=True)
    log = log or Console(quiet=True)
    outcome = ReproduceOutcome()
    session = None
    for seed in request.seeds:
        session = _run_seed(request, seed, plugin_manager, components, log, progress_plugins, outcome)
    _write_tables(request, session, outcome, output, console)
    return outcome


def _run_seed(request, seed, plugin_manager, components, log, progress_plugins, outcome) -> SeedSession:
    """Train one seed, evaluate its draws at every shot count, and draw the figures on the first seed."""
    started = time.perf_counter()
    def announce():
        log.print(f"Seed {seed}: training the backbone on the seen classes of {request.run}", highlight=False)

    session = train_seed(request, seed, plugin_manager, components, progress_plugins, on_start=announce)
    trained = time.perf_counter()

    main_shots = request.config.shots
    for shot_count in sorted({main_shots, *request.shots_curve}):
        draws = [evaluate_draw(session, draw, shot_count) for draw in range(request.draws)]
        if shot_count == main_shots:
            outcome.results += draws
        if shot_count in request.shots_curve:
            outcome.by_shots.setdefault(shot_count, []).extend(draws)
    evaluated = time.perf_counter()

    if request.figures and seed == request.seeds[0]:
        outcome.files += _draw_figures(request, session, components, request.output_dir, log)
    outcome.seed_info[seed] = {
        "data": session.data.description,
        "timing": {**session.strategy.timings, "draws_seconds": evaluated - trained, "total_seconds": time.perf_counter() - started},
    }
    return session


def _draw_figures(request, session: SeedSession, components, output: Path, log: Console) -> list[Path]:
    """Fit the decoders on this seed's base classes and draw the reconstruction and interpolation figures."""
    log.print(f"Seed {session.seed}: fitting the {request.decoder!r} and 'linear' decoders for the figures", highlight=False)
    decoders = fit_decoders(session, components, request.decoder, request.decoder_epochs)
    adapt_draw(session, FIGURE_DRAW, request.config.shots)  # the figures show this draw's references
    where = f"{request.run}, seed {session.seed}, draw {FIGURE_DRAW}, {request.decoder} decoder"

    tiles, columns = unseen_tiles(session, decoders, FIGURE_DRAW, request.config.shots)
    files = [plot_reconstructions(tiles, columns, session.unseen, output / "reconstructions_unseen.png", f"unseen classes ({where})")]
    tiles, columns = seen_tiles(session, decoders, FIGURE_DRAW)
    files.append(plot_reconstructions(tiles, columns, session.seen, output / "reconstructions_seen.png", f"seen classes ({where})"))

    corners = corner_classes(session.seen)
    grids = interpolation_grids(session, decoders, corners)
    files.append(plot_interpolation(grids, corners, output / "interpolation.png", f"bilinear interpolation ({where})"))
    return files


def _write_tables(request, session: SeedSession, outcome: ReproduceOutcome, output: Path, console: Console) -> None:
    """Write and print table1.json, the confusion ranking, the reference sensitivity and the shots curve."""
    seeds = ",".join(map(str, request.seeds))
    where = f"{request.run} on {request.source}, seeds {seeds} × {request.draws} draws"
    payload = table.table_payload(request, outcome.results, outcome.seed_info, session.seen, session.unseen)
    write_json(output / "table1.json", payload)
    outcome.files.append(output / "table1.json")
    console.print(table.mappings_table(payload["mappings"], f"Five mappings, mean ± std ({where}, shots per unseen class: {request.config.shots})", request.run))

    counts = sum(r.confusion for r in outcome.results)  # (C, C), pooled over every seed and draw
    rankings = confusion.rank_assignments(counts, session.omega)
    outcome.files.append(confusion.write_confusion_csv(rankings, output / "confusion.csv"))
    outcome.files.append(confusion.plot_confusion(counts, session.omega, session.unseen, output / "confusion.png", f"Ω→Ω top-1 confusion, {where}"))
    console.print(confusion.confusion_table(rankings, f"Ω→Ω top-1 assignments per class, pooled ({where})"))

    rows = sensitivity.class_sensitivity(outcome.results, session.unseen)
    outcome.files.append(sensitivity.write_sensitivity_csv(rows, output / "sensitivity.csv"))
    outcome.files.append(sensitivity.plot_sensitivity(rows, output / "sensitivity.png", f"U→U top-1 per unseen class over draws, {where}"))
    console.print(sensitivity.sensitivity_table(rows, f"U→U top-1 per unseen class: best, median and worst draw ({where})"))

    if outcome.by_shots:
        curve = shots.shots_curve(outcome.by_shots)
        outcome.files.append(shots.write_curve_csv(curve, output / "shots_curve.csv"))
        outcome.files.append(shots.plot_curve(curve, output / "shots_curve.png", f"Accuracy against shots, {where}"))
        console.print(shots.curve_table(curve, f"Top-1 against references per unseen class ({where})"))
