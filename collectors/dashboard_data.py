"""The dashboard's data: plain dicts and DataFrames per page, read through the engine (no KPI math here).

`app/` draws what these functions return. Every KPI value comes from
`collectors.engine.report.compute_report` and every figure beyond the
contract from `collectors.engine.extras.compute_extras`; filters (risk class,
queue, model version, agent) become `by` slices whose matching row is picked,
so a filtered tile is the engine's own number for that slice.

Cost: a time series runs one `compute_report` per bucket (30 for 30 daily
buckets, 24 for hourly ones); with the rollups that stays well under a
second per call on the demo store, and the app caches the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from collectors.engine.extras import compute_extras
from collectors.engine.report import Report, ReportRow, compute_report, reference_window
from collectors.validate import format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

FILTER_FIELDS = ("risk_class", "queue", "model_version", "agent_id")
WINDOWS = {"last 24h": 86_400, "last 7d": 7 * 86_400, "last 30d": 30 * 86_400}
_US = 1_000_000
HOUR_US = 3600 * _US
DAY_US = 86_400 * _US
Filters = Mapping[str, str | None]


def window_bounds(newest_us: int, window: str) -> tuple[int, int]:
    """[start, end) of a named window ending just after the store's newest decision."""
    end = newest_us + 1
    return end - WINDOWS[window] * _US, end


def bucket_for(window: str) -> int:
    """Time-series bucket of a window: hourly for a day, daily for longer ones."""
    return HOUR_US if WINDOWS[window] <= 86_400 else DAY_US


def _active(filters: Filters | None) -> dict[str, str]:
    return {k: v for k, v in (filters or {}).items() if v is not None and k in FILTER_FIELDS}


def _pick(report: Report, active: Mapping[str, str]) -> list[ReportRow]:
    """The rows of a report (by = the filter fields, then any others) that match the filter values."""
    if not report.by:
        return [report.total]
    n = len(active)
    wanted = tuple(active.values())
    return [row for row in report.rows if row.key[:n] == wanted]


def _report(engine: Engine, config: TowerConfig, start_us: int, end_us: int, filters: Filters | None,
            extra_by: Sequence[str] = (), reference: tuple[int, int] | None = None,
            now_us: int | None = None) -> tuple[Report, list[ReportRow]]:
    active = _active(filters)
    by = [*active, *(f for f in extra_by if f not in active)]  # a filtered field is sliced once
    report = compute_report(engine, config, start_us, end_us, by=by, reference=reference, now_us=now_us)
    return report, _pick(report, active)


def filter_options(engine: Engine, config: TowerConfig, start_us: int, end_us: int) -> dict[str, list[str]]:
    """The values each filter field takes among the window's decisions."""
    report = compute_report(engine, config, start_us, end_us, by=list(FILTER_FIELDS))
    return {f: sorted({v for row in report.rows if (v := row.key[i]) is not None})
            for i, f in enumerate(FILTER_FIELDS)}


# KPIs of a window's decisions as they stand now: the reference window's decisions have had a window's
# length longer to be reviewed, so its pending count is smaller whatever the backlog does, and a delta
# would always read worse (the Overview showed "pending 60 ↑ +60" in red on a steady demo store).
AS_OF_NOW = frozenset({"pending", "pending_oldest_age_seconds"})


