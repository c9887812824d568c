"""Append validated events to the store, one transaction per batch.

The writer is where the contract's ingest rules live: idempotency (same key
and content: duplicate; other content: conflict, original kept), unknown
decisions (handed back so the caller can retry them after the rest of its
input, then reject them), the hash chain, and the derived decision state.
A batch is all-or-nothing: a crash leaves every committed batch intact and
nothing of the one in flight.

This is the bulk-ingest hot path (PERFORMANCE.md): events arrive prepared
(`collectors.store.prepared`: row tuples and canonical JSON, built in worker
processes during bulk ingest), and rows go in with the driver's executemany
(SQLite) or COPY (PostgreSQL), bypassing SQLAlchemy's per-row machinery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Connection, Engine, select

from collectors.store import rollup
from collectors.store.bulk import copy_rows, execute, staged
from collectors.store.lookup import select_in
from collectors.store.models import EVENT_TABLES
from collectors.store.prepared import COLUMNS as _COLUMNS
from collectors.store.prepared import HASH_INDEX, Prepared, prepare
from collectors.store.rows import row_to_payload
from collectors.store.state import (
    AUTO,
    OUTCOME_FIELDS,
    PENDING,
    REVIEW_FIELDS,
    State,
    apply_outcome,
    apply_review,
)
from collectors.validate import EventError, ValidEvent, same_content

Ref = TypeVar("Ref")

_TABLE = {"decision": "decisions", "review": "reviews", "outcome": "outcomes", "change": "changes"}
_KEY_COLUMN = {"decision": "id", "review": "id", "outcome": "key", "change": "id"}
_STATE_COLUMNS = tuple(State.__dataclass_fields__)
_IN_CHUNK = 500  # ids per IN (...) list, well under every engine's parameter limit


@dataclass
class BatchResult(Generic[Ref]):
    """What happened to each event of a batch, by the caller's reference (e.g. file:line)."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[Ref, str]] = field(default_factory=list)
    unknown_decision: list[tuple[Ref, Prepared]] = field(default_factory=list)


def write_batch(engine: Engine, events: Sequence[tuple[Ref, ValidEvent | Prepared]]) -> BatchResult[Ref]:
    """Store a batch of validated (or already prepared) events in one transaction; report each one's fate.

    Reviews and outcomes whose decision is neither stored nor in the batch come
    back in `unknown_decision`, prepared and untouched, for the caller to retry or reject.
    """
    result: BatchResult[Ref] = BatchResult()
    prepared: list[tuple[Ref, Prepared]] = []
    for ref, ev in events:
        if ev.__class__ is not ValidEvent:
            prepared.append((ref, ev))  # type: ignore[arg-type]
            continue
        # Built before any lookup, so an event the store cannot hold never reaches the database.
        try:
            prepared.append((ref, prepare(ev)))  # type: ignore[arg-type]
        except EventError as exc:
            result.rejected.append((ref, str(exc)))
    return write_prepared(engine, prepared, result)


def write_prepared(engine: Engine, events: Sequence[tuple[Ref, Prepared]],
                   result: BatchResult[Ref] | None = None, rollups: bool = True) -> BatchResult[Ref]:
    """Store a batch of prepared events (`collectors.store.prepared`) in one transaction.

    rollups=False leaves the rollup tables alone and marks them invalid in the same transaction
    (reports then read the raw tables until `rollup.rebuild_rollups`): a bulk load that rebuilds
    them once at its end saves their upkeep per batch.
    """
    if result is None:
        result = BatchResult()
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            return _write(conn, events, result, rollups)
        # psycopg prepares a statement after 5 runs, and PostgreSQL then reuses a generic plan made
        # when the tables were small (a sequential scan against an unhashed IN list): minutes at 1M.
        driver = conn.connection.driver_connection
        threshold = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            return _write(conn, events, result, rollups)
        finally:
            driver.prepare_threshold = threshold  # type: ignore[union-attr]


