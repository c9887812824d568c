"""Pre/post comparison of change events: KPIs in equal windows before and after each change.

A threshold, policy or model change (contract section 1, `change`) is judged by
the engine's own KPIs over [changed_at - L, changed_at) and [changed_at,
changed_at + L), sliced to the change's scope. L is the configured window
(`changes.window`, 7d), shortened so that both sides hold data (neither may
reach before the oldest nor after the newest decision): the two sides always
have equal length, so "per day" figures and seasonality compare like for like.
Rates get a pooled two-proportion z-test (statsmodels); other KPIs only a
before/after/delta. Scope keys that are not slice fields cannot be filtered by
the engine: the comparison then covers the wider slice and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from collectors.advice.frame import change_frame
from collectors.advice.stats import two_proportion_test
from collectors.engine.query import SEGMENT_PREFIX, SLICE_FIELDS
from collectors.engine.report import ReportRow, compute_report
from collectors.kpis.spec import kpi_name, slice_text
from collectors.validate import format_timestamp
from collectors.wording import utc_minute

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
MIN_JUDGE_US = DAY_US  # shorter equal windows are flagged "too early to judge"
SCOPE_ALIASES = {"agent": "agent_id", "model": "model_version"}
"""Scope keys producers often write for a slice field: compared as that field."""

RATES: dict[str, str] = {
    "auto_rate": "resolved", "intervention_rate": "resolved", "sla_breach_rate": "primary_reviews",
    "harmful_override_rate": "overrides", "agent_accuracy": "outcomes",
}
"""Rate KPI -> the report's sample (its denominator); each gets a two-proportion test."""
LEVELS: dict[str, str] = {
    "decisions_per_day": "decisions", "ece": "outcomes", "brier": "outcomes",
    "latency_p90_seconds": "primary_reviews", "cost_per_decision": "decisions",
}
"""Non-rate KPI -> the sample behind it; compared without a test."""
OUTCOME_RATES = ("agent_accuracy", "ece", "brier", "harmful_override_rate")
"""The compared KPIs that stand on outcomes: early after a change they stand on the first ones to arrive."""
MAIN_KPI = {"threshold": "auto_rate", "policy": "intervention_rate", "model": "agent_accuracy",
            "other": "intervention_rate"}
"""The KPI a change of each kind is meant to move, used for the headline when it moved."""


def compare_changes(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                    filters: Mapping[str, str] | None = None, *, kinds: Sequence[str] | None = None,
                    window_seconds: int | None = None) -> dict[str, Any]:
    """Every change with changed_at in [start, end) (of `kinds`, all by default) and its pre/post KPIs.

    `filters` (e.g. the dashboard's risk class) narrow each comparison further; a change whose
    scope contradicts them (another value of the same field) is left out.
    """
    from collectors.config import duration_seconds
    from collectors.store.db import decision_time_range

    window_us = (window_seconds or duration_seconds(config.changes.window)) * US
    span = decision_time_range(engine)
    everything = change_records(engine)
    result = []
    for change in everything:
        if not start_us <= change["changed_at"] < end_us or (kinds and change["kind"] not in kinds):
            continue
        slices, ignored = scope_slices(change["scope"])
        selection = _with_filters(slices, filters or {})
        if selection is None:
            continue
        result.append(_compare_one(engine, config, change, selection, ignored, window_us, span, everything))
    return {"window_seconds": window_us // US, "significance": config.changes.significance, "changes": result,
            "featured": featured(result)}


