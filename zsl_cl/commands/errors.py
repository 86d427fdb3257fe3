"""Turn user-input errors and interrupts into one-line messages and exit codes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["user_errors", "INTERRUPTED_EXIT_CODE"]

# 128 + SIGINT, the status that shells report for a program stopped by Ctrl-C.
INTERRUPTED_EXIT_CODE = 130


@contextmanager
def user_errors(console: Console, interrupted: Optional[Callable[[], str]] = None):
    """Print a ValueError or OSError as one line and exit 1; print a short note and exit 130 on Ctrl-C.

    ``interrupted`` returns what an interrupted command leaves behind, such as
    which files were not written; without it the note states that no results were written.
    """
    try:
        yield
    except ValueError as error:
        _print_line(console, "Error:", str(error))
        raise typer.Exit(1) from None
    except OSError as error:
        # A full disk or a folder removed during the run: the operating
        # system's message states what failed, and a traceback would add nothing.
        _print_line(console, "Error:", f"{error}: check the file system and rerun")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        remains = interrupted() if interrupted is not None else "no results were written."
        _print_line(console, "Interrupted:", f"stopped before the run finished, so {remains}")
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None


def _print_line(console: Console, label: str, text: str) -> None:
    # A Text object, not markup, because messages quote user input, which may
    # contain square brackets. Line breaks are folded so the message stays one line.
    console.print(Text.assemble((label, "bold red"), " ", " ".join(text.split())), highlight=False, soft_wrap=True)