def _write(conn: Connection, events: Sequence[tuple[Ref, Prepared]], result: BatchResult[Ref],
           rollups: bool) -> BatchResult[Ref]:
    # Take the chain's write lock first: a row lock on PostgreSQL, the database lock on SQLite.
    conn.exec_driver_sql("UPDATE chain_head SET seq = seq WHERE id = 1")
    head_seq, head_hash = conn.exec_driver_sql("SELECT seq, hash FROM chain_head WHERE id = 1").one()
    head = (head_seq, head_hash)
    # Optimistic: most batches hold only new events, and asking the unique indexes for every key
    # first costs as much as inserting. An event stored already shows as a short row count of
    # SQLite's INSERT OR IGNORE, or as a unique violation of PostgreSQL's COPY; the batch then goes
    # back to the savepoint and the careful way (probe the keys, count duplicates, reject conflicts).
    conn.exec_driver_sql("SAVEPOINT all_new")
    attempt: BatchResult[Ref] = BatchResult()
    try:
        all_new = _append(conn, events, {}, head, attempt, rollups, only_new=True)
    except Exception as exc:
        if not _is_unique_violation(exc):
            raise
        all_new = False
    if all_new:
        conn.exec_driver_sql("RELEASE SAVEPOINT all_new")
        result.stored, result.unknown_decision = attempt.stored, attempt.unknown_decision
        result.duplicates += attempt.duplicates
        result.rejected += attempt.rejected
        return result
    conn.exec_driver_sql("ROLLBACK TO SAVEPOINT all_new")
    conn.exec_driver_sql("RELEASE SAVEPOINT all_new")
    _append(conn, events, _stored_payloads(conn, events), head, result, rollups, only_new=False)
    return result


def _is_unique_violation(exc: BaseException) -> bool:
    """A PostgreSQL unique violation (SQLSTATE 23505), raised by the driver or wrapped by SQLAlchemy."""
    return "23505" in (getattr(exc, "sqlstate", None), getattr(getattr(exc, "orig", None), "sqlstate", None))


