"""Append validated events to the store, one transaction per batch.

The writer is where the contract's ingest rules live: idempotency (same key
and content: duplicate; other content: conflict, original kept), unknown
decisions (handed back so the caller can retry them after the rest of its
input, then reject them), the hash chain, and the derived decision state.
A batch is all-or-nothing: a crash leaves every committed batch intact and
nothing of the one in flight.

This is the bulk-ingest hot path (PERFORMANCE.md), so rows are built as
tuples straight from the payloads and inserted with the driver's executemany
(SQLite) or COPY (PostgreSQL), bypassing SQLAlchemy's per-row machinery. The
mapping is the one of `collectors.store.rows` (tests/test_ingest.py checks
the two agree).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Connection, Engine, select

from collectors.contract import FIELDS, Kind
from collectors.store import rollup
from collectors.store.lookup import select_in
from collectors.store.models import EVENT_TABLES
from collectors.store.rows import ROW_COLUMNS, row_to_payload
from collectors.store.state import State, apply_outcome, apply_review, initial_verdict
from collectors.validate import EventError, ValidEvent, parse_timestamp

Ref = TypeVar("Ref")

_TABLE = {"decision": "decisions", "review": "reviews", "outcome": "outcomes", "change": "changes"}
_KEY_COLUMN = {"decision": "id", "review": "id", "outcome": "key", "change": "id"}
_JSON_COLUMNS = {"segment", "policy_checks", "extra", "scope", "before", "after"}
_STATE_COLUMNS = tuple(State.__dataclass_fields__)
_IN_CHUNK = 500  # ids per IN (...) list, well under every engine's parameter limit
# Every column of each event table, in the order the row tuples are built.
_COLUMNS = {etype: cols + (("conf_bin",) if etype == "decision" else ()) for etype, cols in ROW_COLUMNS.items()}


@dataclass
class BatchResult(Generic[Ref]):
    """What happened to each event of a batch, by the caller's reference (e.g. file:line)."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[Ref, str]] = field(default_factory=list)
    unknown_decision: list[tuple[Ref, ValidEvent]] = field(default_factory=list)


def write_batch(engine: Engine, events: Sequence[tuple[Ref, ValidEvent]]) -> BatchResult[Ref]:
    """Store a batch of validated events in one transaction and report each one's fate.

    Reviews and outcomes whose decision is neither stored nor in the batch come
    back in `unknown_decision`, untouched, for the caller to retry or reject.
    """
    result: BatchResult[Ref] = BatchResult()
    # Rows are built before the transaction (less time holding the chain's lock), and before
    # any lookup, so an event the store cannot hold is rejected without reaching the database.
    built: list[_Built[Ref]] = []
    for ref, ev in events:
        try:
            canonical, values = _ROW_BUILDERS[ev.type](ev)
        except EventError as exc:
            result.rejected.append((ref, str(exc)))
            continue
        built.append((ref, ev, canonical, values))
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            return _write(conn, built, result)
        # psycopg prepares a statement after 5 runs, and PostgreSQL then reuses a generic plan made
        # when the tables were small (a sequential scan against an unhashed IN list): minutes at 1M.
        driver = conn.connection.driver_connection
        threshold = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            return _write(conn, built, result)
        finally:
            driver.prepare_threshold = threshold  # type: ignore[union-attr]


# (caller's reference, event, canonical JSON, row values with seq and hash still None)
_Built = tuple[Ref, ValidEvent, bytes, list[Any]]


