"""Figures beyond the contract: reliability diagrams, reviewers, verdict/reason breakdowns, escalation.

`compute_extras` gathers their aggregates (`collectors.engine.extras_query`,
and the agreement votes of `collectors.engine.query`), applies the pure
functions of `collectors.kpis.calibration`, `.breakdowns` and `.reviewers`,
and returns the JSON-ready top-level keys `reliability`, `reviewers`,
`breakdowns` and `escalation`; `report_to_dict(report, extras)` puts them
after the contract's keys. Every rate sits next to its sample size: a share
is {"value", "count", "n"} and value is null when n is 0.

Sliced sections (`reliability`, `breakdowns`, `escalation`) have a `total` and
`rows`, one per slice key among the window's decisions and among the
decisions of the primary and escalation reviews decided in the window,
sorted like the report's rows. `reviewers` is not crossed with slices
(reviewer ids are too many for that); `reviewer_filters` restricts it to the
reviews of the decisions matching fixed slice values instead (the
dashboard's filters): figures, agreement and dissent over those items only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from collectors.engine.report import row_order
from collectors.kpis import breakdowns, calibration, reviewers
from collectors.kpis.breakdowns import Breakdown, Share

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from collectors.config import TowerConfig

Key = tuple[str | None, ...]
EXTRA_KEYS = ("reliability", "reviewers", "breakdowns", "escalation")


def compute_extras(engine: Engine, config: TowerConfig, start_us: int, end_us: int, by: Sequence[str] = (),
                   *, reviewer_filters: Mapping[str, str] | None = None,
                   dissent_min_items: int = reviewers.DISSENT_MIN_ITEMS,
                   dissent_margin: float = reviewers.DISSENT_MARGIN,
                   sections: Collection[str] = EXTRA_KEYS) -> dict[str, Any]:
    """The figures beyond the contract of [start, end), in total and per slice of `by`, as JSON values.

    `sections` (a subset of EXTRA_KEYS) limits the work to those keys: the dashboard asks for one
    or two at a time. Raises ValueError for an empty or inverted window, an unknown slice field or
    an unknown section.
    `config` is accepted for symmetry with compute_report; no figure here depends on it yet.
    """
    from collectors.engine import extras_query, query

    by = tuple(by)
    fixed = dict(reviewer_filters or {})
    wanted = set(sections)
    if start_us >= end_us:
        raise ValueError("start must be before end")
    if wanted - set(EXTRA_KEYS):
        raise ValueError(f"unknown extras sections {sorted(wanted - set(EXTRA_KEYS))} (choose from {EXTRA_KEYS})")
    query.check_slice_fields(by)
    query.check_slice_fields(tuple(fixed))
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        _snapshot(conn)
        bins = extras_query.reliability_counts(conn, start_us, end_us, by) if "reliability" in wanted else []
        need_slices = bool({"breakdowns", "escalation"} & wanted) or ("reliability" in wanted and by)
        deciding = extras_query.deciding_reviews(conn, start_us, end_us, by) if need_slices else []
        steps = extras_query.escalation_steps(conn, start_us, end_us, by) if need_slices else []
        if "reviewers" in wanted:
            verdicts = extras_query.reviewer_verdicts(conn, start_us, end_us, fixed)
            hours = extras_query.reviewer_active_hours(conn, start_us, end_us, fixed)
            handle = extras_query.reviewer_handle_times(conn, start_us, end_us, fixed)
            keys_wanted = tuple(fixed.values())
            votes = [(key, vote) for key, vote in query.agreement_votes(conn, start_us, end_us, tuple(fixed))
                     if key == keys_wanted]
            out["reviewers"] = _reviewers_json(verdicts, hours, handle, votes, dissent_min_items, dissent_margin)

    keys = sorted({k for k, *_ in steps} | {k for k, *_ in deciding}, key=row_order) if by else []
    if "reliability" in wanted:
        out["reliability"] = _sliced(by, keys, _reliability_parts(bins), _reliability_json)
    if "breakdowns" in wanted:
        out["breakdowns"] = _sliced(by, keys, _breakdown_parts(deciding), _breakdowns_json)
    if "escalation" in wanted:
        out["escalation"] = _sliced(by, keys, _escalation_parts(steps), _escalation_json)
    return {key: out[key] for key in EXTRA_KEYS if key in out}


def _snapshot(conn: Connection) -> None:
    """Read every query from one snapshot of the store (as `collectors.engine.report` does)."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")


def _sliced(by: tuple[str, ...], keys: list[Key], parts: dict[Key, Counter[Any]],
            to_json: Callable[[Counter[Any]], dict[str, Any]]) -> dict[str, Any]:
    """{"total": figures of all parts merged, "rows": [{slice fields..., figures...}]} (counts add up)."""
    total: Counter[Any] = Counter()
    for part in parts.values():
        total.update(part)
    return {"total": to_json(total),
            "rows": [{**dict(zip(by, key)), **to_json(parts.get(key, Counter()))} for key in keys]}


def share_json(share: Share) -> dict[str, Any]:
    """A share as {"value", "count", "n"}; value null for an empty sample."""
    return {"value": share.value, "count": share.count, "n": share.n}


