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
