"""Per-hour, per-slice rollups of the KPI statistics, kept current by the writer.

Every decision contributes a vector of additive statistics to the rollup row
of (hour of its proposed_at, its slice): counts by final verdict, confidence
bin counts and sums, override counts and sums, cost sums: exactly what
`collectors.engine.query.decision_groups` sums over a window, with the same
defaults. The vector is a function of the decision's attributes (which never
change) and its `decision_state` (which changes as reviews and outcomes
arrive). So when a batch changes a decision's state, the writer subtracts the
old vector and adds the new one (`record_batch`), for the touched decisions
only, grouped by rollup row and applied with one UPSERT per table. A window's
statistics are then the sum of its hours' rows, whatever the store's size.

Agreement (Krippendorff's alpha) is additive over units (decisions with >= 2
distinct reviewers): a unit of size m contributes its values per verdict, its
matches sum_c n_uc (n_uc - 1) and 1 unit to the row (hour, slice, m). Those
are integers, so the alpha from rollups is exact.

Counts are integers and exact. Sums of floats (confidence, squared error,
costs) are doubles: adding and subtracting in another order than a cold SQL
sum changes the last bits, so rollup and cold results agree to a relative
~1e-12, not bit for bit (tests/test_rollups.py says so). Subtracting a term
far larger than what replaces it would leave a residue as large as the rest
of the row (a superseding outcome: squared error ~1 -> 1e-12), so a row that
loses such a term is recounted from the events (`CANCELLING_RATIO`).

`rebuild_rollups` recomputes everything from the events (for a store loaded
before the rollups existed, or after a repair).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, Engine, text

from collectors.store.bulk import execute, staged
from collectors.store.derive import same_as_derived
from collectors.store.lookup import select_in
from collectors.store.models import (
    AGREEMENT_VERDICTS,
    ROLLUP_BINS,
    ROLLUP_COUNTS,
    ROLLUP_FLOAT_COLUMNS,
    ROLLUP_INT_COLUMNS,
)
from collectors.store.state import State

HOUR_US = 3_600_000_000
SLICE_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")
_VERDICT_CODE = {"pending": 0, "auto": 1, "approve": 2, "edit": 3, "reject": 4}
_N_COUNTS = len(ROLLUP_COUNTS)
_SLICE_BITS = 24  # slice ids below 2**24; hour * 2**24 + slice id is the row's sort key
# SQLite (>= 3.32) takes up to 32766 parameters per statement; fewer, longer IN lists are cheaper.
_AGREEMENT_COLUMNS = ("units", "matches", *AGREEMENT_VERDICTS)


def hour_of(micros: int) -> int:
    """The rollup hour of an instant: floor(epoch microseconds / 3600e6)."""
    return micros // HOUR_US


# ---- the contribution of a decision --------------------------------------------------------------

DECISION_ATTRS = ("seq", "id", "proposed_at", *SLICE_FIELDS, "conf_bin", "confidence", "model_cost")
# Decision attributes behind its rollup contribution: (seq, id, proposed_at, *SLICE_FIELDS, conf_bin, confidence, model_cost)
Attrs = tuple[Any, ...]
_STATE_ATTRS = ("final_verdict", "outcome_seq", "agent_correct", "final_correct", "error_cost",
                "agent_error_cost", "review_cost_sum", "review_seconds_sum")


def contributions(attrs: Sequence[Attrs], states: Sequence[State], sign: int,
                  slice_ids: Mapping[tuple[Any, ...], int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row key, integer columns, float columns) of each decision in its state, times sign (+1 or -1).

    attrs[i] are the `DECISION_ATTRS` of the decision whose state is states[i]. Column-wise, as
    query.decision_groups counts and sums a window's decisions, with the same defaults.
    """
    n = len(attrs)
    if n == 0:
        return (np.empty(0, dtype=np.int64), np.empty((0, len(ROLLUP_INT_COLUMNS)), dtype=np.int64),
                np.empty((0, len(ROLLUP_FLOAT_COLUMNS))))
    (_seq, _id, proposed_at, risk, queue, model, agent, action, route, conf_bin, confidence,
     model_cost) = zip(*attrs)
    hour = np.asarray(proposed_at, dtype=np.int64) // HOUR_US
    sid = np.fromiter((slice_ids[k] for k in zip(risk, queue, model, agent, action, route)),
                      dtype=np.int64, count=n)
    key = (hour << _SLICE_BITS) | sid
    b = np.asarray(conf_bin, dtype=np.int64)
    conf = np.asarray(confidence, dtype=np.float64)
    codes = _VERDICT_CODE
    verdict = np.fromiter([codes[s.final_verdict] for s in states], dtype=np.int8, count=n)
    has = np.fromiter([s.outcome_seq is not None for s in states], dtype=bool, count=n)
    # None (no outcome) reads as False; the flags only count together with `has`.
    agent_ok = np.asarray([s.agent_correct for s in states], dtype=bool) & has
    final_ok = np.asarray([s.final_correct for s in states], dtype=bool) & has
    intervened = verdict >= 3
    override = has & intervened
    rows = np.arange(n)

    ints = np.zeros((n, len(ROLLUP_INT_COLUMNS)), dtype=np.int64)
    ints[:, 0] = 1
    ints[:, 1] = verdict != 0
    ints[:, 2] = intervened
    ints[:, 3] = verdict == 1
    ints[:, 4] = verdict == 0
    ints[:, 5] = override
    ints[:, 6] = override & ~agent_ok
    ints[:, 7] = override & ~final_ok
    ints[:, 8] = override & agent_ok & ~final_ok
    ints[rows, _N_COUNTS + b] = 1
    ints[rows, _N_COUNTS + ROLLUP_BINS + b] = has
    ints[rows, _N_COUNTS + 2 * ROLLUP_BINS + b] = agent_ok

    floats = np.zeros((n, len(ROLLUP_FLOAT_COLUMNS)), dtype=np.float64)
    error = conf - agent_ok.astype(np.float64)
    # As in query.py: squares of |error| < 1e-150 count as 0 (PostgreSQL raises on the underflow).
    squared = np.where(np.abs(error) < 1e-150, 0.0, error * error)
    floats[rows, b] = np.where(has, conf, 0.0)
    floats[rows, ROLLUP_BINS + b] = np.where(has, squared, 0.0)
    # An override's final verdict is edit or reject, so a missing agent_error_cost counts as 0 there.
    floats[:, 20] = np.where(override, _floats([s.agent_error_cost for s in states]), 0.0)
    floats[:, 21] = np.where(override, _floats([s.error_cost for s in states]), 0.0)
    floats[:, 22] = _floats(model_cost)
    floats[:, 23] = np.asarray([s.review_cost_sum for s in states], dtype=np.float64)
    floats[:, 24] = np.asarray([s.review_seconds_sum for s in states], dtype=np.float64)
    if sign == 1:
        return key, ints, floats
    return key, ints * sign, floats * sign


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """Values as doubles, None as 0."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)


def group(key: np.ndarray, ints: np.ndarray, floats: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the rows sharing a key (keys sorted); rows that sum to all zeros are dropped."""
    if key.size == 0:
        return key, ints, floats
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ints = np.add.reduceat(ints[order], starts, axis=0)
    floats = np.add.reduceat(floats[order], starts, axis=0)
    key = key[starts]
    keep = ints.any(axis=1) | floats.any(axis=1)
    return key[keep], ints[keep], floats[keep]


