"""Assemble the KPI report of a window: total and rows per slice (contract sections 2b, 3 and 5).

`compute_report` gathers aggregates with `collectors.engine.query` and applies
the KPI functions of `collectors.kpis`; `report_to_dict` gives the JSON
object of `hitl-tower report --format json`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from collectors.engine.aggregates import SliceStats, merge_all, stats_of_group
from collectors.kpis import agreement, calibration, cost, latency, overrides, rates
from collectors.kpis.spec import KPI_IDS
from collectors.validate import EARLIEST_US, format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from collectors.config import TowerConfig

Key = tuple[str | None, ...]
Value = float | int | None


@dataclass(frozen=True)
class ReportRow:
    """The KPIs of one slice (key values in --by order; () for the total) and their sample sizes.

    `stats` keeps the slice's aggregates for views beyond the KPIs (e.g. reliability
    diagrams: `collectors.kpis.calibration.reliability_bins(row.stats.calibration)`).
    """

    key: Key
    kpis: dict[str, Value]
    samples: dict[str, int]
    stats: SliceStats = field(default_factory=SliceStats, repr=False, compare=False)


@dataclass(frozen=True)
class Report:
    """A window's KPIs: the whole window and one row per slice, with the windows used."""

    start_us: int
    end_us: int
    by: tuple[str, ...]
    reference_start_us: int
    reference_end_us: int
    now_us: int
    total: ReportRow
    rows: tuple[ReportRow, ...]


def reference_window(start_us: int, end_us: int, reference_start_us: int | None = None,
                     reference_end_us: int | None = None) -> tuple[int, int]:
    """The reference window: as given; a missing end is `start`, a missing start is end minus the
    window's length (so by default, the window of equal length that ends where this one starts), but
    not before 0001-01-01T00:00:00Z, the earliest instant a timestamp can name (no event is older)."""
    ref_end = start_us if reference_end_us is None else reference_end_us
    ref_start = (max(ref_end - (end_us - start_us), EARLIEST_US) if reference_start_us is None
                 else reference_start_us)
    return ref_start, ref_end


def row_order(key: Key) -> tuple[tuple[bool, str], ...]:
    """Sort key of a row: each value in plain (code point) string order, nulls last."""
    return tuple((value is None, value or "") for value in key)


LatencySource = Callable[["Connection", int, int, tuple[str, ...]],
                         tuple[latency.LatencySample, dict[Key, latency.LatencySample]]]


def compute_report(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                   by: Sequence[str] = (), reference: tuple[int, int] | None = None,
                   now_us: int | None = None, *, use_rollups: bool = True,
                   latencies: LatencySource | None = None) -> Report:
    """The KPIs of [start, end) in total and per slice of `by`, against the reference window.

    `reference` defaults to the window of equal length ending at start; `now_us`
    (for pending ages) to the current time. Raises ValueError for an empty or
    inverted window or reference window, or an unknown slice field.

    With `use_rollups` (the default) the decision statistics and agreement of a
    window's whole hours come from the rollups, and its edge minutes from the
    raw tables, unless a `segment.KEY` slice is asked for or the rollups are not
    valid (store loaded before they existed): then everything is read cold, the
    reference path. `latencies` replaces the raw read of primary-review
    latencies (`collectors.engine.live` keeps them in memory between refreshes).
    """
    from collectors.engine import query

    by = tuple(by)
    if start_us >= end_us:
        raise ValueError("start must be before end")
    query.check_slice_fields(by)
    ref_start, ref_end = reference if reference is not None else reference_window(start_us, end_us)
    if ref_start > ref_end or (ref_start == ref_end and ref_start != EARLIEST_US):
        # empty only when nothing can precede the window: the default reference of a window from 0001-01-01
        raise ValueError("reference start must be before reference end")
    now = now_us if now_us is not None else time.time_ns() // 1000
    read_latencies = latencies or (lambda conn, s, e, b: _latency_samples(query.primary_latencies(conn, s, e, b),
                                                                         config))

    with engine.connect() as conn:
        _snapshot(conn)
        warm = use_rollups and not any(f.startswith(query.SEGMENT_PREFIX) for f in by)
        if warm:
            from collectors.store.rollup import rollups_valid

            warm = rollups_valid(conn)
        gather = _window_from_rollups if warm else _window_cold
        current, units = gather(conn, start_us, end_us, by, True)
        reference_stats, _ = gather(conn, ref_start, ref_end, by, False)
        total_latency, latency_by_key = read_latencies(conn, start_us, end_us, by)

    total_units = agreement.Coincidences()
    for part in units.values():
        total_units = total_units.merge(part)
    total = replace(merge_all(list(current.values())), latency=total_latency, agreement=total_units)
    rate = config.hourly_rate.for_queue

    def row(key: Key, stats: SliceStats, ref: SliceStats) -> ReportRow:
        return ReportRow(key, slice_kpis(stats, ref, now, rate), slice_samples(stats, ref), stats)

    total_row = row((), total, merge_all(list(reference_stats.values())))
    rows: list[ReportRow] = []
    if by:
        empty = SliceStats()
        for key in sorted(set(current) | set(latency_by_key), key=row_order):
            stats = replace(current.get(key, empty), latency=latency_by_key.get(key, empty.latency),
                            agreement=units.get(key, empty.agreement))
            rows.append(row(key, stats, reference_stats.get(key, empty)))
    return Report(start_us, end_us, by, ref_start, ref_end, now, total_row, tuple(rows))


