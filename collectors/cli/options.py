"""Options shared by several commands, and the one way a command opens config and store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="HITL_TOWER_DB_URL",
        help="SQLAlchemy URL of the audit store, e.g. sqlite:///hitl-tower.db or "
        "postgresql+psycopg://user@host/db. Default: db_url of the config.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="HITL_TOWER_CONFIG",
        help="Tower config YAML. Default: ./config/tower.yaml if present, else built-in defaults.",
        show_default=False,
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error line on stderr and exit (2: usage, config or connection error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_config_or_exit(path: Path | None) -> TowerConfig:
    """The tower config, or exit 2 with the offending key named."""
    from collectors.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


def open_store_or_exit(db: str | None, config: TowerConfig, *, create: bool = True) -> Engine:
    """The migrated store engine for --db (or the config's db_url), or exit 2 with the reason."""
    from collectors.store.db import StoreError, open_store

    try:
        return open_store(db or config.db_url, create=create)
    except StoreError as exc:
        fail(str(exc))
