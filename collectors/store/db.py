"""Open the audit store: create the engine, check it answers, and bring the schema to head."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    """The store cannot be reached or used; the message says which and why."""


def create_store_engine(url: str) -> Engine:
    """An engine for a SQLAlchemy URL, with SQLite tuned for a write-heavy audit log."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {url!r} (try sqlite:///hitl-tower.db)") from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgres":
        raise StoreError(f"unsupported database URL {url!r}: write postgresql:// (or postgresql+psycopg://), "
                         "not postgres://")
    try:
        engine = create_engine(parsed, future=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"unsupported database URL {url!r}: {exc}") from None
    except ArgumentError as exc:  # e.g. sqlite://x.db: SQLAlchemy explains the valid forms
        raise StoreError(f"not a database URL: {url!r}: {' '.join(str(exc).split())}") from None
    if engine.dialect.name == "sqlite":
        _bind_none_and_bool_directly()
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _bind_none_and_bool_directly() -> None:
    """Let the sqlite3 driver bind None and bool without its generic adaptation path.

    The driver binds int, float and str as they are, but sends every other value (None and bool
    included) through `microprotocols.adapt`, which raises and swallows an AttributeError per value
    when nothing is registered: ~9% of a bulk load's instructions, on rows full of NULLs. Registered
    adapters give the same values (None stays NULL, a bool binds as its int); `{}.get` is a C
    callable returning None.
    """
    none: dict[None, None] = {}
    sqlite3.register_adapter(type(None), none.get)
    sqlite3.register_adapter(bool, int)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while ingest writes. NORMAL in WAL keeps the store consistent after
    # any crash; a power loss may undo the last commits (the rerun of ingest then stores them again).
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass  # a read-only file (a copy handed to the exporter or a report): read it in its own mode
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A 64 MiB page cache (default 2 MiB) keeps the unique-id indexes' hot pages in memory on bulk
    # ingest; temporary b-trees (IN lists, sorts) stay in memory. Neither affects durability.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Checkpoint the WAL into the database every 64 MiB instead of every 4 MiB: a bulk-ingest batch
    # writes ~10-20 MiB of pages, and pages written again by the next batches (indexes, rollups) are
    # then copied back once instead of each time. Readers are unaffected.
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.close()


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Apply every pending Alembic migration (the schema's only source of truth)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def needs_migration(engine: Engine) -> bool:
    """True when the store is not at the newest schema revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current != heads


def open_store(url: str, *, create: bool = True) -> Engine:
    """Connect to the store at `url`, migrating it to the newest schema on first use.

    With `create=False` a missing SQLite file or a database without the tower's
    tables is an error instead of a new, empty store (for read-only commands).

    Raises StoreError with a readable reason when the database cannot be reached.
    """
    engine = create_store_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            _check_sqlite_path(engine, create)
        if needs_migration(engine):
            # An existing store is upgraded on first use; only creating a new one needs `create`.
            if not create and not has_tables(engine):
                raise StoreError(f"store {_safe(url)} has no HITL Control Tower schema (run hitl-tower init-db)")
            migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot reach database {_safe(url)}: {error_line(exc)}") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"database {_safe(url)} failed: {error_line(exc)}") from None
    return engine


def _check_sqlite_path(engine: Engine, create: bool) -> None:
    database = engine.url.database
    if not database or database == ":memory:":
        return
    if engine.url.query.get("uri") == "true" and database.startswith("file:"):
        # A URI filename (sqlite:///file:tower.db?mode=ro&uri=true, read-only): the path is what
        # lies between "file:" and the URI's own query.
        database = database.removeprefix("file:").split("?", 1)[0]
        if database.startswith("//"):  # file:///abs/path
            database = "/" + database[2:].lstrip("/")
    path = Path(database)
    if path.is_dir():
        raise StoreError(f"SQLite path {database} is a directory, not a database file")
    if not path.exists():
        if not create:
            raise StoreError(f"SQLite store {database} does not exist")
        if not path.parent.exists():
            raise StoreError(f"cannot create SQLite store {database}: folder {path.parent} does not exist")


def has_tables(engine: Engine) -> bool:
    """True when the event tables exist."""
    return inspect(engine).has_table("decisions")


def _safe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def error_line(exc: Exception) -> str:
    """The first line of a database error: the driver's own message when there is one, else its type."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def decision_time_range(engine: Engine) -> tuple[int, int] | None:
    """(oldest, newest) proposed_at of the store's decisions in epoch microseconds; None when empty."""
    from sqlalchemy import func, select

    from collectors.store.models import Decision

    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(Decision.proposed_at), func.max(Decision.proposed_at))).one()
    return None if low is None else (int(low), int(high))