Window = tuple[dict[Key, SliceStats], dict[Key, agreement.Coincidences]]


def _window_cold(conn: Connection, start_us: int, end_us: int, by: tuple[str, ...], with_agreement: bool) -> Window:
    """Decision statistics and agreement of [start, end) from the raw tables (the reference path)."""
    from collectors.engine import query

    stats = _decision_stats(query.decision_groups(conn, start_us, end_us, by))
    units = _agreement_stats(query.agreement_votes(conn, start_us, end_us, by)) if with_agreement else {}
    return stats, units


def _window_from_rollups(conn: Connection, start_us: int, end_us: int, by: tuple[str, ...],
                         with_agreement: bool) -> Window:
    """The same as `_window_cold`: whole hours from the rollups, the minutes at the edges raw.

    Without agreement (a reference window: only its bins count) the oldest pending is skipped too.
    """
    from collectors.engine import rollup_query

    parts = [_window_cold(conn, a, b, by, with_agreement) for a, b in rollup_query.edges(start_us, end_us)]
    hours = rollup_query.aligned_part(start_us, end_us)
    if hours is not None:
        stats = rollup_query.decision_stats(conn, hours[0], hours[1], by)
        oldest = rollup_query.oldest_pending(conn, hours[0] * rollup_query.HOUR_US,
                                             hours[1] * rollup_query.HOUR_US, by) if with_agreement else {}
        for key, at in oldest.items():
            held = stats[key]
            stats[key] = replace(held, verdicts=replace(held.verdicts, oldest_pending_us=at))
        units = rollup_query.agreement_stats(conn, hours[0], hours[1], by) if with_agreement else {}
        parts.append((stats, units))
    return _merge_windows(parts)


def _merge_windows(parts: list[Window]) -> Window:
    stats: dict[Key, SliceStats] = {}
    units: dict[Key, agreement.Coincidences] = {}
    for part_stats, part_units in parts:
        for key, value in part_stats.items():
            stats[key] = value if key not in stats else stats[key].merge(value)
        for key, unit_stats in part_units.items():
            units[key] = unit_stats if key not in units else units[key].merge(unit_stats)
    return stats, units