def change_markers(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                   filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The changes of [start, end) to mark on time series (those not contradicting `filters`)."""
    markers = []
    for change in change_records(engine, start_us, end_us):
        slices, _ = scope_slices(change["scope"])
        if _with_filters(slices, filters or {}) is None:
            continue
        markers.append({"id": change["id"], "changed_at_us": int(change["changed_at"]),
                        "changed_at": format_timestamp(int(change["changed_at"])), "kind": change["kind"],
                        "label": change_label(change), "actor": change["actor"], "reason": change["reason"]})
    return markers


def change_series(engine: Engine, config: TowerConfig, change_id: str, kpi_id: str,
                  filters: Mapping[str, str] | None = None, window_seconds: int | None = None
                  ) -> list[dict[str, Any]]:
    """One KPI of a change's compared slice per bucket across its pre and post windows: daily buckets
    (hourly when the equal windows are under 2 days) counted from changed_at, so none straddles it."""
    from collectors.config import duration_seconds
    from collectors.store.db import decision_time_range

    found = [c for c in change_records(engine) if c["id"] == change_id]
    if not found:
        raise ValueError(f"unknown change id {change_id!r}")
    at = int(found[0]["changed_at"])
    slices = _with_filters(scope_slices(found[0]["scope"])[0], filters or {}) or {}
    window_us = (window_seconds or duration_seconds(config.changes.window)) * US
    length = equal_length(at, window_us, decision_time_range(engine))
    bucket = DAY_US if length >= 2 * DAY_US else HOUR_US
    steps = -(-length // bucket)
    edges = sorted({max(at - k * bucket, at - length) for k in range(steps + 1)}
                   | {min(at + k * bucket, at + length) for k in range(steps + 1)})
    points = []
    for lo, hi in pairwise(edges):
        value, _count, n = kpi_value(_row(engine, config, lo, hi, slices), kpi_id, (hi - lo) / DAY_US)
        points.append({"bucket": format_timestamp(lo), "bucket_us": lo, "side": "pre" if hi <= at else "post",
                       "value": value, "n": n})
    return points


def change_records(engine: Engine, start_us: int | None = None, end_us: int | None = None) -> list[dict[str, Any]]:
    """`change_frame` rows as plain dicts (absent before, after and reason are None)."""
    records = change_frame(engine, start_us, end_us).to_dict("records")
    for record in records:
        record["changed_at"] = int(record["changed_at"])
    return records


# ---- one change --------------------------------------------------------------------------------


def _compare_one(engine: Engine, config: TowerConfig, change: dict[str, Any], slices: dict[str, str],
                 ignored: list[str], window_us: int, span: tuple[int, int] | None,
                 everything: list[dict[str, Any]]) -> dict[str, Any]:
    at = int(change["changed_at"])
    length = equal_length(at, window_us, span)
    caveats = [f"scope key {key!r} is not a slice field: compared over the wider slice "
               f"{_scope_text(slices)}" for key in ignored]
    entry: dict[str, Any] = {
        "id": change["id"], "changed_at": format_timestamp(at), "actor": change["actor"], "kind": change["kind"],
        "scope": change["scope"], "compared_slice": slices, "before": change["before"], "after": change["after"],
        "reason": change["reason"], "label": change_label(change),
        "pre": {"start": format_timestamp(at - length), "end": format_timestamp(at)},
        "post": {"start": format_timestamp(at), "end": format_timestamp(at + length)},
        "equal_window_seconds": length // US, "too_early": length < MIN_JUDGE_US, "caveats": caveats, "kpis": [],
    }
    if length <= 0:
        caveats.append("no decisions on one side of the change: nothing to compare")
        entry.update(pre=None, post=None, headline=f"{change['kind']} change: no data on both sides to compare",
                     headline_kpi=None)
        return entry
    if length < window_us:
        edge = "starts" if span and at - span[0] < window_us else "ends"
        caveats.append(f"windows shortened to {_days(length)} each (the store's data {edge} there)")
    if length < MIN_JUDGE_US:
        caveats.append("too early to judge: less than 1 day of data on a side")
    pre = _row(engine, config, at - length, at, slices)
    post = _row(engine, config, at, at + length, slices)
    days = length / DAY_US
    for kpi_id in (*RATES, *LEVELS):
        entry["kpis"].append(_kpi_entry(kpi_id, pre, post, days, config.changes.significance))
    caveats.extend(_data_caveats(pre, post, slices))
    caveats.extend(_overlapping(change, at - length, at + length, everything))
    entry["headline"] = headline(entry)
    entry["headline_kpi"] = headline_kpi(entry)["kpi"]
    return entry


def equal_length(at: int, window_us: int, span: tuple[int, int] | None) -> int:
    """Length (us) of the equal pre and post windows: the configured window, clipped on both sides to
    the store's decisions [oldest, newest] so neither side runs past the data (then rounded down to whole
    hours); 0 when one side is empty."""
    if span is None:
        return 0
    oldest, newest = span
    length = max(0, min(window_us, at - oldest, newest + 1 - at))
    if length < window_us:  # clipped: whole hours (minutes under an hour) read better and lose little
        length -= length % (HOUR_US if length >= HOUR_US else MINUTE_US)
    return length


def _row(engine: Engine, config: TowerConfig, start: int, end: int, slices: dict[str, str]) -> ReportRow | None:
    """The engine's row of [start, end) for the slice (the total for no slice); None when it is empty."""
    by = list(slices)
    report = compute_report(engine, config, start, end, by=by)
    if not by:
        return report.total
    wanted = tuple(slices.values())
    return next((row for row in report.rows if row.key == wanted), None)