def _write(conn: Connection, events: list[_Built[Ref]], result: BatchResult[Ref]) -> BatchResult[Ref]:
    # Take the chain's write lock first: a row lock on PostgreSQL, the database lock on SQLite.
    conn.exec_driver_sql("UPDATE chain_head SET seq = seq WHERE id = 1")
    head_seq, head_hash = conn.exec_driver_sql("SELECT seq, hash FROM chain_head WHERE id = 1").one()
    fresh = _drop_repeats(conn, events, result)
    known = _known_decisions(conn, fresh)

    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLE}
    seq, chain = head_seq, head_hash
    sha256 = hashlib.sha256
    for ref, ev, canonical, values in fresh:
        if ev.type in ("review", "outcome") and ev.payload["decision_id"] not in known:
            result.unknown_decision.append((ref, ev))
            continue
        seq += 1
        digest = sha256(chain.encode("ascii"))
        digest.update(canonical)
        chain = digest.hexdigest()
        values[0], values[-1 if ev.type != "decision" else -2] = seq, chain
        rows[ev.type].append(tuple(values))
    if seq == head_seq:
        return result
    for etype, table_rows in rows.items():
        _insert(conn, _TABLE[etype], _COLUMNS[etype], table_rows)
    _update_state(conn, rows, known)
    _execute(conn, "UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, chain))
    result.stored = seq - head_seq
    return result


# ---- rows -------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(value: str) -> int:
    """Epoch microseconds of a validated (canonical UTC RFC 3339) timestamp, via the C parser."""
    try:
        return (datetime.fromisoformat(value) - _EPOCH) // _MICROSECOND
    except (ValueError, TypeError):
        pass
    try:
        return parse_timestamp(value)
    except EventError:
        raise EventError(f"timestamp {value!r} cannot be stored (years before 1000 are not supported)"
                         if value[:4].count("-") else f"timestamp {value!r} cannot be stored") from None


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _row_builder(etype: str) -> Callable[[ValidEvent], tuple[bytes, list[Any]]]:
    """The function making (canonical JSON, row values) of one event type; seq and hash left None."""
    specs = FIELDS[etype]
    plan = tuple(
        (spec.name, _micros if spec.kind is Kind.TIMESTAMP
         else _json_text if spec.name in _JSON_COLUMNS else None)
        for spec in specs
    )
    text_fields = tuple(spec.name for spec in specs if spec.kind is Kind.STRING)
    known = frozenset(spec.name for spec in specs) | {"type"}
    is_outcome, is_decision = etype == "outcome", etype == "decision"
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS

    def build(ev: ValidEvent) -> tuple[bytes, list[Any]]:
        payload = ev.payload
        canonical = dumps(payload, option=sort_keys)
        if b"\\u0000" in canonical:
            _check_no_nul(payload, text_fields)
        values: list[Any] = [None, ev.key] if is_outcome else [None]
        get = payload.get
        present = 1  # "type"
        for name, convert in plan:
            value = get(name)
            if value is not None:
                present += 1
                if convert is not None:
                    value = convert(value)
            values.append(value)
        if len(payload) > present:
            values.append(_json_text({k: v for k, v in payload.items() if k not in known}))
        else:
            values.append(None)
        values.append(None)  # hash
        if is_decision:
            values.append(min(math.floor(10 * payload["confidence"]), 9))
        return canonical, values

    return build


def _check_no_nul(payload: dict[str, Any], text_fields: Iterable[str]) -> None:
    # PostgreSQL text cannot hold U+0000; reject it on every engine so both behave alike.
    for name in text_fields:
        value = payload.get(name)
        if isinstance(value, str) and "\x00" in value:
            raise EventError(f"{name} contains a NUL character (\\u0000), which the store cannot hold")


_ROW_BUILDERS = {etype: _row_builder(etype) for etype in _TABLE}


def _as_mapping(etype: str, values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_COLUMNS[etype], values))


# ---- idempotency and lookups ------------------------------------------------------------------

def _drop_repeats(conn: Connection, events: list[_Built[Ref]], result: BatchResult[Ref]) -> list[_Built[Ref]]:
    """Keep each (type, key) once; count duplicates and reject conflicts, in the batch and the store."""
    first: dict[str, dict[str, ValidEvent]] = {t: {} for t in _TABLE}
    unique: list[_Built[Ref]] = []
    for item in events:
        ev = item[1]
        of_type = first[ev.type]
        seen = of_type.get(ev.key)
        if seen is None:
            of_type[ev.key] = ev
            unique.append(item)
        elif seen.payload == ev.payload:
            result.duplicates += 1
        else:
            result.rejected.append((item[0], _conflict(ev, "earlier in the same input")))
    stored = _stored_payloads(conn, (item[1] for item in unique))
    if not stored:
        return unique
    fresh: list[_Built[Ref]] = []
    for item in unique:
        ev = item[1]
        old = stored.get((ev.type, ev.key))
        if old is None:
            fresh.append(item)
        elif old == ev.payload:
            result.duplicates += 1
        else:
            result.rejected.append((item[0], _conflict(ev, "already stored")))
    return fresh


def _conflict(ev: ValidEvent, where: str) -> str:
    what = f"outcome of decision {ev.payload['decision_id']}" if ev.type == "outcome" else f"{ev.type} {ev.key}"
    return f"conflict: {what} was {where} with other content (original kept)"


