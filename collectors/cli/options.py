"""Options shared by several commands, and the one way a command opens config and store."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
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

DEFAULT_WINDOW_DAYS = 30
"""Window of the decision-support commands when --start/--end are not given (ending at the newest decision)."""
DEMO_DB = Path("hitl-demo.db")  # where `hitl-tower demo` builds its store, in the current folder
_DAY_US = 86_400 * 1_000_000

WindowStartOption = Annotated[
    str | None,
    typer.Option("--start", metavar="T", help="Window start, RFC 3339 with a zone (inclusive). Default: --end "
                 "minus 30 days.", show_default=False),
]
WindowEndOption = Annotated[
    str | None,
    typer.Option("--end", metavar="T", help="Window end, RFC 3339 with a zone (exclusive). Default: the whole "
                 "second just after the newest decision in the store.", show_default=False),
]


class EventTypeChoice(str, Enum):
    """The four event types, for the options that select some (schema --type, export --type)."""

    decision = "decision"
    review = "review"
    outcome = "outcome"
    change = "change"


class OutputFormat(str, Enum):
    """table (readable, for a terminal) or json (one object, for scripts)."""

    table = "table"
    json = "json"


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


def store_url(db: str | None, config: TowerConfig) -> str:
    """--db, or the config's db_url when it is not given; exit 2 for an empty one.

    An empty --db is a mistake (an unset shell variable, say), not a request for the default store:
    falling back would quietly load into or report on another database.
    """
    import os

    url = config.db_url if db is None else db
    if not url.strip():
        where = ("--db" if db is not None else
                 "HITL_TOWER_DB_URL" if "HITL_TOWER_DB_URL" in os.environ else "db_url of the config")
        fail(f"{where} is empty: give a SQLAlchemy URL such as sqlite:///hitl-tower.db")
    if _in_memory_sqlite(url):
        fail(f"{url} is an in-memory SQLite store, which keeps nothing once the command ends (an unset "
             "variable in sqlite:///$PATH?): give a file, such as sqlite:///hitl-tower.db")
    return url


def _in_memory_sqlite(url: str) -> bool:
    """Whether the URL names SQLite's in-memory database (no path, :memory:, or a memory URI)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # open_store names the bad URL
    if parsed.get_backend_name() != "sqlite" or parsed.host:  # sqlite://x.db: a bad URL, which open_store names
        return False
    database = parsed.database or ""
    return (database in ("", ":memory:") or database.startswith("file::memory:")
            or parsed.query.get("mode") == "memory")


def open_store_or_exit(db: str | None, config: TowerConfig, *, create: bool = True) -> Engine:
    """The migrated store engine for --db (or the config's db_url), or exit 2 with the reason."""
    from collectors.store.db import StoreError, open_store

    url = store_url(db, config)
    try:
        return open_store(url, create=create)
    except StoreError as exc:
        fail(str(exc) + _demo_store_hint(db, url))


def _demo_store_hint(db: str | None, url: str) -> str:
    """After the demo, the next command a new user types (`hitl-tower report`) looked for the default
    store, not the demo's, and only said it did not exist: name the demo's store when it is right here."""
    from sqlalchemy.engine import make_url

    if db is not None or not DEMO_DB.is_file():
        return ""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or Path(parsed.database or "").exists():
        return ""
    return (f"; the demo's store is ./{DEMO_DB} here: add --db sqlite:///{DEMO_DB} "
            f"(or export HITL_TOWER_DB_URL=sqlite:///{DEMO_DB})")


def parse_instant(flag: str, value: str) -> int:
    """An RFC 3339 time given to `flag` as epoch microseconds, or exit 2 naming the flag."""
    from collectors.validate import EventError, parse_timestamp

    try:
        return parse_timestamp(value)
    except EventError as exc:
        fail(f"{flag}: {exc}")