# ---- agreement units -----------------------------------------------------------------------------

# (decision id, reviewer id, decided_at, review id, verdict)
VoteRow = tuple[str, str, int, str, str]


def unit_of(votes: Iterable[VoteRow]) -> tuple[int, int, Counter[str]] | None:
    """(size m, matches, values per verdict) of a decision's agreement unit, None below 2 reviewers."""
    latest: dict[str, tuple[int, str, str]] = {}
    for _d, reviewer, decided_at, review_id, verdict in votes:
        held = latest.get(reviewer)
        if held is None or (decided_at, review_id) > held[:2]:
            latest[reviewer] = (decided_at, review_id, verdict)
    if len(latest) < 2:
        return None
    values = Counter(v for _t, _i, v in latest.values())
    return len(latest), sum(k * (k - 1) for k in values.values()), values


def _add_unit(acc: dict[tuple[int, int, int], list[int]], hour: int, slice_id: int,
              unit: tuple[int, int, Counter[str]] | None, sign: int) -> None:
    if unit is None:
        return
    m, matches, values = unit
    row = acc.setdefault((hour, slice_id, m), [0] * len(_AGREEMENT_COLUMNS))
    row[0] += sign
    row[1] += sign * matches
    for i, verdict in enumerate(AGREEMENT_VERDICTS, start=2):
        row[i] += sign * values.get(verdict, 0)


