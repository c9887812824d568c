"""The `hitl-tower` Typer application that every command module registers on."""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Annotated, NamedTuple

import typer

app = typer.Typer(
    name="hitl-tower",
    help="HITL Control Tower: load audit events of human-in-the-loop AI agents and "
    "report their health (rates, calibration, overrides, agreement, latency, cost).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"hitl-tower {version('hitl-tower')}")
        except PackageNotFoundError:  # run from a source tree that is not installed
            typer.echo("hitl-tower (not installed: no version)")
        raise typer.Exit()


@app.callback()
def _root(show_version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_print_version, is_eager=True)] = False) -> None:
    """HITL Control Tower command line."""


def reflow_command_help(typer_app: typer.Typer) -> None:
    """Give each command its docstring as help with the paragraphs' hard line breaks removed.

    Typer keeps the single line breaks of a docstring's later paragraphs, so a paragraph wrapped
    at ~100 columns in the source is wrapped again by the terminal into long and very short lines.
    Joined, each paragraph wraps once, at the terminal's width.
    """
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            paragraphs = inspect.cleandoc(info.callback.__doc__).split("\n\n")
            info.help = "\n\n".join(re.sub(r"\s*\n\s*", " ", p.strip()) for p in paragraphs)


class Listing(NamedTuple):
    """Where `hitl-tower --help` lists a command, and its line there when the help's first paragraph is long."""

    command: str
    panel: str
    short_help: str | None = None


def arrange_commands(typer_app: typer.Typer, listing: Sequence[Listing]) -> None:
    """Order the commands as `listing` does and put each in its panel; a command missing from it is an error."""
    by_name = {info.name: info for info in typer_app.registered_commands}
    differ = set(by_name) ^ {entry.command for entry in listing}
    if differ:
        raise RuntimeError(f"commands and their listing differ: {sorted(map(str, differ))}")
    typer_app.registered_commands = [by_name[entry.command] for entry in listing]
    for entry in listing:
        info = by_name[entry.command]
        info.rich_help_panel = entry.panel
        if entry.short_help is not None:
            info.short_help = entry.short_help
