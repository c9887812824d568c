"""Read stored events back in chain order, each as the canonical JSON the chain hashed.

Shared by `verify` (which re-hashes them) and `export` (which writes them out),
so both see exactly the same bytes. The event tables are streamed in seq order
through server-side cursors (`yield_per`), rows read as plain tuples, and merged
with heapq, so memory stays flat however large the store. JSON columns are read
raw: a hand-edited cell may not parse, and then the event says why instead of
the reader failing.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Engine, Text, cast, select, type_coerce

from collectors.store.models import EVENT_TABLES
from collectors.store.rows import row_to_payload
from collectors.validate import canonical_json, outcome_key

_CHUNK = 2000  # rows per fetch from each cursor


@dataclass(frozen=True)
class StoredEvent:
    """One stored row as the chain sees it: its seq, stored hash and recomputed canonical JSON."""

    etype: str
    seq: int
    hash: str
    name: str  # e.g. "review r-1" or "outcome of decision d-1"
    canonical: bytes | None  # None when the row no longer reads back as an event
    flaw: str | None = None  # why it does not read back, or a derived column that disagrees
    # An outcome still keyed as before migration 0007 because another stored outcome with the same
    # content (a number written 1 in one, 1.0 in the other) took its new key: ingest, which keys
    # outcomes the new way, would take it for a duplicate of that one.
    old_key: bool = False

    @property
    def label(self) -> str:
        """How messages name the event."""
        return f"{self.name} (seq {self.seq})"


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose reads all see one consistent snapshot of the store."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        elif engine.dialect.name == "sqlite":
            # pysqlite never opens a transaction for reads; BEGIN pins one WAL snapshot.
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def stored_events(conn: Connection, types: Iterable[str] | None = None, after_seq: int = 0) -> Iterator[StoredEvent]:
    """The stored events of `types` (default: all four) with seq > `after_seq`, in chain (seq) order."""
    chosen = set(EVENT_TABLES if types is None else types)
    wanted = [etype for etype in EVENT_TABLES if etype in chosen]  # an unknown type selects nothing
    return heapq.merge(*(_stream(conn, etype, after_seq) for etype in wanted), key=lambda e: e.seq)


def _stream(conn: Connection, etype: str, after_seq: int) -> Iterator[StoredEvent]:
    """One table's rows in seq order, JSON columns read raw (a tampered value may not parse)."""
    table = EVENT_TABLES[etype]
    # psycopg decodes json itself, so PostgreSQL casts to text; on SQLite a CAST would render a REAL
    # with 15 digits, so the stored value is taken as it is.
    raw = (lambda c: cast(c, Text)) if conn.dialect.name == "postgresql" else (lambda c: type_coerce(c, Text))
    columns = [raw(c).label(c.name) if isinstance(c.type, JSON) else c for c in table.c]
    query = select(*columns).order_by(table.c.seq)
    if after_seq > 0:
        query = query.where(table.c.seq > after_seq)
    names = [c.name for c in table.c]
    for row in conn.execute(query.execution_options(yield_per=_CHUNK)):
        yield _stored_event(etype, dict(zip(names, row, strict=True)))  # a plain dict: cheaper than .mappings()


def _stored_event(etype: str, row: dict[str, Any]) -> StoredEvent:
    key = row["decision_id"] if etype == "outcome" else row["id"]
    name = f"outcome of decision {key}" if etype == "outcome" else f"{etype} {key}"
    try:
        for column in _JSON_COLUMNS[etype]:  # parsed in place: the row is this event's own dict
            if isinstance(row[column], (str, bytes)):
                row[column] = _json_value(column, row[column])
        payload = row_to_payload(etype, row)
        canonical = canonical_json(payload)
        flaw, old_key = _derived_flaw(etype, row, canonical, payload)
    except (ValueError, TypeError, OverflowError, OSError) as exc:  # what a hand-edited cell can raise
        return StoredEvent(etype, row["seq"], row["hash"], name, None, f"{type(exc).__name__}: {exc}")
    return StoredEvent(etype, row["seq"], row["hash"], name, canonical, flaw, old_key)


_JSON_COLUMNS = {etype: tuple(c.name for c in table.c if isinstance(c.type, JSON))
                 for etype, table in EVENT_TABLES.items()}


def _json_value(column: str, stored: str | bytes) -> Any:
    """A JSON cell's value; ValueError if an object in it repeats a key.

    The tool never writes a repeated key, and readers disagree on one: Python (and so the chain's
    recomputation) keeps the last copy, SQLite's JSON_EXTRACT (the --by segment.KEY query) the
    first. A hand-edited cell with the real value last and a forged one first would pass the chain
    and change the reports. Compact re-encoding is shorter than such a cell, so only cells longer
    than their re-encoding (a repeat, or only spaces or escapes) are parsed again, key by key.
    """
    value = orjson.loads(stored)
    raw = stored.encode() if isinstance(stored, str) else stored
    if len(raw) > len(orjson.dumps(value)):
        json.loads(raw, object_pairs_hook=lambda pairs: _unique_keys(column, pairs))
    return value


def _unique_keys(column: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        repeated = next(k for i, (k, _v) in enumerate(pairs) if any(k == other for other, _w in pairs[:i]))
        raise ValueError(f"its {column} repeats the key {repeated!r} (readers disagree on which copy counts)")
    return obj


def _derived_flaw(etype: str, row: Mapping[Any, Any], canonical: bytes,
                  payload: dict[str, Any]) -> tuple[str | None, bool]:
    """Columns stored beside the hashed content must still agree with it (KPIs read them).

    Returns the disagreement, if any, and whether an outcome keeps its key from before migration 0007.
    """
    if etype == "decision":
        expected = min(math.floor(10 * row["confidence"]), 9)
        if row["conf_bin"] != expected:
            return f"its conf_bin {row['conf_bin']} does not match its confidence {row['confidence']!r}", False
    # The digest of the canonical JSON itself is the key before migration 0007, kept by an outcome
    # whose new key another stored outcome (the same content, written 1 for 1.0) took first.
    if etype == "outcome" and row["key"] != outcome_key(payload):
        if row["key"] == hashlib.sha256(canonical).hexdigest():
            return None, True
        return "its key does not match its content", False
    return None, False