def kpi_value(row: ReportRow | None, kpi_id: str, days: float) -> tuple[float | None, int | None, int]:
    """(value, count, n) of a change KPI from an engine row: count is the numerator of a rate (None
    otherwise), n its sample. Rates are the engine's; their counts are value x n (exact: integer ratios)."""
    if row is None:
        return None, None, 0
    n = int(row.samples[RATES.get(kpi_id) or LEVELS[kpi_id]])
    if kpi_id == "agent_accuracy":  # not a contract KPI: the engine's calibration bins hold its counts
        correct = int(sum(row.stats.calibration.correct))
        return (correct / n if n else None), correct, n
    if kpi_id == "decisions_per_day":
        return (n / days if days > 0 else None), None, n
    value = row.kpis[kpi_id]
    count = round(value * n) if kpi_id in RATES and value is not None else None
    return (None if value is None else float(value)), count, n


def _kpi_entry(kpi_id: str, pre: ReportRow | None, post: ReportRow | None, days: float,
               significance: float) -> dict[str, Any]:
    before, pre_count, pre_n = kpi_value(pre, kpi_id, days)
    after, post_count, post_n = kpi_value(post, kpi_id, days)
    delta = None if before is None or after is None else after - before
    p_value = None
    if kpi_id in RATES and pre_count is not None and post_count is not None:
        p_value = two_proportion_test(pre_count, pre_n, post_count, post_n)
    return {
        "kpi": kpi_id, "rate": kpi_id in RATES, "pre": before, "post": after, "delta": delta,
        "direction": None if delta is None else ("up" if delta > 0 else "down" if delta < 0 else "flat"),
        "pre_count": pre_count, "post_count": post_count, "pre_n": pre_n, "post_n": post_n,
        "p_value": p_value, "significant": None if p_value is None else p_value < significance,
    }


def _data_caveats(pre: ReportRow | None, post: ReportRow | None, slices: dict[str, str]) -> list[str]:
    if pre is None or post is None:
        side = "before" if pre is None else "after"
        return [f"no decisions in {_scope_text(slices)} {side} the change"]
    out = []
    pending = post.samples["decisions"] - post.samples["resolved"]
    if pending > 0.01 * post.samples["decisions"]:
        out.append(f"{pending:,} decisions after the change are still pending: rates cover resolved ones only")
    cover_pre = pre.samples["outcomes"] / max(pre.samples["decisions"], 1)
    cover_post = post.samples["outcomes"] / max(post.samples["decisions"], 1)
    if cover_post < 0.8 * cover_pre:
        out.append(f"outcomes are still arriving ({cover_post:.0%} of decisions after the change have one, "
                   f"{cover_pre:.0%} before): " + ", ".join(map(kpi_name, OUTCOME_RATES))
                   + " lean on early outcomes")
    return out


def _overlapping(change: dict[str, Any], lo: int, hi: int, everything: list[dict[str, Any]]) -> list[str]:
    """Other changes inside the compared span whose scope may overlap: their effect mixes in."""
    others = []
    for other in everything:
        if other["id"] == change["id"] or not lo <= int(other["changed_at"]) < hi:
            continue
        if scopes_disjoint(change["scope"], other["scope"]):
            continue
        others.append(f"{other['id']} ({change_label(other)}, {utc_minute(int(other['changed_at']))})")
    return [f"other changes in these windows may mix in: {'; '.join(others)}"] if others else []


# ---- scope and words ---------------------------------------------------------------------------


