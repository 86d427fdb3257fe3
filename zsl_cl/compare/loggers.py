"""Avalanche's own loggers for each compare job: text, CSV and TensorBoard."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["LOGGERS", "parse_loggers", "make_loggers", "log_values", "close_loggers"]

LOGGERS = ("text", "csv", "tensorboard")


def parse_loggers(text: str) -> tuple[str, ...]:
    """Split a comma-separated logger list and check that each one can be created here."""
    names: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name or name in names:
            continue
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r}: choose from {', '.join(LOGGERS)}")
        names.append(name)
    if "tensorboard" in names and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("the tensorboard logger needs the tensorboard package: pip install tensorboard")
    return tuple(names)


def make_loggers(names: tuple[str, ...], folder: Path) -> list:
    """Create the named loggers, writing into ``folder`` (created if missing)."""
    if not names:
        return []
    from zsl_cl.compare._avalanche import CSVLogger, TensorboardLogger, TextLogger

    folder.mkdir(parents=True, exist_ok=True)
    loggers = []
    if "text" in names:
        loggers.append(TextLogger(open(folder / "log.txt", "w", encoding="utf-8")))
    if "csv" in names:
        loggers.append(CSVLogger(log_folder=str(folder / "csv")))
    if "tensorboard" in names:
        loggers.append(TensorboardLogger(tb_log_dir=str(folder / "tensorboard")))
    return loggers


def log_values(loggers: list, values: dict[str, float], step: int) -> None:
    """Send metrics that compare measures itself to every logger, at x position ``step``.

    TextLogger only prints on Avalanche callbacks, so it is asked to print here.
    """
    for logger in loggers:
        for name, value in values.items():
            logger.log_single_metric(name, value, step)
        if hasattr(logger, "print_current_metrics"):
            logger.print_current_metrics()
            logger.metric_vals = {}  # printed, so not printed again, as TextLogger's own callbacks do


def close_loggers(loggers: list) -> None:
    """Flush and close the files that the loggers opened."""
    for logger in loggers:
        if hasattr(logger, "close"):  # CSVLogger
            logger.close()
        elif hasattr(logger, "writer"):  # TensorboardLogger
            logger.writer.close()
        elif hasattr(logger, "file") and not logger.file.closed:  # TextLogger
            logger.file.close()
