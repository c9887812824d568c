"""The engine's reads of the rollups (`collectors.store.rollup`): a window's statistics from its hours.

A report's decision statistics over whole hours are the sum of the hours'
`kpi_rollup` rows: O(hours x slices), whatever the number of decisions.
Agreement comes from `agreement_rollup` the same way. What is not additive
is read raw, restricted to the window and driven by an index: the oldest
pending proposed_at (a minimum: through the partial index of pending
decision states) here, latencies in `collectors.engine.query`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from collectors.engine.aggregates import SliceStats
from collectors.kpis.agreement import Coincidences
from collectors.kpis.calibration import CalibrationBins
from collectors.kpis.cost import CostSums
from collectors.kpis.overrides import OverrideSums
from collectors.kpis.rates import VerdictCounts
from collectors.store.models import (
    AGREEMENT_VERDICTS,
    ROLLUP_BINS,
    ROLLUP_FLOAT_COLUMNS,
    ROLLUP_INT_COLUMNS,
    AgreementRollup,
    KpiRollup,
    RollupSlice,
)

Key = tuple[str | None, ...]
HOUR_US = 3_600_000_000
_SLICE_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")

_K = KpiRollup.__table__
_A = AgreementRollup.__table__
_SL = RollupSlice.__table__


def _slices(conn: Connection) -> dict[int, dict[str, str | None]]:
    return {row[0]: dict(zip(_SLICE_FIELDS, row[1:])) for row in conn.execute(
        select(_SL.c.id, *(_SL.c[name] for name in _SLICE_FIELDS)))}


def decision_stats(conn: Connection, start_hour: int, end_hour: int, by: Sequence[str]) -> dict[Key, SliceStats]:
    """Statistics of the decisions proposed in hours [start_hour, end_hour), per slice key.

    `by` holds plain slice fields only. The oldest pending instant is left None
    (see `oldest_pending`); everything else equals `query.decision_groups` merged.
    The database sums per slice id (integers, no join); slices map to keys here.
    """
    sums = [func.sum(_K.c[name]) for name in ROLLUP_INT_COLUMNS + ROLLUP_FLOAT_COLUMNS]
    query = (select(_K.c.slice_id, *sums)
             .where(_K.c.hour >= start_hour, _K.c.hour < end_hour)
             .group_by(_K.c.slice_id))
    rows = conn.execute(query).fetchall()
    slices = _slices(conn) if rows else {}
    n_int = len(ROLLUP_INT_COLUMNS)
    stats: dict[Key, SliceStats] = {}
    for row in rows:
        fields = slices[row[0]]
        part = _slice_stats(fields["queue"], [int(v) for v in row[1:1 + n_int]],
                            [float(v) for v in row[1 + n_int:]])
        key = tuple(fields[name] for name in by)
        held = stats.get(key)
        stats[key] = part if held is None else held.merge(part)
    return stats


def _slice_stats(queue: str | None, ints: list[int], floats: list[float]) -> SliceStats:
    (decisions, resolved, intervened, auto, pending, overrides, agent_wrong, final_wrong,
     harmful) = ints[:9]
    b = ROLLUP_BINS
    pop, count, correct = tuple(ints[9:9 + b]), tuple(ints[9 + b:9 + 2 * b]), tuple(ints[9 + 2 * b:9 + 3 * b])
    conf, sqerr = tuple(floats[:b]), tuple(floats[b:2 * b])
    agent_cost, error_cost, model_cost, review_cost, review_seconds = floats[2 * b:]
    return SliceStats(
        verdicts=VerdictCounts(decisions, resolved, intervened, auto, pending, None),
        calibration=CalibrationBins(count, conf, correct, sqerr),
        population=pop,
        overrides=OverrideSums(overrides, agent_wrong, final_wrong, harmful, agent_cost, error_cost),
        costs=CostSums(decisions, review_cost, {queue: review_seconds}, model_cost),
    )


def agreement_stats(conn: Connection, start_hour: int, end_hour: int,
                    by: Sequence[str]) -> dict[Key, Coincidences]:
    """Coincidence statistics of the agreement units of the decisions proposed in the hours, per key."""
    columns = ("units", "matches", *AGREEMENT_VERDICTS)
    query = (select(_A.c.slice_id, _A.c.unit_size, *(func.sum(_A.c[c]) for c in columns))
             .where(_A.c.hour >= start_hour, _A.c.hour < end_hour)
             .group_by(_A.c.slice_id, _A.c.unit_size))
    rows = conn.execute(query).fetchall()
    slices = _slices(conn) if rows else {}
    out: dict[Key, Coincidences] = {}
    for row in rows:
        size, units, matches, *values = (int(v) for v in row[1:])
        if units == 0:
            continue
        part = Coincidences(Counter({v: c for v, c in zip(AGREEMENT_VERDICTS, values) if c}),
                            Counter({size: matches}), units)
        fields = slices[row[0]]
        key = tuple(fields[name] for name in by)
        out[key] = part if key not in out else out[key].merge(part)
    return out


def oldest_pending(conn: Connection, start_us: int, end_us: int, by: Sequence[str]) -> dict[Key, int]:
    """The oldest proposed_at of the window's pending decisions, per slice key (plain fields only).

    Driven by the partial index of pending states: SQLite's CROSS JOIN keeps that order (its
    planner would otherwise scan the window's decisions by proposed_at), PostgreSQL plans freely.
    """
    for name in by:
        if name not in _SLICE_FIELDS:
            raise ValueError(f"not a plain slice field: {name!r}")
    keys = "".join(f"d.{name}, " for name in by)
    group = f" GROUP BY {', '.join(f'd.{name}' for name in by)}" if by else ""
    join = "CROSS JOIN" if conn.dialect.name == "sqlite" else ","
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"SELECT {keys}min(d.proposed_at) FROM decision_state s {join} decisions d "
           f"WHERE d.seq = s.decision_seq AND s.final_verdict = 'pending' "
           f"AND d.proposed_at >= {mark} AND d.proposed_at < {mark}{group}")
    n = len(by)
    rows = conn.exec_driver_sql(sql, (start_us, end_us)).fetchall()
    return {tuple(row[:n]): int(row[n]) for row in rows if row[n] is not None}


def aligned_part(start_us: int, end_us: int) -> tuple[int, int] | None:
    """The whole hours [h0, h1) inside [start, end), or None when there is none."""
    first = -(-start_us // HOUR_US)
    last = end_us // HOUR_US
    return (first, last) if first < last else None


def edges(start_us: int, end_us: int) -> list[tuple[int, int]]:
    """The parts of [start, end) outside its whole hours (empty ranges left out)."""
    part = aligned_part(start_us, end_us)
    if part is None:
        return [(start_us, end_us)]
    ranges = [(start_us, part[0] * HOUR_US), (part[1] * HOUR_US, end_us)]
    return [(a, b) for a, b in ranges if a < b]
