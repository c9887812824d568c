"""Command-line interface `hitl-tower`: each command lives in its own module."""

from __future__ import annotations

from collectors.cli._app import app
# Importing a command module registers its command on `app`.
from collectors.cli import db, ingest, report, rollups, schema, verify  # noqa: F401
from collectors.cli import serve_metrics  # noqa: F401
from collectors.cli import alerts  # noqa: F401
from collectors.cli import demo  # noqa: F401


def main() -> None:
    """Entry point of the `hitl-tower` console script."""
    app()


__all__ = ["app", "main"]
