"""Command-line interface `hitl-tower`: each command lives in its own module."""

from __future__ import annotations

from collectors.cli._app import app
from collectors.cli import db as _db  # noqa: F401  (registers init-db)


def main() -> None:
    """Entry point of the `hitl-tower` console script."""
    app()


__all__ = ["app", "main"]