# ---- writing -------------------------------------------------------------------------------------

def slice_key(values: Sequence[Any]) -> str:
    """The unique key of a slice: SHA-256 (hex) of the JSON array of its six values (migration 0006).

    A digest, not the array itself: PostgreSQL cannot index a value of more than ~2700 bytes.
    """
    return hashlib.sha256(orjson.dumps(list(values))).hexdigest()


def slice_ids(conn: Connection, keys: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
    """Id of every slice (six field values), creating the missing ones (callers hold the write lock)."""
    known = {tuple(row[1:]): row[0] for row in conn.exec_driver_sql(
        f"SELECT id, {', '.join(SLICE_FIELDS)} FROM rollup_slices")}
    missing = sorted({k for k in keys if k not in known}, key=lambda k: tuple((v is None, v or "") for v in k))
    if missing:
        next_id = max(known.values(), default=0) + 1
        rows = []
        for i, k in enumerate(missing):
            known[k] = next_id + i
            rows.append((next_id + i, slice_key(k), *k))
        if next_id + len(missing) >= 1 << _SLICE_BITS:
            raise OverflowError("more than 16M distinct slices")
        execute(conn, f"INSERT INTO rollup_slices (id, key, {', '.join(SLICE_FIELDS)}) "
                       f"VALUES ({', '.join(['?'] * 8)})", rows)
    return known


def _upsert(conn: Connection, table: str, keys: Sequence[str], columns: Sequence[str],
            rows: list[tuple[Any, ...]]) -> int:
    """Add `rows` (key values then column values) to `table`, inserting missing rows: one statement."""
    if not rows:
        return 0
    names = ", ".join([*keys, *columns])
    conflict = (f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns))
    if conn.dialect.name == "postgresql":
        # executemany costs a round trip per row; COPY into a session's temporary table and one
        # INSERT ... SELECT ... ON CONFLICT is one statement whatever the number of rows.
        with staged(conn, table, [*keys, *columns], rows) as staging:
            conn.exec_driver_sql(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}")
        return len(rows)
    execute(conn, f"INSERT INTO {table} ({names}) VALUES ({', '.join(['?'] * (len(keys) + len(columns)))}) "
                  + conflict, rows)
    return len(rows)


def _kpi_rows(key: np.ndarray, ints: np.ndarray, floats: np.ndarray) -> list[tuple[Any, ...]]:
    hours = (key >> _SLICE_BITS).tolist()
    sids = (key & ((1 << _SLICE_BITS) - 1)).tolist()
    return [(h, s, *i, *f) for h, s, i, f in zip(hours, sids, ints.tolist(), floats.tolist())]


def _write_rows(conn: Connection, grouped: tuple[np.ndarray, np.ndarray, np.ndarray],
                agreement: dict[tuple[int, int, int], list[int]] | None) -> int:
    """Add grouped kpi rows (`group`'s output) and agreement rows to the rollup tables; rows written."""
    written = _upsert(conn, "kpi_rollup", ("hour", "slice_id"), ROLLUP_INT_COLUMNS + ROLLUP_FLOAT_COLUMNS,
                      _kpi_rows(*grouped))
    if agreement:
        rows = [(*k, *v) for k, v in sorted(agreement.items()) if any(v)]
        written += _upsert(conn, "agreement_rollup", ("hour", "slice_id", "unit_size"), _AGREEMENT_COLUMNS, rows)
    return written