def _append(conn: Connection, events: Sequence[tuple[Ref, Prepared]],
            stored_payloads: dict[tuple[str, str], dict[str, Any]], head: tuple[int, str],
            result: BatchResult[Ref], rollups: bool, only_new: bool) -> bool:
    """Sort the batch out (`_sort_out`), then chain, insert and fold in the events to keep; with
    only_new (stored_payloads empty: nothing assumed stored), False as soon as one was stored already."""
    new, stored = _known_decisions(conn, events, stored_payloads)
    fresh = _sort_out(events, stored_payloads, new, stored, result)
    rows: dict[str, list[list[Any]]] = {t: [] for t in _TABLE}
    hash_index = HASH_INDEX
    head_seq, chain = head
    seq = head_seq
    sha256 = hashlib.sha256
    for item in fresh:
        etype, _key, canonical, values, _decision_id = item[1]
        seq += 1
        digest = sha256(chain.encode("ascii"))
        digest.update(canonical)
        chain = digest.hexdigest()
        # The row is the prepared values themselves (a retry of the batch sets both again).
        values[0], values[hash_index[etype]] = seq, chain
        rows[etype].append(values)
    if seq == head_seq:
        return True
    for etype, table_rows in rows.items():
        if _insert(conn, _TABLE[etype], _COLUMNS[etype], table_rows, or_ignore=only_new) < len(table_rows):
            return False
    _update_state(conn, rows, stored, (head_seq + 1, seq), rollups)
    execute(conn, "UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, chain))
    result.stored = seq - head_seq
    return True


# ---- idempotency and lookups ------------------------------------------------------------------

def _sort_out(events: Sequence[tuple[Ref, Prepared]], stored_payloads: dict[tuple[str, str], dict[str, Any]],
              new: set[str], stored: dict[str, Any], result: BatchResult[Ref]) -> list[tuple[Ref, Prepared]]:
    """The events to store, in order; the others counted as duplicates or rejected as conflicts,
    or handed back as naming an unknown decision.

    Each event is compared with the version that is kept: the stored one if its key is stored,
    else the first one of the batch that is stored now. An event naming an unknown decision is
    not kept yet, so it does not stand in the way of a later version whose decision is known.
    Same content means equal payloads (`same_content`: numbers by value, but a boolean is never a
    number); equal canonical JSON is the quick way to see it.
    """
    kept: dict[str, dict[str, bytes]] = {t: {} for t in _TABLE}
    fresh: list[tuple[Ref, Prepared]] = []
    for item in events:
        etype, key, canonical, _values, decision_id = item[1]
        if stored_payloads:
            old = stored_payloads.get((etype, key))
            if old is not None:
                if same_content(old, orjson.loads(canonical)):
                    result.duplicates += 1
                else:
                    result.rejected.append((item[0], _conflict(item[1], "already stored")))
                continue
        if decision_id is not None and decision_id not in new and decision_id not in stored:
            result.unknown_decision.append(item)
            continue
        of_type = kept[etype]
        seen = of_type.get(key)
        if seen is None:
            of_type[key] = canonical
            fresh.append(item)
        elif seen == canonical or same_content(orjson.loads(seen), orjson.loads(canonical)):
            result.duplicates += 1
        else:
            result.rejected.append((item[0], _conflict(item[1], "earlier in the same input")))
    return fresh


def _conflict(ev: Prepared, where: str) -> str:
    etype, key, _canonical, _values, decision_id = ev
    what = f"outcome of decision {decision_id}" if etype == "outcome" else f"{etype} {key}"
    return f"conflict: {what} was {where} with other content (original kept)"


def _stored_payloads(conn: Connection, events: Iterable[tuple[Any, Prepared]]
                     ) -> dict[tuple[str, str], dict[str, Any]]:
    """Payloads of the stored events with the batch's keys: a cheap key probe, full rows only for hits."""
    wanted: dict[str, dict[Any, None]] = {}  # keys per type, each once, in order
    for _ref, (etype, key, _canonical, values, _decision) in events:
        wanted.setdefault(etype, {})[(values[_OBSERVED_AT], key) if etype == "outcome" else key] = None
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for etype, keys in wanted.items():
        hits = _stored_seqs(conn, etype, list(keys))
        table = EVENT_TABLES[etype]
        for i in range(0, len(hits), _IN_CHUNK):
            for row in conn.execute(select(table).where(table.c.seq.in_(hits[i:i + _IN_CHUNK]))).mappings():
                found[(etype, row[_KEY_COLUMN[etype]])] = row_to_payload(etype, dict(row))
    return found


_OBSERVED_AT = _COLUMNS["outcome"].index("observed_at")
_PAIRS_PER_QUERY = 4_000  # (observed_at, key) pairs: 8,000 parameters, well under SQLite's 32,766


def _stored_seqs(conn: Connection, etype: str, keys: Sequence[Any]) -> list[int]:
    """Chain positions of the stored events with these keys: ids, or for outcomes (observed_at, key) pairs.

    Outcomes are probed by both, the columns of their unique index (migration 0005).
    """
    if etype != "outcome":
        return [row[0] for row in select_in(conn, f"SELECT seq FROM {_TABLE[etype]}", "id", keys)]
    if conn.dialect.name == "postgresql":
        observed, digests = zip(*keys)
        return [row[0] for row in conn.exec_driver_sql(
            "SELECT o.seq FROM outcomes o JOIN unnest(%s::bigint[], %s::text[]) AS w(observed_at, key) "
            "USING (observed_at, key)", (list(observed), list(digests)))]
    seqs: list[int] = []
    for i in range(0, len(keys), _PAIRS_PER_QUERY):
        chunk = keys[i:i + _PAIRS_PER_QUERY]
        # A join (not a row-value IN, which SQLite 3.40 answers with a scan) looks each pair up in the index.
        sql = (f"WITH w(observed_at, key) AS (VALUES {', '.join(['(?, ?)'] * len(chunk))}) SELECT o.seq "
               "FROM w CROSS JOIN outcomes o ON o.observed_at = w.observed_at AND o.key = w.key")
        seqs += [row[0] for row in conn.exec_driver_sql(sql, tuple(v for pair in chunk for v in pair))]
    return seqs


# A stored decision the batch refers to: its rollup attributes (rollup.Attrs) and its state.
_Stored = tuple[tuple[Any, ...], State]
_STORED_QUERY = (
    f"SELECT {', '.join(f'd.{c}' for c in rollup.DECISION_ATTRS)}, {', '.join(f's.{c}' for c in _STATE_COLUMNS)} "
    "FROM decisions d JOIN decision_state s ON s.decision_seq = d.seq")
_N_ATTRS = len(rollup.DECISION_ATTRS)


def _known_decisions(conn: Connection, events: Sequence[tuple[Any, Prepared]],
                     stored_payloads: Mapping[tuple[str, str], Any]) -> tuple[set[str], dict[str, _Stored]]:
    """The decisions the batch names: ids of those new in it, and the stored ones with their state.

    A decision of the batch whose id is among `stored_payloads` is a stored one (a re-send).

    One query for the stored ones brings everything the state and rollup upkeep need.
    """
    new: set[str] = set()
    wanted: set[str] = set()
    for _ref, (etype, key, _canonical, _values, decision_id) in events:
        if decision_id is not None:
            wanted.add(decision_id)
        elif etype == "decision" and ("decision", key) not in stored_payloads:
            new.add(key)
    stored: dict[str, _Stored] = {}
    ids = [d for d in wanted if d not in new]
    if conn.dialect.name == "postgresql":
        # PostgreSQL plans the join against a long id array as a hash join over both whole tables
        # (~0.4 s a batch at 1M decisions); two index lookups by array stay proportional to the batch.
        attrs = {row[0]: tuple(row) for row in select_in(
            conn, f"SELECT {', '.join(rollup.DECISION_ATTRS)} FROM decisions", "id", ids)}
        for row in select_in(conn, f"SELECT {', '.join(_STATE_COLUMNS)} FROM decision_state", "decision_seq",
                             list(attrs)):
            values = attrs[row[0]]
            stored[values[_ATTR_ID]] = (values, State(*row))
        return new, stored
    n = _N_ATTRS
    for row in select_in(conn, _STORED_QUERY, "d.id", ids):
        stored[row[1]] = (tuple(row[:n]), State(*row[n:]))
    return new, stored


# ---- writing ----------------------------------------------------------------------------------

def _insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
            or_ignore: bool = False) -> int:
    """Insert rows; the number inserted (with or_ignore, on SQLite, rows whose key exists are skipped)."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        copy_rows(conn, table, columns, rows)  # several times faster than executemany on PostgreSQL
        return len(rows)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    sql = f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


_PICK_ATTRS = itemgetter(*(_COLUMNS["decision"].index(c) for c in rollup.DECISION_ATTRS))
_REVIEW_DECISION = _COLUMNS["review"].index("decision_id")
_OUTCOME_DECISION = _COLUMNS["outcome"].index("decision_id")
_review_fields = itemgetter(*(_COLUMNS["review"].index(c) for c in REVIEW_FIELDS))
_outcome_fields = itemgetter(*(_COLUMNS["outcome"].index(c) for c in OUTCOME_FIELDS))
_ATTR_SEQ, _ATTR_ID, _ATTR_ROUTE = (rollup.DECISION_ATTRS.index(c) for c in ("seq", "id", "route"))


def _update_state(conn: Connection, rows: dict[str, list[list[Any]]], stored: dict[str, _Stored],
                  seqs: tuple[int, int], rollups: bool) -> None:
    """Create the state of new decisions, fold the batch's reviews and outcomes in, update the rollups
    (or, with rollups=False, mark them invalid).

    seqs: the first and last chain position of the batch. New decisions that the batch's own reviews
    or outcomes change go in with their state as of the batch's end; the other new decisions get
    their initial state in one INSERT ... SELECT over those positions (no row crosses from Python),
    and count in the rollups column-wise (`rollup.initial_contributions`). Only stored decisions'
    states are updated in place.
    """
    reviews, outcomes = rows["review"], rows["outcome"]
    touched = {r[_REVIEW_DECISION] for r in reviews} | {o[_OUTCOME_DECISION] for o in outcomes}
    initial: list[tuple[Any, ...]] = []
    # decision id -> (attributes, state before the batch, state now); the state before is None for a
    # new decision, and when the rollups are skipped (only they need it, to take its contributions out)
    changed: dict[str, tuple[tuple[Any, ...], State | None, State]] = {}
    new_states: list[State] = []
    for attrs in map(_PICK_ATTRS, rows["decision"]):
        if attrs[_ATTR_ID] in touched:
            state = State.initial(attrs[_ATTR_SEQ], attrs[_ATTR_ROUTE])
            changed[attrs[_ATTR_ID]] = (attrs, None, state)
            new_states.append(state)
        else:
            initial.append(attrs)
    stored_states: list[State] = []
    for decision_id in touched:
        if decision_id not in changed:
            attrs, state = stored[decision_id]
            before = State(*_state_row(state)) if rollups else None  # a copy; 4x faster than replace()
            changed[decision_id] = (attrs, before, state)
            stored_states.append(state)
    for review in reviews:
        apply_review(changed[review[_REVIEW_DECISION]][2], *_review_fields(review))
    for outcome in outcomes:
        apply_outcome(changed[outcome[_OUTCOME_DECISION]][2], *_outcome_fields(outcome))
    if new_states:
        _insert(conn, "decision_state", _STATE_COLUMNS, [_state_row(s) for s in new_states])
    if rows["decision"]:
        remaining = _REMAINING_INITIAL_STATES[conn.dialect.name == "postgresql"]
        execute(conn, remaining if new_states else _INITIAL_STATES, seqs)
    if stored_states:
        _store_states(conn, stored_states)
    if rollups:
        rollup.record_batch(conn, initial, changed, reviews, _COLUMNS["review"])
    else:
        rollup.set_valid(conn, False)


_OTHER_STATE_COLUMNS = [c for c in _STATE_COLUMNS if c != "decision_seq"]


def _store_states(conn: Connection, states: Sequence[State]) -> None:
    """Write changed decision states over their rows."""
    if conn.dialect.name == "postgresql":
        # executemany would send one UPDATE per state (~25 us each); COPY into a temporary table
        # and one UPDATE ... FROM is a single statement, as for the rollups.
        with staged(conn, "decision_state", _STATE_COLUMNS, [_state_row(s) for s in states]) as staging:
            conn.exec_driver_sql(
                f"UPDATE decision_state s SET {', '.join(f'{c} = i.{c}' for c in _OTHER_STATE_COLUMNS)} "
                f"FROM {staging} i WHERE s.decision_seq = i.decision_seq")
        return
    sql = f"UPDATE decision_state SET {', '.join(f'{c} = ?' for c in _OTHER_STATE_COLUMNS)} WHERE decision_seq = ?"
    execute(conn, sql, [_update_row(s) for s in states])


# The initial state of the decisions stored at chain positions [?, ?]: `State.initial` in SQL.
_INITIAL_STATES = (
    f"INSERT INTO decision_state ({', '.join(_STATE_COLUMNS)}) "
    f"SELECT seq, CASE WHEN route = '{AUTO}' THEN '{AUTO}' ELSE '{PENDING}' END, "
    f"{', '.join('0.0' if c.endswith('_sum') else 'NULL' for c in _STATE_COLUMNS[2:])} "
    "FROM decisions WHERE seq BETWEEN ? AND ?")
# The same for those of them whose state is not inserted yet (SQLite, PostgreSQL).
_REMAINING_INITIAL_STATES = (_INITIAL_STATES.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1),
                             f"{_INITIAL_STATES} ON CONFLICT (decision_seq) DO NOTHING")


_state_row: Callable[[State], tuple[Any, ...]] = attrgetter(*_STATE_COLUMNS)
# The UPDATE's parameters: every state column but the key, then the key.
_update_row: Callable[[State], tuple[Any, ...]] = attrgetter(
    *(c for c in _STATE_COLUMNS if c != "decision_seq"), "decision_seq")
