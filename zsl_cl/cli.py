"""The ``zsl-cl`` command line.

The CLI lives inside the package as ``zsl_cl.cli`` rather than as a
top-level ``cli`` module, so that installing zsl-cl never adds a module
called ``cli`` to site-packages. The repository's top-level ``cli.py`` only
forwards to it.
"""

from __future__ import annotations

import sys

import typer

from zsl_cl.commands.compare import compare
from zsl_cl.commands.evaluate import evaluate
from zsl_cl.commands.plugins import plugins
from zsl_cl.commands.reproduce import reproduce

app = typer.Typer(
    name="zsl-cl",
    help="Zero-shot and one-shot class-incremental learning with a semantic auto-encoder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(evaluate)
app.command()(plugins)
app.command()(reproduce)
app.command()(compare)


def main() -> None:
    """Run the CLI; the console script ``zsl-cl`` points here.

    Click's usage errors (an unknown option, ``--epochs abc``) are printed
    as one line with exit code 2, like every other input error, instead of
    typer's multi-line box.
    """
    # typer 0.29 ships its own copy of click, so its usage errors are
    # recognised through the public typer.BadParameter's base class.
    usage_error = typer.BadParameter.__mro__[1]
    try:
        code = app(prog_name="zsl-cl", standalone_mode=False)
    except usage_error as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.ctx.get_help())
            sys.exit(0)
        command = error.ctx.command_path if error.ctx is not None else "zsl-cl"
        message = " ".join(error.format_message().split()).rstrip(".")
        typer.echo(f"Error: {message}; run '{command} --help' for the options", err=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