def scope_slices(scope: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(slice field -> value, scope keys the engine cannot slice by) of a change's scope."""
    slices: dict[str, str] = {}
    ignored = []
    for key, value in scope.items():
        field = SCOPE_ALIASES.get(key, key)
        sliceable = field in SLICE_FIELDS or (field.startswith(SEGMENT_PREFIX) and len(field) > len(SEGMENT_PREFIX))
        if sliceable and isinstance(value, str) and field not in slices:
            slices[field] = value
        else:
            ignored.append(key)
    return slices, ignored


def scopes_disjoint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two scopes cannot share a decision: some key (aliases resolved) has different values."""
    norm_a = {SCOPE_ALIASES.get(k, k): v for k, v in a.items()}
    norm_b = {SCOPE_ALIASES.get(k, k): v for k, v in b.items()}
    return any(norm_b[k] != v for k, v in norm_a.items() if k in norm_b)


def _with_filters(slices: dict[str, str], filters: Mapping[str, str]) -> dict[str, str] | None:
    if scopes_disjoint(slices, filters):
        return None
    return {**slices, **{k: v for k, v in filters.items() if k not in slices}}


def change_label(change: Mapping[str, Any]) -> str:
    """A short marker label, e.g. "threshold low 0.85→0.75" or "model refund-agent: refund-v3.2 0→0.1"."""
    where = " ".join(str(v) for v in (change.get("scope") or {}).values())
    head = f"{change['kind']} {where}".strip()
    before, after = change.get("before"), change.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        old, new = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
        moved = [k for k in {**old, **new} if old.get(k) != new.get(k)]
        if moved:
            key = max(moved, key=lambda k: _number(new.get(k)) - _number(old.get(k)))
            return f"{head}: {key} {_short(old.get(key, 0))}→{_short(new.get(key, 0))}"
        return head
    if before is None and after is None:
        return head
    return f"{head} {_short(before)}→{_short(after)}"


def headline_kpi(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The KPI a change's headline speaks of: the kind's main KPI when it moved significantly, else the
    most significant rate, else the main KPI."""
    kpis = {k["kpi"]: k for k in entry["kpis"]}
    main = kpis[MAIN_KPI.get(entry["kind"], "intervention_rate")]
    moved = sorted((k for k in kpis.values() if k["significant"]), key=lambda k: k["p_value"])
    return main if main["significant"] else (moved[0] if moved else main)


def featured(changes: Sequence[Mapping[str, Any]]) -> int | None:
    """The position of the change a reader should see first (`compare_changes`' changes, oldest first): the
    one whose headline moved most significantly (smallest p-value, the later of equals), else the latest;
    None without changes. Opening on the latest threshold change showed "no significant change" while
    another change had moved a rate."""
    moved = [(k["p_value"], -i) for i, c in enumerate(changes) for k in c["kpis"]
             if k["kpi"] == c.get("headline_kpi") and k["significant"]]
    if moved:
        return -min(moved)[1]
    return len(changes) - 1 if changes else None


def headline(entry: Mapping[str, Any]) -> str:
    """One sentence on the change's effect on its `headline_kpi`, with the p-value."""
    pick = headline_kpi(entry)
    where = _scope_text(entry["compared_slice"])
    name = kpi_name(pick["kpi"])  # "auto rate", not auto_rate: the sentence is read on the Changes page
    if pick["pre"] is None or pick["post"] is None:
        return f"{name} in {where}: not enough data on both sides to compare"
    values = f"from {pick['pre']:.1%} to {pick['post']:.1%} ({format_p(pick['p_value'])})"
    if not pick["significant"]:
        return f"no significant change of {name} in {where}: {values}"
    verb = "rose" if pick["direction"] == "up" else "fell"
    return f"{name} in {where} {verb} {values}"


def format_p(p_value: float | None) -> str:
    """A p-value for people: "p < 0.001", "p = 0.042", or "no test" when undefined."""
    if p_value is None:
        return "no test"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _scope_text(slices: Mapping[str, str]) -> str:
    return slice_text(slices) or "all decisions"


def _days(us: int) -> str:
    return f"{us / DAY_US:g} d" if us % DAY_US == 0 else f"{us / HOUR_US:g} h"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 24 else text[:23] + "…"