def kpi_summary(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                filters: Filters | None = None, now_us: int | None = None) -> dict[str, Any]:
    """KPIs of the window and of its reference window (equal length, just before), deltas and samples.

    `kpis` is None when the filters match no decision in the window. `withheld` names the KPIs whose
    sample is below the alerting gate (`sample_gates`), with why: show no value for them, and no delta.
    The `AS_OF_NOW` KPIs have no delta either.
    """
    report, rows = _report(engine, config, start_us, end_us, filters, now_us=now_us)
    ref_start, ref_end = report.reference_start_us, report.reference_end_us
    _, ref_rows = _report(engine, config, ref_start, ref_end, filters, now_us=now_us)
    current = rows[0] if rows else None
    reference = ref_rows[0] if ref_rows else None
    kpis = dict(current.kpis) if current else None
    ref_kpis = dict(reference.kpis) if reference else {}
    withheld = sample_gates(config, current.samples) if current else {}
    ref_withheld = sample_gates(config, reference.samples) if reference else {}
    deltas: dict[str, float | None] = {}
    for k, v in (kpis or {}).items():
        before = ref_kpis.get(k)
        # The change against the reference window is presentation, not a KPI: both sides are engine values.
        deltas[k] = (v - before if v is not None and before is not None and k not in withheld
                     and k not in ref_withheld and k not in AS_OF_NOW else None)
    return {"start": format_timestamp(start_us), "end": format_timestamp(end_us),
            "reference": {"start": format_timestamp(ref_start), "end": format_timestamp(ref_end)},
            "kpis": kpis, "samples": dict(current.samples) if current else None,
            "reference_kpis": ref_kpis or None,
            "reference_samples": dict(reference.samples) if reference else None, "deltas": deltas,
            "withheld": withheld,
            "outcome_coverage": outcome_coverage(current.samples if current else None,
                                                 reference.samples if reference else None)}


def psi_drawn(config: TowerConfig, series: pd.DataFrame) -> pd.Series:
    """The buckets of a `timeseries` whose PSI (against the bucket before) a chart may draw: the PSI tile's and
    the HitlConfidencePsi alert's gate, `alerts.psi_min_decisions` decisions in the bucket and in the bucket
    before. Below it PSI of two samples of n decisions from one distribution averages about 18/n (0.09 at 200,
    at the 0.10 warning line drawn on the chart): a chart drawing 200-decision buckets showed noise as shifts
    that neither the tile nor the alert would call one."""
    gate = config.alerts.psi_min_decisions
    return (series["n_decisions"] >= gate) & (series["n_reference_decisions"] >= gate)


def sample_gates(config: TowerConfig, samples: Mapping[str, int]) -> dict[str, str]:
    """The KPIs of a window comparing it with its reference window that stand on fewer decisions or outcomes
    than the alerting gates ask for (`alerts.psi_min_decisions` decisions in each window for psi,
    `alerts.min_outcomes` outcomes in each for ece_drift, as collectors.drift.check), each with why: the
    engine computes them on any sample, but a PSI from 36 reference decisions is noise that no alert would
    act on, so the dashboard does not show it as a value either."""
    gates = config.alerts
    reasons = {}
    if samples["decisions"] and min(samples["decisions"], samples["reference_decisions"]) < gates.psi_min_decisions:
        reasons["psi"] = (f"n too small: {samples['decisions']:,} decisions in the window and "
                          f"{samples['reference_decisions']:,} in the reference window; PSI needs "
                          f"{gates.psi_min_decisions:,} in each (alerts.psi_min_decisions)")
    if samples["outcomes"] and min(samples["outcomes"], samples["reference_outcomes"]) < gates.min_outcomes:
        reasons["ece_drift"] = (f"n too small: {samples['outcomes']:,} outcomes in the window and "
                                f"{samples['reference_outcomes']:,} in the reference window; ECE drift needs "
                                f"{gates.min_outcomes:,} in each (alerts.min_outcomes)")
    return reasons


COMPARABLE_COVERAGE = 0.9  # a window's outcome coverage below 90% of its baseline's: outcomes still arriving


def coverage(samples: Mapping[str, int] | None) -> float | None:
    """Share of a window's decisions that have an outcome (None without decisions)."""
    if not samples or not samples.get("decisions"):
        return None
    return samples["outcomes"] / samples["decisions"]


def outcome_coverage(samples: Mapping[str, int] | None,
                     reference_samples: Mapping[str, int] | None) -> dict[str, Any]:
    """Outcome coverage of a window and of its reference window, the baseline a settled window reaches
    (the reference's, else the window's own) and whether the two windows are `comparable`: outcomes arrive
    hours to days after the decision, so a recent window with fewer of them would read as a change in
    every outcome-based KPI (OUTCOME_KPIS). Not comparable when the window's coverage is below
    COMPARABLE_COVERAGE of the reference's."""
    window, reference = coverage(samples), coverage(reference_samples)
    comparable = window is None or reference is None or window >= COMPARABLE_COVERAGE * reference
    return {"window": window, "reference": reference,
            "baseline": reference if reference is not None else window, "comparable": comparable}