def _breakdown_json(breakdown: Breakdown, label: str) -> dict[str, Any]:
    entries = []
    for e in breakdown.entries:
        entry = {label: e.label, "count": e.count, "share": e.share}
        entries.append({**entry, **(e.by_verdict or {})})
    return {"n": breakdown.n, "entries": entries}


# ---- reliability: Counter of (field, bin) -> sum -------------------------------------------------

def _reliability_parts(rows: Iterable[tuple[Key, int, int, float, int]]) -> dict[Key, Counter[Any]]:
    parts: dict[Key, Counter[Any]] = defaultdict(Counter)
    for key, b, n, conf_sum, correct in rows:
        parts[key].update({("n", b): n, ("conf", b): conf_sum, ("correct", b): correct})
    return parts


def _reliability_json(part: Counter[Any]) -> dict[str, Any]:
    r = range(calibration.N_BINS)
    bins = calibration.CalibrationBins(tuple(int(part[("n", i)]) for i in r),
                                       tuple(float(part[("conf", i)]) for i in r),
                                       tuple(int(part[("correct", i)]) for i in r))
    bars = [{"bin": i, "lower": bar.lower, "upper": bar.upper, "count": bar.count,
             "mean_confidence": bar.mean_confidence, "accuracy": bar.accuracy,
             "accuracy_low": bar.accuracy_low, "accuracy_high": bar.accuracy_high}
            for i, bar in enumerate(calibration.reliability_bins(bins))]
    return {"outcomes": bins.total, "bins": bars}


# ---- breakdowns: Counter of (kind, verdict, reason_code) -> reviews ------------------------------

def _breakdown_parts(rows: Iterable[tuple[Key, str, str, str | None, int]]) -> dict[Key, Counter[Any]]:
    parts: dict[Key, Counter[Any]] = defaultdict(Counter)
    for key, kind, verdict, reason, n in rows:
        parts[key][(kind, verdict, reason)] += n
    return parts


def _breakdowns_json(part: Counter[Any]) -> dict[str, Any]:
    primary: Counter[str] = Counter()
    reasons: Counter[tuple[str | None, str]] = Counter()
    for (kind, verdict, reason), n in part.items():
        if kind == "primary":
            primary[verdict] += n
        reasons[(reason, verdict)] += n  # the breakdown keeps edit and reject only
    return {"verdicts": _breakdown_json(breakdowns.verdict_breakdown(primary), "verdict"),
            "reason_codes": _breakdown_json(breakdowns.reason_code_breakdown(reasons), "reason_code")}


# ---- escalation: Counter of ("decisions" | "pending", steps) -> decisions ------------------------

def _escalation_parts(rows: Iterable[tuple[Key, int, int, int]]) -> dict[Key, Counter[Any]]:
    parts: dict[Key, Counter[Any]] = defaultdict(Counter)
    for key, steps, n, pending in rows:
        parts[key].update({("decisions", steps): n, ("pending", steps): pending})
    return parts


def _escalation_json(part: Counter[Any]) -> dict[str, Any]:
    depths = {steps: n for (what, steps), n in part.items() if what == "decisions"}
    rate = breakdowns.escalation_rate(depths)
    depth = breakdowns.escalation_depth(depths)
    pending = sum(n for (what, steps), n in part.items() if what == "pending" and steps > 0)
    return {
        "escalation_rate": share_json(rate),
        "depth": {**_breakdown_json(depth.breakdown, "depth"), "mean": depth.mean, "max": depth.max},
        "escalated_pending": share_json(Share(pending, rate.count)),
    }


# ---- reviewers ----------------------------------------------------------------------------------

def _reviewers_json(verdicts: list[tuple[str, str, str, int]], hours: list[tuple[str, int]],
                    handle: list[tuple[str, float]], votes: list[Any], min_items: int,
                    margin: float) -> dict[str, Any]:
    per_verdict: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for reviewer, kind, verdict, n in verdicts:
        per_verdict[reviewer][(kind, verdict)] = n
    active = dict(hours)
    times: dict[str, list[float]] = defaultdict(list)
    for reviewer, seconds in handle:
        times[reviewer].append(seconds)
    activities = [reviewers.ReviewerActivity(r, v, active.get(r, 0), tuple(times.get(r, ())))
                  for r, v in per_verdict.items()]
    figures, matrix = reviewers.reviewer_figures(activities, (vote for _key, vote in votes), min_items, margin)
    return {
        "by_reviewer": [{
            "reviewer_id": f.reviewer_id,
            "reviews": f.reviews,
            "reviews_by_kind": dict(f.reviews_by_kind),
            "active_hours": f.active_hours,
            "reviews_per_active_hour": f.reviews_per_active_hour,
            "median_handle_seconds": {"value": f.median_handle_seconds, "n": f.handle_time_reviews},
            "override_rate": share_json(f.override_rate),
            "agreement": {**share_json(f.agreement), "items": f.agreement_items},
            "peer_agreement": share_json(f.peer_agreement),
            "dissent": f.dissent,
        } for f in figures],
        "agreement_matrix": {"reviewers": list(matrix.reviewers),
                             "shared_items": [list(row) for row in matrix.shared],
                             "agreed_items": [list(row) for row in matrix.agreed],
                             "agreement": [list(row) for row in matrix.agreement]},
        "dissent_rule": {"min_items": min_items, "margin": margin, "level": reviewers.DISSENT_LEVEL},
    }
