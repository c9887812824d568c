"""The `hitl-tower` Typer application that every command module registers on."""

from __future__ import annotations

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


@app.callback()
def _root() -> None:
    """HITL Control Tower command line."""
