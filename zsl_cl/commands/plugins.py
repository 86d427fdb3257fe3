"""``zsl-cl plugins``: list every loaded plugin with its source, components and hooks."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.console import Console

from zsl_cl.commands.errors import user_errors

__all__ = ["plugins"]


def plugins(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON to stdout."),
    plugin: Optional[List[str]] = typer.Option(None, "--plugin", help="Load a local plugin, as module or module:attr (repeatable)."),
) -> None:
    """List the loaded plugins: name, source (built-in, entry point or local), components and hooks."""
    with user_errors(Console(stderr=True)):
        from zsl_cl.plugin_manager import collect_components, describe_plugins, get_plugin_manager

        plugin_manager = get_plugin_manager(local_plugins=plugin or ())
        listing = describe_plugins(plugin_manager, collect_components(plugin_manager))
        if as_json:
            typer.echo(json.dumps(listing, indent=2, ensure_ascii=False))
        else:
            _print_listing(Console(), listing)


def _print_listing(console: Console, listing: dict) -> None:
    # markup=False because descriptions come from plugins and may contain square brackets.
    def line(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    for entry in listing["plugins"]:
        origin = entry["distribution"] or entry["module"]
        line(f"{entry['name']} ({entry['source']}: {origin})")
        line(f"  hooks: {', '.join(entry['hooks']) or 'none'}")
        for component in entry["components"]:
            description = f" — {component['description']}" if component["description"] else ""
            line(f"  {component['kind']}: {component['name']}{description}")
    if listing["blocked"]:
        line(f"blocked by ZSL_CL_DISABLE_PLUGINS: {', '.join(listing['blocked'])}")