def outcomes_arriving_since(series: pd.DataFrame, baseline: float | None) -> pd.Timestamp | None:
    """The first bucket of the series' last run of buckets whose outcome coverage is below
    COMPARABLE_COVERAGE of `baseline` (an `outcome_coverage`'s): the recent buckets whose outcomes are still
    arriving, so their outcome-based values are not yet comparable with older ones. None when the last bucket
    is covered. The rows of one bucket (a `by` series) count together."""
    if series.empty or not baseline:
        return None
    per_bucket = series.groupby("bucket")[["n_outcomes", "n_decisions"]].sum().sort_index()
    since = None
    for bucket, row in per_bucket[::-1].iterrows():
        if row["n_decisions"] and row["n_outcomes"] / row["n_decisions"] >= COMPARABLE_COVERAGE * baseline:
            break
        since = bucket
    return since


def first_whole_bucket(start_us: int, bucket_us: int) -> int:
    """The start of the first bucket that lies wholly in a window starting at `start_us`."""
    return -(-start_us // bucket_us) * bucket_us


def timeseries(engine: Engine, config: TowerConfig, start_us: int, end_us: int, bucket_us: int,
               kpi_ids: Sequence[str], filters: Filters | None = None, by: str | None = None,
               now_us: int | None = None, whole_buckets: bool = False) -> pd.DataFrame:
    """One row per bucket (and per value of `by`): the chosen KPIs and the bucket's decisions.

    Each bucket's reference is the previous bucket (so psi and ece_drift are bucket-to-bucket).
    `whole_buckets` leaves out a first bucket the window starts inside (a 7d window starting at 22:40 holds
    80 minutes of its first day: a chart drew that sliver like a whole day, a tiny bar or a noisy point);
    the last bucket, the one going on now, stays.
    """
    records: list[dict[str, Any]] = []
    first = first_whole_bucket(start_us, bucket_us) if whole_buckets else start_us - (start_us % bucket_us)
    for b_start in range(first, end_us, bucket_us):
        b_end = min(b_start + bucket_us, end_us)
        lo = max(b_start, start_us)
        if lo >= b_end:
            continue
        report, rows = _report(engine, config, lo, b_end, filters, [by] if by else (),
                               reference=reference_window(b_start, b_start + bucket_us), now_us=now_us)
        for row in rows:
            rec: dict[str, Any] = {"bucket": pd.Timestamp(b_start, unit="us", tz="UTC")}
            if by:
                rec[by] = row.key[report.by.index(by)]
            rec.update({k: row.kpis.get(k) for k in kpi_ids})
            rec["n_decisions"] = row.samples["decisions"]
            rec["n_reference_decisions"] = row.samples["reference_decisions"]  # the previous bucket's (psi)
            rec["n_outcomes"] = row.samples["outcomes"]
            rec["n_primary_reviews"] = row.samples["primary_reviews"]
            records.append(rec)
    columns = ["bucket", *([by] if by else []), *kpi_ids, "n_decisions", "n_reference_decisions", "n_outcomes",
               "n_primary_reviews"]
    return pd.DataFrame.from_records(records, columns=columns)


def backlog(engine: Engine, config: TowerConfig, filters: Filters | None = None,
            now_us: int | None = None) -> dict[str, Any]:
    """Every decision pending now, whatever the window: the engine's pending and pending_oldest_age_seconds
    over the whole store (its first decision to its newest), in total and per queue (queues with nothing
    pending left out, the oldest first). A window's pending figures count only the decisions proposed in it,
    so an item waiting for 5 days was missing from the 24h window's oldest age; the HitlBacklogAge alert looks
    at the exporter's longest window. `total` is None when the filters match no decision; `since` is when
    the store begins."""
    from collectors.store.db import decision_time_range

    span = decision_time_range(engine)
    columns = ["queue", "pending", "pending_oldest_age_seconds"]
    if span is None:
        return {"since": None, "total": None, "by_queue": pd.DataFrame(columns=columns)}
    start, end = span[0], span[1] + 1
    report, queue_rows = _report(engine, config, start, end, filters, ["queue"], now_us=now_us)
    position = report.by.index("queue")
    by_queue = pd.DataFrame.from_records(
        [{"queue": row.key[position] if row.key[position] is not None else "(none)",
          "pending": row.kpis["pending"], "pending_oldest_age_seconds": row.kpis["pending_oldest_age_seconds"]}
         for row in queue_rows if row.kpis["pending"]], columns=columns)
    by_queue = by_queue.sort_values("pending_oldest_age_seconds", ascending=False, ignore_index=True)
    # The queues part the matching decisions (no queue is a row too), so the total is their sum and the
    # oldest age their largest: the same numbers as a second whole-store report without the queue slice.
    total = ({"pending": sum(int(row.kpis["pending"] or 0) for row in queue_rows),
              "pending_oldest_age_seconds": max((age for row in queue_rows
                                                 if (age := row.kpis["pending_oldest_age_seconds"]) is not None),
                                                default=None)}
             if queue_rows else None)
    return {"since": format_timestamp(start), "total": total, "by_queue": by_queue}


COST_PARTS = ("model_cost_per_decision", "review_cost_per_decision")  # cost_per_decision's parts (cost family)


def segment_table(engine: Engine, config: TowerConfig, start_us: int, end_us: int, field: str,
                  kpi_ids: Sequence[str], filters: Filters | None = None) -> pd.DataFrame:
    """KPIs per value of `field` (a slice field or segment.KEY) with their sample sizes. Besides the
    report's KPIs, `kpi_ids` may name COST_PARTS: model and review cost per decision, from each
    slice's cost sums with the cost family's functions (they add up to cost_per_decision)."""
    from collectors.kpis import cost

    report, rows = _report(engine, config, start_us, end_us, filters, [field])
    position = report.by.index(field)
    rate = config.hourly_rate.for_queue
    parts = [k for k in kpi_ids if k in COST_PARTS]
    records = []
    for row in rows:
        value = row.key[position]
        rec: dict[str, Any] = {field: value if value is not None else "(none)"}
        values = dict(row.kpis)
        if parts:
            values.update({"model_cost_per_decision": cost.model_cost_per_decision(row.stats.costs),
                           "review_cost_per_decision": cost.review_cost_per_decision(row.stats.costs, rate)})
        rec.update({k: values.get(k) for k in kpi_ids})
        rec.update({f"n_{k}": v for k, v in row.samples.items() if not k.startswith("reference_")})
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _extras_parts(engine: Engine, config: TowerConfig, start_us: int, end_us: int, filters: Filters | None,
                  *sections: str) -> list[dict[str, Any] | None]:
    """The given extras sections for the filtered slice (None where the slice has no row), from one
    compute_extras call that runs only those sections' queries."""
    active = _active(filters)
    extras = compute_extras(engine, config, start_us, end_us, by=list(active), sections=sections)
    parts: list[dict[str, Any] | None] = []
    for section in sections:
        part = extras[section]
        if not active:
            parts.append(part["total"])
            continue
        parts.append(next((row for row in part["rows"] if all(row.get(k) == v for k, v in active.items())), None))
    return parts


def reliability(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                filters: Filters | None = None) -> pd.DataFrame:
    """Reliability diagram bins (confidence range, count, mean confidence, accuracy and Wilson interval)."""
    (part,) = _extras_parts(engine, config, start_us, end_us, filters, "reliability")
    cols = ["bin", "lower", "upper", "count", "mean_confidence", "accuracy", "accuracy_low", "accuracy_high"]
    return pd.DataFrame.from_records(part["bins"] if part else [], columns=cols)


def breakdowns(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
               filters: Filters | None = None) -> dict[str, Any]:
    """Verdict and reason-code breakdowns (DataFrames) and escalation figures of the window."""
    part, esc = _extras_parts(engine, config, start_us, end_us, filters, "breakdowns", "escalation")
    verdicts = pd.DataFrame.from_records(part["verdicts"]["entries"]) if part else pd.DataFrame()
    reasons = pd.DataFrame.from_records(part["reason_codes"]["entries"]) if part else pd.DataFrame()
    depth = pd.DataFrame.from_records(esc["depth"]["entries"]) if esc else pd.DataFrame()
    return {"verdicts": verdicts, "reason_codes": reasons, "escalation": esc, "escalation_depth": depth}


def reviewers(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
              filters: Filters | None = None) -> dict[str, Any]:
    """Reviewer table, reviewer-by-reviewer agreement matrix (and shared items), dissent rule.

    Over the reviews of the decisions matching the filters (compute_extras' reviewer_filters).
    """
    data = compute_extras(engine, config, start_us, end_us, reviewer_filters=_active(filters),
                          sections=("reviewers",))["reviewers"]
    table = pd.DataFrame.from_records([{
        "reviewer_id": r["reviewer_id"], "reviews": r["reviews"], "active_hours": r["active_hours"],
        "reviews_per_active_hour": r["reviews_per_active_hour"],
        "median_handle_seconds": r["median_handle_seconds"]["value"],
        "override_rate": r["override_rate"]["value"], "override_n": r["override_rate"]["n"],
        "agreement": r["agreement"]["value"], "agreement_items": r["agreement"]["items"],
        "peer_agreement": r["peer_agreement"]["value"], "dissent": r["dissent"],
    } for r in data["by_reviewer"]])
    m = data["agreement_matrix"]
    names = m["reviewers"]
    matrix = pd.DataFrame(m["agreement"], index=names, columns=names) if names else pd.DataFrame()
    shared = pd.DataFrame(m["shared_items"], index=names, columns=names) if names else pd.DataFrame()
    return {"table": table, "matrix": matrix, "shared": shared, "dissent_rule": data["dissent_rule"]}


def alert_value_kinds(config: TowerConfig) -> dict[str, str]:
    """alertname -> what its threshold and values measure (`Rule.kind`: score, rate, duration, points or
    signal), so a table can read them in their unit; from the rules themselves, the one place that knows."""
    from collectors.alerts.rules import build_rules  # here: the alerts package pulls SQLAlchemy in

    return {rule.alertname: rule.kind for rule in build_rules(config)}


# An evaluator (`hitl-tower alerts --watch`, the demo) looks every minute or so: an hour without one means
# none runs, and "firing now" is only as of the last look.
ALERTS_STALE_AFTER_SECONDS = 3600.0


def alert_evaluation(engine: Engine, now_us: int) -> dict[str, Any] | None:
    """When the alert rules last looked at the firing alerts (`at_us`), how long before `now_us`
    (`age_seconds`), and whether that is too long for "firing now" to be news (`stale`); None when none
    fires. Every evaluation updates each firing episode, so the newest of theirs is the last evaluation
    (a resolved one keeps the instant it resolved, however long evaluators have run since)."""
    from collectors.alerts.history import latest_evaluation

    with engine.connect() as conn:
        latest = latest_evaluation(conn, states=("firing",))
    if latest is None:
        return None
    age = (now_us - latest) / 1e6
    return {"at_us": latest, "age_seconds": age, "stale": age > ALERTS_STALE_AFTER_SECONDS}


def alerts(engine: Engine, config: TowerConfig, since_us: int | None = None) -> dict[str, pd.DataFrame]:
    """Alert episodes: `firing` (now) and `history` (firing and resolved, newest first); `kind` says what the
    threshold and values measure (`alert_value_kinds`; "score" for an alert of no built-in rule)."""
    from collectors.alerts.history import list_alerts

    kinds = alert_value_kinds(config)

    def frame(episodes: list[Any]) -> pd.DataFrame:
        def ts(us: int | None) -> str | None:
            return format_timestamp(us) if us is not None else None
        return pd.DataFrame.from_records([{
            "alertname": e.alertname, "severity": e.severity, "state": e.state,
            "labels": ", ".join(f"{k}={v}" for k, v in sorted(e.labels.items())
                                if k not in ("alertname", "severity")),  # those have their own columns
            "summary": e.annotations.get("summary", ""), "threshold": e.threshold,
            "fired_value": e.fired_value, "last_value": e.last_value, "worst_value": e.worst_value,
            "starts_at": ts(e.starts_at), "ends_at": ts(e.ends_at),
            "kind": kinds.get(e.alertname, "score")} for e in episodes],
            columns=["alertname", "severity", "state", "labels", "summary", "threshold", "fired_value",
                     "last_value", "worst_value", "starts_at", "ends_at", "kind"])

    return {"firing": frame(list_alerts(engine, states=("firing",))),
            "history": frame(list_alerts(engine, since_us=since_us))}


def model_versions(engine: Engine) -> list[str]:
    """Every model version in the store, in the order of its first decision's hour (then by name): one order
    whatever the window or filters, in which a new version comes last, so a chart colour given by this
    order stays with its version (plotly colours traces by their order in each figure: a version missing
    from one chart shifted every later one's colour)."""
    from sqlalchemy import func, select

    from collectors.store.models import KpiRollup, RollupSlice

    first = func.min(KpiRollup.hour)
    query = (select(RollupSlice.model_version, first).join(KpiRollup, KpiRollup.slice_id == RollupSlice.id)
             .group_by(RollupSlice.model_version).order_by(first, RollupSlice.model_version))
    with engine.connect() as conn:
        return [str(version) for version, _hour in conn.execute(query)]


DRIFT_ALERTS = ("HitlCalibrationChange", "HitlCalibrationDrift", "HitlConfidencePsi", "HitlConfidenceShift")


def drift_markers(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                  filters: Filters | None = None) -> list[dict[str, Any]]:
    """The drift alerts (calibration change or drift, psi, confidence shift) that began firing in
    [start, end), one marker each, oldest first; with a model_version filter only that version's.
    From the alert history, so they show what on-call was told and when."""
    from collectors.alerts.history import list_alerts

    version = _active(filters).get("model_version")
    markers = []
    for episode in list_alerts(engine, since_us=start_us, limit=5000):
        at = episode.starts_at
        if (episode.alertname not in DRIFT_ALERTS or at is None or not start_us <= at < end_us
                or (version is not None and episode.labels.get("model_version") != version)):
            continue
        where = " / ".join(v for v in (episode.labels.get("model_version"), episode.labels.get("action_type")) if v)
        markers.append({"at_us": at, "at": format_timestamp(at), "alertname": episode.alertname,
                        "severity": episode.severity, "label": f"{episode.alertname.removeprefix('Hitl')}: {where}",
                        "summary": episode.annotations.get("summary", "")})
    return sorted(markers, key=lambda m: (m["at_us"], m["label"]))


SAMPLE_OF = {"decisions": "decisions", "intervention_rate": "resolved", "auto_rate": "resolved",
             "pending": "decisions", "pending_oldest_age_seconds": "decisions", "ece": "outcomes",
             "brier": "outcomes", "psi": "reference_decisions", "ece_drift": "outcomes",
             "override_count": "overrides", "override_error_delta": "overrides",
             "harmful_override_rate": "overrides", "cost_avoided": "overrides",
             "agreement_alpha": "agreement_units", "latency_p50_seconds": "primary_reviews",
             "latency_p90_seconds": "primary_reviews", "latency_p99_seconds": "primary_reviews",
             "sla_breach_rate": "primary_reviews", "cost_per_decision": "decisions"}
# KPIs that need outcomes (known hours to days after the decision): their recent values are incomplete
OUTCOME_KPIS = tuple(k for k, sample in SAMPLE_OF.items() if sample in ("outcomes", "overrides"))
