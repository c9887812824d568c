"""`query WHERE column IN (values)` inside a write transaction, on either engine.

Shared by the writer and the rollup upkeep: both look up many keys per batch,
where SQLAlchemy's result wrapping and small IN lists cost several percent of
a bulk load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

_SQLITE_IN_CHUNK = 8_000  # values per IN (...) list; SQLite allows 32,766 parameters


def select_in(conn: Connection, query: str, column: str, values: Sequence[Any]) -> list[Any]:
    """Rows of `query WHERE column IN (values)`, through the driver (one array on PostgreSQL)."""
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        return list(conn.exec_driver_sql(f"{query} WHERE {column} = ANY(%s)", (list(values),)).fetchall())
    return _sqlite_select_in(conn, query, column, values)


def _sqlite_select_in(conn: Connection, query: str, column: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The SQLite form, as plain tuples from the driver's cursor on the transaction's own connection
    (so the query sees the batch's writes)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    rows: list[tuple[Any, ...]] = []
    try:
        for i in range(0, len(values), _SQLITE_IN_CHUNK):
            chunk = tuple(values[i:i + _SQLITE_IN_CHUNK])
            sql = f"{query} WHERE {column} IN ({', '.join(['?'] * len(chunk))})"
            rows.extend(cursor.execute(sql, chunk).fetchall())
    finally:
        cursor.close()
    return rows