def initial_contributions(attrs: Sequence[Attrs], slice_ids: Mapping[tuple[Any, ...], int]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`contributions` of decisions in their initial state (no review, no outcome), summed per row key.

    The bulk of a load: every new decision is counted here once, column-wise, instead of as an entry.
    Only four statistics are non-zero: decisions, auto (= resolved) or pending, the confidence bin's
    population and model cost (tests/test_rollups.py checks this against `contributions`).
    """
    if not attrs:
        return (np.empty(0, dtype=np.int64), np.empty((0, len(ROLLUP_INT_COLUMNS)), dtype=np.int64),
                np.empty((0, len(ROLLUP_FLOAT_COLUMNS))))
    n = len(attrs)
    columns = list(zip(*attrs))
    hour = np.asarray(columns[2], dtype=np.int64) // HOUR_US
    sid = np.fromiter((slice_ids[k] for k in zip(*columns[3:9])), dtype=np.int64, count=n)
    unique, row_of = np.unique((hour << _SLICE_BITS) | sid, return_inverse=True)
    groups = len(unique)
    auto = np.fromiter((route == "auto" for route in columns[8]), dtype=bool, count=n)
    counted = np.bincount(row_of, minlength=groups)
    resolved = np.bincount(row_of, weights=auto, minlength=groups).astype(np.int64)
    ints = np.zeros((groups, len(ROLLUP_INT_COLUMNS)), dtype=np.int64)
    ints[:, 0] = counted
    ints[:, 1] = resolved
    ints[:, 3] = resolved
    ints[:, 4] = counted - resolved
    conf_bin = np.asarray(columns[9], dtype=np.int64)
    np.add.at(ints, (row_of, _N_COUNTS + conf_bin), 1)
    floats = np.zeros((groups, len(ROLLUP_FLOAT_COLUMNS)), dtype=np.float64)
    floats[:, 22] = np.bincount(row_of, weights=_floats(columns[11]), minlength=groups)
    return unique, ints, floats


def record_batch(conn: Connection, initial: Sequence[Attrs], changed: Mapping[str, tuple[Attrs, State | None, State]],
                 reviews: Sequence[Sequence[Any]], review_columns: Sequence[str]) -> int:
    """Bring the rollups up to date with a batch the writer just stored; returns rollup rows written.

    initial: attributes of the batch's new decisions that stay in their initial state;
    changed: decision id -> (attributes, state before the batch or None for a decision new in it,
    state now) of every decision whose state the batch changed; reviews: the batch's review rows.
    """
    ids = slice_ids(conn, [*(values[3:9] for values in initial), *(c[0][3:9] for c in changed.values())])
    attrs = {decision_id: c[0] for decision_id, c in changed.items()}
    before = {decision_id: c[1] for decision_id, c in changed.items() if c[1] is not None}
    agreement = _agreement_delta(conn, reviews, review_columns, attrs, before, ids)
    fresh = [(values, now) for values, old, now in changed.values() if old is None]
    was = [(values, old, now) for values, old, now in changed.values() if old is not None]
    parts = [contributions([values for values, _now in fresh], [now for _values, now in fresh], 1, ids),
             initial_contributions(initial, ids)]
    cancelling: np.ndarray = np.empty(0, dtype=np.int64)
    if was:  # the stored decisions' contributions before the batch come off, their new ones go on
        now_key, now_ints, now_floats = contributions([values for values, _old, _now in was],
                                                      [now for _values, _old, now in was], 1, ids)
        old_key, old_ints, old_floats = contributions([values for values, _old, _now in was],
                                                      [old for _values, old, _now in was], 1, ids)
        parts += [(now_key, now_ints, now_floats), (old_key, -old_ints, -old_floats)]
        cancelling = np.unique(now_key[(old_floats > CANCELLING_RATIO * now_floats).any(axis=1)])
    merged = group(*(np.concatenate(columns) for columns in zip(*parts, strict=True)))
    written = _write_rows(conn, merged, agreement)
    if cancelling.size:
        _recount_rows(conn, cancelling)
    return written


# A sum of doubles that loses a contribution this many times larger than what replaces it (a superseding
# outcome turning a squared error of ~1 into ~1e-12, an escalation undoing an override) keeps a rounding
# residue of the old term as large as the terms left: such rows are recounted from the events instead.
# Below the ratio, the residue stays under ~1e-13 of the row's value.
CANCELLING_RATIO = 1_000.0


def _recount_rows(conn: Connection, keys: np.ndarray) -> None:
    """Recompute kpi_rollup rows (by row key) from the events, as `rebuild_rollups` does: exact sums."""
    for key in keys.tolist():
        hour, slice_id = key >> _SLICE_BITS, key & ((1 << _SLICE_BITS) - 1)
        params = {"lo": hour * HOUR_US, "hi": (hour + 1) * HOUR_US, "slice_id": slice_id}
        conn.execute(text("DELETE FROM kpi_rollup WHERE hour = :hour AND slice_id = :slice_id"),
                     {"hour": hour, "slice_id": slice_id})
        conn.execute(text(_KPI_RECOUNT), params)


def _agreement_delta(conn: Connection, reviews: Sequence[Sequence[Any]], rcols: Sequence[str],
                     attrs: Mapping[str, tuple[Any, ...]], before: Mapping[str, State],
                     ids: Mapping[tuple[Any, ...], int]) -> dict[tuple[int, int, int], list[int]]:
    """Agreement rows to add for the decisions whose reviews this batch brings (new unit - old unit)."""
    if not reviews:
        return {}
    vote_of = itemgetter(*(rcols.index(c) for c in ("decision_id", "reviewer_id", "decided_at", "id", "verdict", "seq")))
    new_seqs: set[int] = set()
    votes: dict[str, list[tuple[Any, ...]]] = {}
    for row in reviews:
        vote = vote_of(row)
        new_seqs.add(vote[5])
        votes.setdefault(vote[0], []).append(vote)
    stored = [d for d in votes if d in before]  # decisions stored before this batch may have reviews
    if stored:
        for vote in select_in(conn, "SELECT decision_id, reviewer_id, decided_at, id, verdict, seq FROM reviews",
                               "decision_id", stored):
            if vote[5] not in new_seqs:
                votes[vote[0]].append(tuple(vote))
    acc: dict[tuple[int, int, int], list[int]] = {}
    for decision_id, rows in votes.items():
        if len(rows) < 2:
            continue
        values = attrs[decision_id]
        hour, sid = hour_of(values[2]), ids[tuple(values[3:9])]
        old = [r[:5] for r in rows if r[5] not in new_seqs]
        _add_unit(acc, hour, sid, unit_of(old) if len(old) >= 2 else None, -1)
        _add_unit(acc, hour, sid, unit_of(r[:5] for r in rows), 1)
    return acc


# ---- rebuild -------------------------------------------------------------------------------------

def rollups_valid(conn: Connection) -> bool:
    """True when the rollups describe every stored event (see `hitl-tower rebuild-rollups`)."""
    return bool(conn.exec_driver_sql("SELECT valid FROM rollup_meta WHERE id = 1").scalar())


def set_valid(conn: Connection, valid: bool) -> None:
    """Mark the rollups as describing every stored event (or not)."""
    execute(conn, "UPDATE rollup_meta SET valid = ? WHERE id = 1", (valid,))


def rebuild_rollups(engine: Engine) -> int:
    """Recompute every rollup row from the events and decision_state; returns the decisions counted.

    Holds the chain's write lock (no batch lands meanwhile). Set-wise in SQL: one GROUP BY per
    rollup table, the same statistics as `contributions` and `unit_of` (tests/test_rollups.py
    checks them against the rows the writer keeps), and no row of the store crosses into Python,
    so memory stays flat whatever the store's size.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE chain_head SET seq = seq WHERE id = 1")
        for table in ("kpi_rollup", "agreement_rollup", "rollup_slices"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
        keys = conn.exec_driver_sql(f"SELECT DISTINCT {', '.join(SLICE_FIELDS)} FROM decisions").fetchall()
        slice_ids(conn, [tuple(k) for k in keys])
        postgres = conn.dialect.name == "postgresql"
        # text(): the dialect escapes the modulo signs for psycopg's placeholders.
        conn.execute(text(_KPI_REBUILD))
        conn.execute(text(_agreement_rebuild(postgres)))
        count = int(conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar_one())
        set_valid(conn, True)
        return count


def _hour_sql(micros: str) -> str:
    """`hour_of` in SQL: floor division, also before 1970 (both engines' / and % truncate toward 0)."""
    return f"(({micros} - (({micros} % {HOUR_US}) + {HOUR_US}) % {HOUR_US}) / {HOUR_US})"


# Joins a row carrying the six slice fields (alias g) to its rollup_slices id; queue alone may be NULL.
_SLICE_JOIN = (" AND ".join(f"l.{f} = g.{f}" for f in SLICE_FIELDS if f != "queue")
               + " AND (l.queue = g.queue OR (l.queue IS NULL AND g.queue IS NULL))")


def _kpi_rebuild_sql(where: str = "") -> str:
    """Every kpi_rollup row's values by (hour, six slice fields): `contributions` summed in one GROUP BY
    (of the decisions `where`, an SQL condition on `d`, says)."""
    has = "s.outcome_seq IS NOT NULL"
    agent_ok = f"({has} AND s.agent_correct)"
    intervened = "s.final_verdict IN ('edit', 'reject')"
    override = f"({has} AND {intervened})"

    def count_if(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def sum_if(condition: str, value: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN {value} ELSE 0.0 END)"

    error = f"(d.confidence - CASE WHEN {agent_ok} THEN 1.0 ELSE 0.0 END)"
    squared = f"CASE WHEN abs({error}) < 1e-150 THEN 0.0 ELSE {error} * {error} END"  # as in contributions
    counts = ["COUNT(*)", count_if("s.final_verdict <> 'pending'"), count_if(intervened),
              count_if("s.final_verdict = 'auto'"), count_if("s.final_verdict = 'pending'"), count_if(override),
              count_if(f"{override} AND NOT s.agent_correct"), count_if(f"{override} AND NOT s.final_correct"),
              count_if(f"{override} AND s.agent_correct AND NOT s.final_correct")]
    bins = range(ROLLUP_BINS)
    ints = counts + [count_if(f"d.conf_bin = {b}") for b in bins]
    ints += [count_if(f"{has} AND d.conf_bin = {b}") for b in bins]
    ints += [count_if(f"{agent_ok} AND d.conf_bin = {b}") for b in bins]
    floats = [sum_if(f"{has} AND d.conf_bin = {b}", "d.confidence") for b in bins]
    floats += [sum_if(f"{has} AND d.conf_bin = {b}", squared) for b in bins]
    floats += [sum_if(override, "COALESCE(s.agent_error_cost, 0.0)"), sum_if(override, "COALESCE(s.error_cost, 0.0)"),
               "SUM(COALESCE(d.model_cost, 0.0))", "SUM(s.review_cost_sum)", "SUM(s.review_seconds_sum)"]
    columns = (*ROLLUP_INT_COLUMNS, *ROLLUP_FLOAT_COLUMNS)
    assert len(ints) + len(floats) == len(columns)
    return (f"SELECT {_hour_sql('d.proposed_at')} AS hour, {', '.join(f'd.{f}' for f in SLICE_FIELDS)}, "
            + ", ".join(f"{e} AS {c}" for e, c in zip(ints + floats, columns, strict=True))
            + " FROM decisions d JOIN decision_state s ON s.decision_seq = d.seq "
            + (f"WHERE {where} " if where else "")
            + f"GROUP BY 1, {', '.join(f'd.{f}' for f in SLICE_FIELDS)}")


_KPI_COLUMNS = (*ROLLUP_INT_COLUMNS, *ROLLUP_FLOAT_COLUMNS)
# Every kpi_rollup row as the events say it should be, by (hour, six slice fields).
_KPI_EXPECTED = _kpi_rebuild_sql()
_KPI_REBUILD = (f"INSERT INTO kpi_rollup (hour, slice_id, {', '.join(_KPI_COLUMNS)}) "
                f"SELECT g.hour, l.id, {', '.join(f'g.{c}' for c in _KPI_COLUMNS)} "
                f"FROM ({_KPI_EXPECTED}) g JOIN rollup_slices l ON {_SLICE_JOIN}")
# One row's worth (:lo, :hi the hour's bounds in microseconds, :slice_id its slice), for `_recount_rows`.
_KPI_RECOUNT = (f"INSERT INTO kpi_rollup (hour, slice_id, {', '.join(_KPI_COLUMNS)}) "
                f"SELECT g.hour, l.id, {', '.join(f'g.{c}' for c in _KPI_COLUMNS)} "
                f"FROM ({_kpi_rebuild_sql('d.proposed_at >= :lo AND d.proposed_at < :hi')}) g "
                f"JOIN rollup_slices l ON {_SLICE_JOIN} WHERE l.id = :slice_id")


def _agreement_units(postgres: bool) -> str:
    """The WITH clauses behind the agreement rollup: each decision's unit (`unit_of`) with its hour and slice.

    A reviewer's vote is their latest review by (decided_at, review id), ids compared by code
    point as in Python (byte order of UTF-8: SQLite's BINARY, PostgreSQL's "C" collation).
    """
    by_code_point = ' COLLATE "C"' if postgres else ""
    per_verdict = ", ".join(f"SUM(CASE WHEN verdict = '{v}' THEN n ELSE 0 END) AS {v}" for v in AGREEMENT_VERDICTS)
    return (
        "WITH multi AS (SELECT decision_id FROM reviews GROUP BY decision_id HAVING COUNT(DISTINCT reviewer_id) >= 2), "
        "ranked AS (SELECT r.decision_id, r.verdict, ROW_NUMBER() OVER (PARTITION BY r.decision_id, r.reviewer_id "
        f"ORDER BY r.decided_at DESC, r.id{by_code_point} DESC) AS rank "
        "FROM reviews r JOIN multi m ON m.decision_id = r.decision_id), "
        "votes AS (SELECT decision_id, verdict, COUNT(*) AS n FROM ranked WHERE rank = 1 GROUP BY decision_id, verdict), "
        f"units AS (SELECT decision_id, SUM(n) AS m, SUM(n * (n - 1)) AS matches, {per_verdict} "
        "FROM votes GROUP BY decision_id), "
        f"g AS (SELECT u.*, {_hour_sql('d.proposed_at')} AS hour, {', '.join(f'd.{f}' for f in SLICE_FIELDS)} "
        "FROM units u JOIN decisions d ON d.id = u.decision_id) "
    )


def _agreement_rebuild(postgres: bool) -> str:
    """INSERT of every agreement_rollup row: `unit_of` per decision, then units summed per row."""
    return (
        _agreement_units(postgres)
        + f"INSERT INTO agreement_rollup (hour, slice_id, unit_size, {', '.join(_AGREEMENT_COLUMNS)}) "
        f"SELECT g.hour, l.id, g.m, COUNT(*), SUM(g.matches), {', '.join(f'SUM(g.{v})' for v in AGREEMENT_VERDICTS)} "
        f"FROM g JOIN rollup_slices l ON {_SLICE_JOIN} GROUP BY g.hour, l.id, g.m"
    )


def _agreement_expected(postgres: bool) -> str:
    """Every agreement_rollup row as the events say, by (hour, six slice fields, unit size)."""
    fields = ", ".join(f"g.{f}" for f in SLICE_FIELDS)
    return (
        _agreement_units(postgres)
        + f"SELECT g.hour, {fields}, g.m, COUNT(*), SUM(g.matches), "
        f"{', '.join(f'SUM(g.{v})' for v in AGREEMENT_VERDICTS)} FROM g GROUP BY g.hour, {fields}, g.m"
    )


# ---- checking (hitl-tower verify --deep) ---------------------------------------------------------

def check_rollups(conn: Connection, limit: int = 20) -> tuple[int | None, list[str], int]:
    """Compare the stored rollups with what the events say: (rows checked, first problems, count).

    Rows checked is None when the rollups are marked invalid (reports then read the events, so
    nothing in them can mislead). The expected rows come from the rebuild's own GROUP BY, keyed by
    the slice's six field values rather than its id, so an edited `rollup_slices` row shows too.
    Counts must be equal, sums of floats equal to a relative 1e-9 (they are added in another order).
    Memory: one entry per expected rollup row (hours x slices), not per event.
    """
    if not rollups_valid(conn):
        return None, [], 0
    problems: list[str] = []
    postgres = conn.dialect.name == "postgresql"
    fields = ", ".join(f"l.{f}" for f in SLICE_FIELDS)
    checked = _compare(
        "kpi_rollup", _KPI_COLUMNS, 1,
        conn.execute(text(_KPI_EXPECTED)),
        conn.execute(text(f"SELECT k.hour, {fields}, {', '.join(f'k.{c}' for c in _KPI_COLUMNS)} "
                          "FROM kpi_rollup k LEFT JOIN rollup_slices l ON l.id = k.slice_id")),
        problems)
    checked += _compare(
        "agreement_rollup", _AGREEMENT_COLUMNS, 2,
        conn.execute(text(_agreement_expected(postgres))),
        conn.execute(text(f"SELECT a.hour, {fields}, a.unit_size, {', '.join(f'a.{c}' for c in _AGREEMENT_COLUMNS)} "
                          "FROM agreement_rollup a LEFT JOIN rollup_slices l ON l.id = a.slice_id")),
        problems)
    return checked, problems[:limit], len(problems)


def _compare(table: str, columns: Sequence[str], key_size: int, expected_rows: Iterable[Sequence[Any]],
             stored_rows: Iterable[Sequence[Any]], problems: list[str]) -> int:
    """Match stored rows to expected ones by (hour, slice fields[, unit size]); append each difference."""
    width = key_size + len(SLICE_FIELDS)
    expected = {tuple(row[:width]): tuple(row[width:]) for row in expected_rows}
    checked = 0
    for row in stored_rows:
        checked += 1
        key, values = tuple(row[:width]), tuple(row[width:])
        want = expected.pop(key, None)
        if want is None:
            if any(values):
                problems.append(f"{table} row {_row_name(key)} has no decisions behind it")
            continue
        wrong = [f"{c} is {have!r}, the events say {should!r}" for c, have, should in zip(columns, values, want)
                 if not same_as_derived(have, should)]
        if wrong:
            problems.append(f"{table} row {_row_name(key)}: {'; '.join(wrong[:3])}")
    problems += [f"{table} row {_row_name(key)} is missing" for key, values in expected.items() if any(values)]
    return checked


def _row_name(key: Sequence[Any]) -> str:
    """(hour, six fields[, unit size]) as a reader names it."""
    from collectors.validate import format_timestamp

    hour, *rest = key
    slice_values = ", ".join(f"{f}={v}" for f, v in zip(SLICE_FIELDS, rest) if v is not None)
    size = f", unit size {rest[len(SLICE_FIELDS)]}" if len(rest) > len(SLICE_FIELDS) else ""
    when = format_timestamp(int(hour) * HOUR_US) if hour is not None else "?"
    return f"({when}, {slice_values or 'no slice'}{size})"