def optional_instant(flag: str, value: str | None) -> int | None:
    """parse_instant, passing None through."""
    return None if value is None else parse_instant(flag, value)


def resolve_window(start_us: int | None, end_us: int | None, newest_us: int | None) -> tuple[int, int]:
    """The window of a decision-support command: end defaults to the whole second just after the newest
    decision (or --start + 30 days in a store without decisions), start to end - 30 days; exit 2 when
    there is no default or start is not before end."""
    if end_us is None:
        if newest_us is not None:
            end_us = (newest_us // 1_000_000 + 1) * 1_000_000  # a whole second: no "...16.000001Z"
        elif start_us is not None:
            end_us = start_us + DEFAULT_WINDOW_DAYS * _DAY_US
        else:
            fail("the store holds no decisions, so there is no default window; give --start and --end")
    if start_us is None:
        start_us = end_us - DEFAULT_WINDOW_DAYS * _DAY_US
    if start_us >= end_us:
        fail("--start must be before --end")
    return start_us, end_us


def store_window(engine: Engine, start_us: int | None, end_us: int | None) -> tuple[int, int]:
    """resolve_window with the newest decision read from the store (only when --end is not given)."""
    from collectors.store.db import decision_time_range

    span = decision_time_range(engine) if end_us is None else None
    return resolve_window(start_us, end_us, span[1] if span else None)


def compute_on_window(start: str | None, end: str | None, db: str | None, config: Path | None,
                      compute: Callable[[Engine, TowerConfig, int, int], Any]) -> Any:
    """The run of a decision-support command: parse --start/--end, load the config, open the store
    (never creating one), resolve the window against it and return compute(engine, config, start, end);
    a bad time, config or store exits 2, a database error mid-way too, and the engine is disposed."""
    start_us = optional_instant("--start", start)
    end_us = optional_instant("--end", end)
    cfg = load_config_or_exit(config)
    engine = open_store_or_exit(db, cfg, create=False)
    with reading_store(engine):
        start_us, end_us = store_window(engine, start_us, end_us)
        return compute(engine, cfg, start_us, end_us)


def fail_reading(exc: Exception) -> NoReturn:
    """Exit 2 with one line for a database that failed mid-command, not a traceback."""
    from collectors.store.db import error_line

    fail(f"reading the store failed: {error_line(exc)}")


@contextmanager
def reading_store(engine: Engine) -> Iterator[None]:
    """Run a command's reads: a database error becomes fail_reading, and the engine is disposed after."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        fail_reading(exc)
    finally:
        engine.dispose()


def echo_result(output: OutputFormat, data: Any, render: Callable[[Any], str]) -> None:
    """Print a command's result: JSON, or the command's own table rendering."""
    if output is OutputFormat.json:
        echo_json(data)
    else:
        typer.echo(render(data))


def echo_json(data: Any) -> None:
    """Print one JSON object, indented; NaN is an error (nulls are None by then).

    A figure that overflows a double (a sum of costs near 1e308: valid input, JSON has no infinity)
    prints as null, and a warning on stderr names it: an unprintable object would lose the report.
    """
    overflowed: list[str] = []
    printable = _without_infinities(data, "", overflowed)
    typer.echo(json.dumps(printable, indent=2, ensure_ascii=False, allow_nan=False))
    for where in overflowed:
        typer.echo(f"warning: {where} overflows a double (beyond ±1.8e308): printed as null", err=True)


def _without_infinities(data: Any, path: str, overflowed: list[str]) -> Any:
    """`data` with each infinite float replaced by None; the paths of those replaced, in `overflowed`."""
    if isinstance(data, float):
        if data in (math.inf, -math.inf):
            overflowed.append(path or "the value")
            return None
        return data
    if isinstance(data, dict):
        return {k: _without_infinities(v, f"{path}.{k}" if path else str(k), overflowed) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_without_infinities(v, f"{path}[{i}]", overflowed) for i, v in enumerate(data)]
    return data