def _stored_payloads(conn: Connection, events: Iterable[ValidEvent]) -> dict[tuple[str, str], dict[str, Any]]:
    """Payloads of the stored events with the batch's keys: a cheap key probe, full rows only for hits."""
    keys: dict[str, list[str]] = {}
    for ev in events:
        keys.setdefault(ev.type, []).append(ev.key)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for etype, wanted in keys.items():
        column = _KEY_COLUMN[etype]
        hits = [row[0] for row in select_in(conn, f"SELECT {column} FROM {_TABLE[etype]}", column, wanted)]
        if not hits:
            continue
        table = EVENT_TABLES[etype]
        key_column = table.c[column]
        for i in range(0, len(hits), _IN_CHUNK):
            query = select(table).where(key_column.in_(hits[i:i + _IN_CHUNK]))
            for row in conn.execute(query).mappings():
                found[(etype, row[column])] = row_to_payload(etype, dict(row))
    return found


def _known_decisions(conn: Connection, events: Sequence[_Built[Any]]) -> dict[str, tuple[int | None, str]]:
    """Decision id -> (seq or None if new in this batch, route) for every decision the batch names."""
    known: dict[str, tuple[int | None, str]] = {}
    wanted: set[str] = set()
    for item in events:
        ev = item[1]
        etype = ev.type
        if etype == "decision":
            known[ev.key] = (None, ev.payload["route"])
        elif etype != "change":
            wanted.add(ev.payload["decision_id"])
    missing = [d for d in wanted if d not in known]
    for id_, seq, route in select_in(conn, "SELECT id, seq, route FROM decisions", "id", missing):
        known[id_] = (seq, route)
    return known


# ---- writing ----------------------------------------------------------------------------------

def _execute(conn: Connection, sql: str, params: Any) -> None:
    """Run one qmark-style statement (or executemany with a list) through the driver."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, params)


def _insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # COPY is several times faster than executemany on PostgreSQL, in the same transaction.
        driver = conn.connection.driver_connection
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    _execute(conn, sql, rows)


def _update_state(conn: Connection, rows: dict[str, list[tuple[Any, ...]]],
                  known: dict[str, tuple[int | None, str]]) -> None:
    """Create the state of new decisions and fold the batch's reviews and outcomes in."""
    columns = _COLUMNS["decision"]
    id_at, seq_at, route_at = columns.index("id"), columns.index("seq"), columns.index("route")
    decision_of = _COLUMNS["review"].index("decision_id")
    outcome_decision_of = _COLUMNS["outcome"].index("decision_id")
    touched = ({r[decision_of] for r in rows["review"]} | {o[outcome_decision_of] for o in rows["outcome"]})
    new_states: dict[str, State] = {}
    untouched: list[tuple[Any, ...]] = []
    rest = _state_row(State.initial(0, "auto"))[2:]  # the initial state beyond seq and verdict
    for row in rows["decision"]:
        if row[id_at] in touched:
            new_states[row[id_at]] = State.initial(row[seq_at], row[route_at])
        else:
            untouched.append((row[seq_at], initial_verdict(row[route_at])) + rest)
    old_seqs = {known[d][0]: d for d in touched if d not in new_states}
    old_states = _load_states(conn, old_seqs)
    before = rollup.snapshot(old_states)  # their old contribution leaves the rollups
    states = {**old_states, **new_states}
    for review in rows["review"]:
        apply_review(states[review[decision_of]], _as_mapping("review", review))
    for outcome in rows["outcome"]:
        apply_outcome(states[outcome[outcome_decision_of]], _as_mapping("outcome", outcome))
    untouched.extend(_state_row(s) for s in new_states.values())
    _insert(conn, "decision_state", _STATE_COLUMNS, untouched)
    if old_states:
        others = [c for c in _STATE_COLUMNS if c != "decision_seq"]
        sql = f"UPDATE decision_state SET {', '.join(f'{c} = ?' for c in others)} WHERE decision_seq = ?"
        _execute(conn, sql, [_update_row(s) for s in old_states.values()])
    rollup.record_batch(conn, rows, _COLUMNS, before, states)


_state_row: Callable[[State], tuple[Any, ...]] = attrgetter(*_STATE_COLUMNS)
# The UPDATE's parameters: every state column but the key, then the key.
_update_row: Callable[[State], tuple[Any, ...]] = attrgetter(
    *(c for c in _STATE_COLUMNS if c != "decision_seq"), "decision_seq")


def _load_states(conn: Connection, seq_to_id: dict[Any, str]) -> dict[str, State]:
    seqs = [s for s in seq_to_id if s is not None]
    query = f"SELECT {', '.join(_STATE_COLUMNS)} FROM decision_state"
    return {seq_to_id[row[0]]: State(*row) for row in select_in(conn, query, "decision_seq", seqs)}
