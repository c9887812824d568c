"""The exporter's SQL: cumulative event counts and the primary-review latency histogram.

Audit events are append-only and numbered by the store-wide hash chain
(`seq`), so the counters are read incrementally: each refresh counts only the
events with seq in (the previous head, the current head], grouped by their
labels, and the caller adds them to its running totals. A refresh therefore
costs O(new events), not O(history). The event at the previous head is
checked by hash first: if it is gone or different (the store was replaced or
rebuilt) the caller starts again from zero.

SQLAlchemy Core, identical on SQLite and PostgreSQL; every count, sum and
bucket is computed in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, case, func, literal, select, union_all

from collectors.store.models import ChainHead, Change, Decision, Outcome, Review

_D = Decision.__table__
_R = Review.__table__
_O = Outcome.__table__
_C = Change.__table__


class StoreUnavailable(RuntimeError):
    """The store cannot be read (for a message; database errors themselves are SQLAlchemyError)."""


@dataclass(frozen=True)
class LatencyRow:
    """Primary reviews of one risk class: count, summed latency (us) and count at or under each bound."""

    risk_class: str
    count: int
    sum_us: int
    le_counts: tuple[int, ...]


@dataclass(frozen=True)
class CounterDelta:
    """Counts of the events with seq in (since, head], grouped by the exporter's counter labels.

    `restart` is true when the event at `since` no longer matches `since_hash`:
    the counts then cover the whole store (since = 0), not an increment.
    """

    head: int
    head_hash: str | None
    restart: bool
    decisions: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    reviews: list[tuple[str, str, str, int]] = field(default_factory=list)
    outcomes: list[tuple[bool, str, int]] = field(default_factory=list)
    latency: list[LatencyRow] = field(default_factory=list)
    newest_us: int | None = None


def check_reachable(engine: Engine) -> None:
    """Raise StoreUnavailable for a SQLite store whose file is gone (connecting would create an empty one)."""
    if engine.dialect.name != "sqlite":
        return
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
        raise StoreUnavailable(f"SQLite store {database} does not exist")


def read_counter_delta(engine: Engine, since: int, since_hash: str | None,
                       bounds_us: Sequence[int]) -> CounterDelta:
    """The counter increments since chain position `since` (0: everything), read in one snapshot."""
    with engine.connect() as conn:
        _snapshot(conn)
        head_row = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).first()
        head, head_hash = (int(head_row[0]), head_row[1]) if head_row else (0, None)
        restart = since > 0 and (head < since or _hash_at(conn, since) != since_hash)
        if restart:
            since = 0
        if head == since:
            return CounterDelta(head, head_hash, restart)
        decisions, newest_d = _decisions(conn, since, head)
        reviews, newest_r = _reviews(conn, since, head)
        outcomes, newest_o = _outcomes(conn, since, head)
        latency = _latency(conn, since, head, bounds_us)
    known = [t for t in (newest_d, newest_r, newest_o) if t is not None]
    return CounterDelta(head, head_hash, restart, decisions, reviews, outcomes, latency,
                        max(known) if known else None)


def _snapshot(conn: Connection) -> None:
    """Read every query from one snapshot of the store, even while ingest writes."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")


def _hash_at(conn: Connection, seq: int) -> str | None:
    parts = [select(t.c.hash).where(t.c.seq == seq) for t in (_D, _R, _O, _C)]
    return conn.execute(union_all(*parts)).scalar()


def _decisions(conn: Connection, since: int, head: int) -> tuple[list[tuple[str, str, str, str, int]], int | None]:
    labels = (_D.c.risk_class, _D.c.route, _D.c.model_version, _D.c.action_type)
    rows = conn.execute(
        select(*labels, func.count(), func.max(_D.c.proposed_at))
        .where(_D.c.seq > since, _D.c.seq <= head).group_by(*labels)).all()
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows], _max(r[5] for r in rows)


def _reviews(conn: Connection, since: int, head: int) -> tuple[list[tuple[str, str, str, int]], int | None]:
    labels = (_R.c.kind, _R.c.verdict, _D.c.risk_class)
    rows = conn.execute(
        select(*labels, func.count(), func.max(_R.c.decided_at))
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(_R.c.seq > since, _R.c.seq <= head).group_by(*labels)).all()
    return [(r[0], r[1], r[2], int(r[3])) for r in rows], _max(r[4] for r in rows)


def _outcomes(conn: Connection, since: int, head: int) -> tuple[list[tuple[bool, str, int]], int | None]:
    labels = (_O.c.agent_correct, _D.c.model_version)
    rows = conn.execute(
        select(*labels, func.count(), func.max(_O.c.observed_at))
        .select_from(_O.join(_D, _D.c.id == _O.c.decision_id))
        .where(_O.c.seq > since, _O.c.seq <= head).group_by(*labels)).all()
    return [(bool(r[0]), r[1], int(r[2])) for r in rows], _max(r[3] for r in rows)


def _latency(conn: Connection, since: int, head: int, bounds_us: Sequence[int]) -> list[LatencyRow]:
    latency = _R.c.decided_at - _R.c.enqueued_at
    buckets = [func.sum(case((latency <= literal(int(b)), 1), else_=0)) for b in bounds_us]
    rows = conn.execute(
        select(_D.c.risk_class, func.count(), func.sum(latency), *buckets)
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(and_(_R.c.seq > since, _R.c.seq <= head, _R.c.kind == "primary"))
        .group_by(_D.c.risk_class)).all()
    return [LatencyRow(r[0], int(r[1]), int(r[2] or 0), tuple(int(v or 0) for v in r[3:])) for r in rows]


def _max(values: object) -> int | None:
    known = [int(v) for v in values if v is not None]  # type: ignore[attr-defined]
    return max(known) if known else None
