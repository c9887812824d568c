"""`hitl-tower rebuild-rollups`: recompute the per-hour KPI rollups from the stored events."""

from __future__ import annotations

import time

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, fail, load_config_or_exit, open_store_or_exit


@app.command("rebuild-rollups")
def rebuild_rollups_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """Rebuild the per-hour KPI rollups from the events (a store loaded before they existed, or a repair).

    Ingest keeps the rollups current; until they are rebuilt on an older store, reports read
    the raw tables (same numbers, slower). Holds the store's write lock while it runs.
    Exit 2 when the store does not exist or cannot be opened.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from collectors.store.rollup import rebuild_rollups

    cfg = load_config_or_exit(config)
    # A store to repair must exist: a mistyped --db would otherwise become a new, empty store.
    engine = open_store_or_exit(db, cfg, create=False)
    started = time.perf_counter()
    try:
        decisions = rebuild_rollups(engine)
    except SQLAlchemyError as exc:
        from collectors.store.db import error_line

        fail(f"rebuilding the rollups failed: {error_line(exc)}")
    finally:
        engine.dispose()
    typer.echo(f"rollups rebuilt: {decisions} decisions in {time.perf_counter() - started:.1f} s")
