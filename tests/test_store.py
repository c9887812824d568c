"""The store opens, migrates once, and reports unreachable databases clearly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from collectors.store.db import StoreError, needs_migration, open_store


def test_open_store_migrates_to_head(db_url: str) -> None:
    engine = open_store(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {"decisions", "reviews", "outcomes", "changes", "chain_head", "alembic_version"} <= tables
    assert not needs_migration(engine)
    engine.dispose()
    open_store(db_url).dispose()  # second open is a no-op, not an error


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot reach database"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_sqlite_directory_is_a_store_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_an_older_store_is_upgraded_on_first_use_even_by_read_only_commands(db_url: str) -> None:
    from alembic import command

    from collectors.store.db import _alembic_config

    engine = open_store(db_url)
    command.downgrade(_alembic_config(engine), "0001")
    assert needs_migration(engine)
    engine.dispose()
    engine = open_store(db_url, create=False)
    assert not needs_migration(engine)
    engine.dispose()


def test_read_only_open_of_a_database_without_schema_is_an_error(db_url: str) -> None:
    from collectors.store.db import create_store_engine

    if db_url.startswith("sqlite"):
        create_store_engine(db_url).connect().close()  # an empty SQLite file
    with pytest.raises(StoreError, match="no HITL Control Tower schema"):
        open_store(db_url, create=False)
