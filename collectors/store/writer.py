"""Append validated events to the store, one transaction per batch.

The writer is where the contract's ingest rules live: idempotency (same key
and content: duplicate; other content: conflict, original kept), unknown
decisions (handed back so the caller can retry them after the rest of its
input, then reject them), the hash chain, and the derived decision state.
A batch is all-or-nothing: a crash leaves every committed batch intact and
nothing of the one in flight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Connection, Engine, select, text

from collectors.store.chain import link_hash
from collectors.store.models import EVENT_TABLES, DecisionState
from collectors.store.rows import payload_to_row, row_to_payload
from collectors.store.state import State, apply_outcome, apply_review
from collectors.validate import ValidEvent, canonical_json

Ref = TypeVar("Ref")

_TABLE = {"decision": "decisions", "review": "reviews", "outcome": "outcomes", "change": "changes"}
_KEY_COLUMN = {"decision": "id", "review": "id", "outcome": "key", "change": "id"}
_JSON_COLUMNS = {"segment", "policy_checks", "extra", "scope", "before", "after"}
_STATE_COLUMNS = tuple(State.__dataclass_fields__)
_IN_CHUNK = 500  # ids per IN (...) list, well under every engine's parameter limit


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
    with engine.begin() as conn:
        return _write(conn, events)


def _write(conn: Connection, events: Sequence[tuple[Ref, ValidEvent]]) -> BatchResult[Ref]:
    result: BatchResult[Ref] = BatchResult()
    # Take the chain's write lock first: a row lock on PostgreSQL, the database lock on SQLite.
    conn.execute(text("UPDATE chain_head SET seq = seq WHERE id = 1"))
    head_seq, head_hash = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one()

    fresh = _drop_repeats(conn, events, result)
    known = _known_decisions(conn, fresh)
    accepted: list[tuple[Ref, ValidEvent]] = []
    for ref, ev in fresh:
        if ev.type in ("review", "outcome") and ev.payload["decision_id"] not in known:
            result.unknown_decision.append((ref, ev))
        else:
            accepted.append((ref, ev))
    if not accepted:
        return result

    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in _TABLE}
    seq, chain = head_seq, head_hash
    for _ref, ev in accepted:
        seq += 1
        chain = link_hash(chain, canonical_json(ev.payload))
        rows[ev.type].append(payload_to_row(ev.type, ev.payload, ev.key, seq, chain))
    for row in rows["decision"]:
        row["conf_bin"] = min(math.floor(10 * row["confidence"]), 9)
    for etype, table_rows in rows.items():
        _insert(conn, _TABLE[etype], table_rows)
    _update_state(conn, rows, known)
    conn.execute(text("UPDATE chain_head SET seq = :seq, hash = :hash WHERE id = 1"),
                 {"seq": seq, "hash": chain})
    result.stored = len(accepted)
    return result


def _drop_repeats(conn: Connection, events: Sequence[tuple[Ref, ValidEvent]],
                  result: BatchResult[Ref]) -> list[tuple[Ref, ValidEvent]]:
    """Keep each (type, key) once; count duplicates and reject conflicts, in the batch and the store."""
    first: dict[tuple[str, str], ValidEvent] = {}
    unique: list[tuple[Ref, ValidEvent]] = []
    for ref, ev in events:
        seen = first.get((ev.type, ev.key))
        if seen is None:
            first[(ev.type, ev.key)] = ev
            unique.append((ref, ev))
        elif seen.payload == ev.payload:
            result.duplicates += 1
        else:
            result.rejected.append((ref, _conflict(ev, "earlier in the same input")))
    stored = _stored_payloads(conn, unique)
    fresh: list[tuple[Ref, ValidEvent]] = []
    for ref, ev in unique:
        old = stored.get((ev.type, ev.key))
        if old is None:
            fresh.append((ref, ev))
        elif old == ev.payload:
            result.duplicates += 1
        else:
            result.rejected.append((ref, _conflict(ev, "already stored")))
    return fresh


def _conflict(ev: ValidEvent, where: str) -> str:
    what = f"outcome of decision {ev.payload['decision_id']}" if ev.type == "outcome" else f"{ev.type} {ev.key}"
    return f"conflict: {what} was {where} with other content (original kept)"


def _stored_payloads(conn: Connection, events: Iterable[tuple[Any, ValidEvent]]) -> dict[tuple[str, str], dict[str, Any]]:
    keys: dict[str, list[str]] = {}
    for _ref, ev in events:
        keys.setdefault(ev.type, []).append(ev.key)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for etype, wanted in keys.items():
        table = EVENT_TABLES[etype]
        key_column = table.c[_KEY_COLUMN[etype]]
        for i in range(0, len(wanted), _IN_CHUNK):
            query = select(table).where(key_column.in_(wanted[i:i + _IN_CHUNK]))
            for row in conn.execute(query).mappings():
                found[(etype, row[key_column.name])] = row_to_payload(etype, row)
    return found


def _known_decisions(conn: Connection, events: Sequence[tuple[Any, ValidEvent]]) -> dict[str, tuple[int | None, str]]:
    """Decision id -> (seq or None if new in this batch, route) for every decision the batch names."""
    known: dict[str, tuple[int | None, str]] = {
        ev.key: (None, ev.payload["route"]) for _r, ev in events if ev.type == "decision"
    }
    wanted = {ev.payload["decision_id"] for _r, ev in events if ev.type in ("review", "outcome")}
    missing = [d for d in wanted if d not in known]
    table = EVENT_TABLES["decision"]
    for i in range(0, len(missing), _IN_CHUNK):
        query = select(table.c.id, table.c.seq, table.c.route).where(table.c.id.in_(missing[i:i + _IN_CHUNK]))
        for row in conn.execute(query):
            known[row.id] = (row.seq, row.route)
    return known


def _insert(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    json_at = [i for i, c in enumerate(columns) if c in _JSON_COLUMNS]
    params = []
    for row in rows:
        values = [row[c] for c in columns]
        for i in json_at:
            if values[i] is not None:
                values[i] = orjson.dumps(values[i]).decode()
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


def _update_state(conn: Connection, rows: dict[str, list[dict[str, Any]]],
                  known: dict[str, tuple[int | None, str]]) -> None:
    """Create the state of new decisions and fold the batch's reviews and outcomes in."""
    new_states = {row["id"]: State.initial(row["seq"], row["route"]) for row in rows["decision"]}
    touched = {r["decision_id"] for r in rows["review"]} | {o["decision_id"] for o in rows["outcome"]}
    old_seqs = {known[d][0]: d for d in touched if d not in new_states}
    old_states = _load_states(conn, old_seqs)
    states = {**old_states, **new_states}
    for review in rows["review"]:
        apply_review(states[review["decision_id"]], review)
    for outcome in rows["outcome"]:
        apply_outcome(states[outcome["decision_id"]], outcome)
    _insert(conn, "decision_state", [s.as_row() for s in new_states.values()])
    if old_states:
        assignments = ", ".join(f"{c} = :{c}" for c in _STATE_COLUMNS if c != "decision_seq")
        conn.execute(text(f"UPDATE decision_state SET {assignments} WHERE decision_seq = :decision_seq"),
                     [s.as_row() for s in old_states.values()])


def _load_states(conn: Connection, seq_to_id: dict[Any, str]) -> dict[str, State]:
    states: dict[str, State] = {}
    table = DecisionState.__table__
    seqs = [s for s in seq_to_id if s is not None]
    for i in range(0, len(seqs), _IN_CHUNK):
        query = select(table).where(table.c.decision_seq.in_(seqs[i:i + _IN_CHUNK]))
        for row in conn.execute(query).mappings():
            states[seq_to_id[row["decision_seq"]]] = State(**row)
    return states
