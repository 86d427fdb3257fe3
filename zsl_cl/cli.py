"""The ``zsl-cl`` command line.

The CLI lives inside the package as ``zsl_cl.cli`` rather than as a
top-level ``cli`` module, so that installing zsl-cl never adds a module
called ``cli`` to site-packages. The repository's top-level ``cli.py`` only
forwards to it.
"""

from __future__ import annotations

import sys

import typer

from zsl_cl.commands.evaluate import evaluate

app = typer.Typer(
    name="zsl-cl",
    help="Zero-shot and one-shot class-incremental learning with a semantic auto-encoder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(evaluate)


def _register_optional_commands() -> None:
    # Commands are added in their own modules; a missing one is skipped here,
    # so the evaluate job runs while the others are built.
    import importlib

    for module_name, command_name in (("zsl_cl.commands.plugins", "plugins"), ("zsl_cl.commands.reproduce", "reproduce"), ("zsl_cl.commands.compare", "compare"),):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        app.command(name=command_name)(getattr(module, command_name))


_register_optional_commands()


def main() -> None:
    """Run the CLI; the console script ``zsl-cl`` points here."""
    app(prog_name="zsl-cl")


if __name__ == "__main__":
    sys.exit(main())
