"""Rich tables for the evaluate job, and the atomic JSON writer."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rich.table import Table

from zsl_cl.core.mappings import MAPPINGS

__all__ = ["experience_table", "summary_table", "write_json", "check_output_path"]


def experience_table(record: dict) -> Table:
    """Build the table of one experience: the classes that arrived, accuracy on every class seen so far, and time."""
    if "known_accuracy" in record:
        return open_world_table(record)
    table = Table(title=f"Experience {record['index']}", title_justify="left")
    columns = ["new classes", "seen", "top-1 %", "top-3 %"]
    cells = ["".join(record["new_classes"]), str(len(record["seen_classes"])), f"{record['accuracy']:.1f}", f"{record['top3']:.1f}"]
    if "head_top1" in record:
        columns += ["head top-1 %", "head top-3 %"]
        cells += [f"{record['head_top1']:.1f}", f"{record['head_top3']:.1f}"]
    if record.get("novelty_auroc") is not None:
        columns.append("novelty AUROC %")
        cells.append(f"{record['novelty_auroc']:.1f}")
    # Experience 0 trains the backbone and solves the SAE; later ones only adapt.
    columns.append("train s" if record["index"] == 0 else "adapt ms")
    cells.append(f"{record['adapt_seconds']:.1f}" if record["index"] == 0 else f"{1000 * record['adapt_seconds']:.1f}")
    for name in columns:
        table.add_column(name, justify="left" if name == "new classes" else "right")
    table.add_row(*cells)
    return table


def open_world_table(record: dict) -> Table:
    """Build the table of one open-world experience: known-class accuracy, novel-sample clustering, classes found."""
    table = Table(title=f"Experience {record['index']} (open world)", title_justify="left")
    for name in ("known acc %", "novel cluster acc %", "classes found / true", "flagged %", "novelty AUROC %", "adapt ms"):
        table.add_column(name, justify="right")
    auroc = "-" if record["novelty_auroc"] is None else f"{record['novelty_auroc']:.1f}"
    table.add_row(
        f"{record['known_accuracy']:.1f}", f"{record['novel_cluster_accuracy']:.1f}",
        f"{record['classes_found']} / {record['classes_true']}", f"{record['flagged_share']:.1f}", auroc,
        f"{1000 * record['adapt_seconds']:.1f}",
    )
    return table


def summary_table(results: dict) -> Table:
    """Build the final table: the five mappings after the last experience, top-1 and top-3 in percent."""
    if "open_world" in results:
        return open_world_table(results["open_world"]["experiences"][-1])
    table = Table(title=f"Final: {results['stream']} on {results['source']}, seed {results['seed']}", title_justify="left")
    table.add_column("mapping")
    table.add_column("top-1 %", justify="right")
    table.add_column("top-3 %", justify="right")
    for name in MAPPINGS:
        scores = results["final"]["mappings"][name]
        table.add_row(name.replace("Omega", "Ω"), f"{scores['top1']:.1f}", f"{scores['top3']:.1f}")
    return table


def check_output_path(path: Path) -> Path:
    """Raise a ValueError now, before a long run, if ``path`` cannot be written later."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot write --output {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write --output {path}: folder {folder} is not writable; choose another path")
    if path.is_dir():
        raise ValueError(f"cannot write --output {path}: it is a folder; give a file name such as {path / 'results.json'}")
    return path


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file readable by its owner only; give it the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
