"""`hitl-tower init-db`: create or upgrade the audit store's schema."""

from __future__ import annotations

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, load_config_or_exit, open_store_or_exit


@app.command("init-db")
def init_db(db: DbOption = None, config: ConfigOption = None) -> None:
    """Create the audit store, or upgrade it to the newest schema (Alembic). Safe to re-run."""
    cfg = load_config_or_exit(config)
    engine = open_store_or_exit(db, cfg)
    engine.dispose()
    typer.echo(f"store ready: {engine.url.render_as_string(hide_password=True)}")
