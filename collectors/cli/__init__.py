"""Command-line interface `hitl-tower`: each command lives in its own module."""

from __future__ import annotations

# Importing a command module registers its command on `app`.
from collectors.cli import (  # noqa: F401
    alerts,
    autonomy,
    changes,
    db,
    demo,
    export,
    ingest,
    report,
    rollups,
    schema,
    serve_metrics,
    thresholds,
    triage,
    verify,
)
from collectors.cli._app import app, reflow_command_help

reflow_command_help(app)


def main() -> None:
    """Entry point of the `hitl-tower` console script."""
    app()


__all__ = ["app", "main"]