def _snapshot(conn: Connection) -> None:
    """Read every query of a report from one snapshot of the store, even while ingest writes."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")


def _decision_stats(groups: list[Any]) -> dict[Key, SliceStats]:
    stats: dict[Key, SliceStats] = {}
    for group in groups:
        part = stats_of_group(group)
        held = stats.get(group.key)
        stats[group.key] = part if held is None else held.merge(part)
    return stats


def _latency_samples(rows: list[tuple[Key, str, int]], config: TowerConfig
                     ) -> tuple[latency.LatencySample, dict[Key, latency.LatencySample]]:
    """Latencies (seconds) and SLAs of all primary reviews, and per slice key."""
    sla_of: dict[str, float] = {}
    for _key, risk_class, _us in rows:
        if risk_class not in sla_of:
            sla_of[risk_class] = config.sla.for_risk_class(risk_class)
    count = len(rows)
    seconds = np.fromiter((us for _k, _rc, us in rows), dtype=np.int64, count=count) / 1_000_000
    slas = np.fromiter((sla_of[rc] for _k, rc, _us in rows), dtype=np.float64, count=count)
    positions: dict[Key, list[int]] = defaultdict(list)
    for i, (key, _rc, _us) in enumerate(rows):
        positions[key].append(i)
    per_key = {}
    for key, where in positions.items():
        index = np.asarray(where, dtype=np.intp)
        per_key[key] = latency.LatencySample(seconds[index], slas[index])
    return latency.LatencySample(seconds, slas), per_key


def _agreement_stats(votes: list[tuple[Key, agreement.Vote]]) -> dict[Key, agreement.Coincidences]:
    """Coincidence statistics per slice key (a decision, and so a unit, belongs to one slice)."""
    by_key: dict[Key, list[agreement.Vote]] = defaultdict(list)
    for key, vote in votes:
        by_key[key].append(vote)
    return {key: agreement.coincidences(agreement.agreement_units(v).values()) for key, v in by_key.items()}


def slice_kpis(stats: SliceStats, ref: SliceStats, now_us: int,
               rate_for_queue: cost.RateForQueue) -> dict[str, Value]:
    """Every KPI of section 3 for one slice, in the contract's order."""
    current_ece = calibration.ece(stats.calibration)
    values: dict[str, Value] = {
        "decisions": rates.decisions(stats.verdicts),
        "intervention_rate": rates.intervention_rate(stats.verdicts),
        "auto_rate": rates.auto_rate(stats.verdicts),
        "pending": rates.pending(stats.verdicts),
        "pending_oldest_age_seconds": rates.pending_oldest_age_seconds(stats.verdicts, now_us),
        "ece": current_ece,
        "brier": calibration.brier(stats.calibration),
        "psi": calibration.psi(ref.population, stats.population),
        "ece_drift": calibration.ece_drift(current_ece, calibration.ece(ref.calibration)),
        "override_count": overrides.override_count(stats.overrides),
        "override_error_delta": overrides.override_error_delta(stats.overrides),
        "harmful_override_rate": overrides.harmful_override_rate(stats.overrides),
        "cost_avoided": overrides.cost_avoided(stats.overrides),
        "agreement_alpha": agreement.nominal_alpha(stats.agreement),
        "latency_p50_seconds": latency.latency_p50_seconds(stats.latency),
        "latency_p90_seconds": latency.latency_p90_seconds(stats.latency),
        "latency_p99_seconds": latency.latency_p99_seconds(stats.latency),
        "sla_breach_rate": latency.sla_breach_rate(stats.latency),
        "cost_per_decision": cost.cost_per_decision(stats.costs, rate_for_queue),
    }
    return {kpi_id: values[kpi_id] for kpi_id in KPI_IDS}


def slice_samples(stats: SliceStats, ref: SliceStats) -> dict[str, int]:
    """The sample size behind each KPI of a slice, so a reader can tell 2/3 from 2000/3000."""
    return {
        "decisions": stats.verdicts.decisions,
        "resolved": stats.verdicts.resolved,
        "outcomes": stats.calibration.total,
        "reference_decisions": sum(ref.population),
        "reference_outcomes": ref.calibration.total,
        "overrides": stats.overrides.count,
        "agreement_units": stats.agreement.units,
        "agreement_values": stats.agreement.n,
        "primary_reviews": stats.latency.count,
    }


CONTRACT_KEYS = ("start", "end", "by", "total", "rows")


def contract_object(data: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys of the contract's JSON object (section 5), from `report_to_dict`'s output:
    what `hitl-tower report --format json` prints unless --extras asks for more."""
    return {key: data[key] for key in CONTRACT_KEYS}


def report_to_dict(report: Report, extras: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The section-5 JSON object, plus "reference", "now" and "samples" as extra top-level keys,
    then the keys of `extras` (`collectors.engine.extras.compute_extras`) when given."""
    by = list(report.by)
    data: dict[str, Any] = {
        "start": format_timestamp(report.start_us),
        "end": format_timestamp(report.end_us),
        "by": by,
        "total": dict(report.total.kpis),
        "rows": [{**dict(zip(by, row.key)), **row.kpis} for row in report.rows],
        "reference": {"start": format_timestamp(report.reference_start_us),
                      "end": format_timestamp(report.reference_end_us)},
        "now": format_timestamp(report.now_us),
        "samples": {
            "total": dict(report.total.samples),
            "rows": [{**dict(zip(by, row.key)), **row.samples} for row in report.rows],
        },
    }
    clash = set(extras or {}) & set(data)
    if clash:
        raise ValueError(f"extras may not replace report keys: {sorted(clash)}")
    return {**data, **(extras or {})}
