"""Turn user-input errors and interrupts into one-line messages and exit codes."""

from __future__ import annotations

from contextlib import contextmanager

import typer
from rich.console import Console

__all__ = ["user_errors"]


@contextmanager
def user_errors(console: Console):
    """Print a ValueError as one line and exit 1; print a short note and exit 130 on Ctrl-C."""
    try:
        yield
    except ValueError as error:
        console.print(f"[red]Error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("Interrupted: stopped before the run finished, so no results were written.", highlight=False)
        raise typer.Exit(130) from None
