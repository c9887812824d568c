"""Driver-level writes shared by the writer and the rollup upkeep, on either engine.

Bulk ingest bypasses SQLAlchemy's per-row machinery: statements are written
once in qmark style, rows go to PostgreSQL by COPY, and set-wise updates on
PostgreSQL read their rows from a session's temporary staging table (one
statement instead of a round trip per row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection


def execute(conn: Connection, sql: str, params: Any) -> None:
    """Run one qmark-style statement (or executemany with a list) through the driver."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, params)


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """COPY rows into a PostgreSQL table, in the connection's transaction."""
    driver = conn.connection.driver_connection
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


@contextmanager
def staged(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    """PostgreSQL: a temporary table shaped like `table` holding `rows`; its name, emptied afterwards."""
    staging = f"{table}_incoming"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
                         f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    copy_rows(conn, staging, columns, rows)
    yield staging
    conn.exec_driver_sql(f"DELETE FROM {staging}")
