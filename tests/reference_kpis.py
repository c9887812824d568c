"""Reference oracle for the KPIs of the contract (shared/spec/audit-events-and-kpis.md, section 3).

Plain, slow and deliberately naive: every KPI is recomputed from the contract's
text over a list of already-valid events, with no code shared with
`collectors`, so that the product's SQL-backed engine can be checked against
it. Only the standard library and numpy (for numpy's default percentile) are
used; Krippendorff's alpha is computed here from its coincidence-matrix
definition, in exact fractions.

Entry point: `reference_report(events, start, end, by=..., now=..., ...)`,
which returns the section-5 JSON object of `hitl-tower report --format json`.

READING choices (places where the contract leaves room; the most literal
reading was taken, and each is marked `# READING:` where it is applied):

R1  "Known decision" means a decision anywhere in the event list, whatever
    its position: a review or outcome listed before its decision still counts.
    Reviews and outcomes naming a decision absent from the list are ignored.
R2  Re-sent events are de-duplicated as the store would: decisions, reviews
    and changes by (type, id), keeping the first copy (a different content
    under the same id is a conflict and raises ValueError); an outcome equal
    to an earlier one (same parsed content, timestamps as instants, JSON null
    = absent) is a duplicate and is dropped, so "last written" for outcome
    ties means the last *stored* outcome.
R3  Final verdict, pending and outcome are "as of now" in the sense of "every
    event in the store": reviews and outcomes are used whatever their
    decided_at / observed_at, even later than `now` or the window's end.
R4  agreement_alpha uses every review (all kinds) of the window's decisions,
    whatever its decided_at, like final verdict; only the decisions must be
    in the window.
R5  error_cost and agent_error_cost are summed as given (after defaults);
    they are not gated by final_correct / agent_correct ("when wrong" is read
    as the producer's duty, not a filter).
R6  `sla` given as a dict replaces the shipped table: a risk class missing
    from it gets the 14400 s of "any other risk class". `hourly_rate` given as
    a dict uses "queues"[queue] when the decision's queue is listed there,
    else "default" (60.0 when "default" is missing); a decision with no queue
    takes the default rate.
R7  Reference window: [reference_start, reference_end). A missing
    reference_end defaults to `start`; a missing reference_start defaults to
    reference_end minus the length of [start, end).
R8  With `by` empty the report is not sliced and "rows" is an empty list;
    "total" is always the whole window.
R9  Row keys are tuples over the `by` fields; rows sort lexicographically by
    that tuple, each component in plain (code point) string order with null
    after every string. Reference-window decisions never create rows.
R10 pending_oldest_age_seconds = now - oldest pending proposed_at, as a float,
    not clamped (it may be negative if `now` precedes that decision).
R11 A review's fallback handle time decided_at - claimed_at is used as is,
    not clamped at 0; latency decided_at - enqueued_at likewise (the contract
    guarantees it is >= 0).
R12 Timestamps carry at most microsecond precision; extra fractional digits
    are truncated (the store's instants are microsecond-precise).
R13 psi and ece_drift of a row compare against the reference-window decisions
    with the same key values; the floor 0.0001 is applied to each share with
    no renormalisation afterwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import numpy as np

KPI_NAMES: tuple[str, ...] = (
    "decisions",
    "intervention_rate",
    "auto_rate",
    "pending",
    "pending_oldest_age_seconds",
    "ece",
    "brier",
    "psi",
    "ece_drift",
    "override_count",
    "override_error_delta",
    "harmful_override_rate",
    "cost_avoided",
    "agreement_alpha",
    "latency_p50_seconds",
    "latency_p90_seconds",
    "latency_p99_seconds",
    "sla_breach_rate",
    "cost_per_decision",
)

# Section 4: shipped defaults.
DEFAULT_SLA_SECONDS: dict[str, float] = {"low": 86400.0, "medium": 14400.0, "high": 3600.0, "critical": 900.0}
OTHER_SLA_SECONDS = 14400.0
DEFAULT_HOURLY_RATE = 60.0

PLAIN_SLICE_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")
SEGMENT_PREFIX = "segment."

N_BINS = 10
PSI_FLOOR = 0.0001

# Fields holding timestamps, per event type: compared as instants when deduplicating.
_TIMESTAMP_FIELDS: dict[str, tuple[str, ...]] = {
    "decision": ("proposed_at",),
    "review": ("enqueued_at", "claimed_at", "decided_at"),
    "outcome": ("observed_at",),
    "change": ("changed_at",),
}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------


def parse_time(value: str | datetime) -> datetime:
    """An RFC 3339 timestamp (zone required) as an aware UTC datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp without zone: {value!r}")
        return value.astimezone(UTC)
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp with zone: {value!r}")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    # READING (R12): keep microseconds, truncate any finer digits.
    micro = int((frac or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if sign == "-":
            offset = -offset
    local = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=timezone(offset)
    )
    return local.astimezone(UTC)


def seconds_between(later: datetime, earlier: datetime) -> float:
    """later - earlier in seconds (float)."""
    return (later - earlier) / timedelta(seconds=1)


def in_window(instant: datetime, start: datetime, end: datetime) -> bool:
    """Windows are half-open: [start, end)."""
    return start <= instant < end


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


def _present(raw: Mapping[str, Any], name: str) -> Any:
    """The field's value, or None when absent; JSON null counts as absent (section 2b)."""
    return raw.get(name)


@dataclass(frozen=True)
class Decision:
    """A decision event with its timestamps parsed; `raw` keeps every field for slicing."""

    id: str
    proposed_at: datetime
    confidence: float
    route: str
    risk_class: str
    queue: str | None
    model_cost: float
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_event(cls, raw: Mapping[str, Any]) -> Decision:
        model_cost = _present(raw, "model_cost")
        return cls(
            id=raw["id"],
            proposed_at=parse_time(raw["proposed_at"]),
            confidence=float(raw["confidence"]),
            route=raw["route"],
            risk_class=raw["risk_class"],
            queue=_present(raw, "queue"),
            model_cost=0.0 if model_cost is None else float(model_cost),  # default 0
            raw=raw,
        )


@dataclass(frozen=True)
class Review:
    """A review event with its timestamps parsed."""

    id: str
    decision_id: str
    reviewer_id: str
    kind: str
    verdict: str
    enqueued_at: datetime
    claimed_at: datetime | None
    decided_at: datetime
    handle_seconds: float | None
    cost: float | None

    @classmethod
    def from_event(cls, raw: Mapping[str, Any]) -> Review:
        claimed = _present(raw, "claimed_at")
        handle = _present(raw, "handle_seconds")
        cost = _present(raw, "cost")
        return cls(
            id=raw["id"],
            decision_id=raw["decision_id"],
            reviewer_id=raw["reviewer_id"],
            kind=raw["kind"],
            verdict=raw["verdict"],
            enqueued_at=parse_time(raw["enqueued_at"]),
            claimed_at=None if claimed is None else parse_time(claimed),
            decided_at=parse_time(raw["decided_at"]),
            handle_seconds=None if handle is None else float(handle),
            cost=None if cost is None else float(cost),
        )

    @property
    def order_key(self) -> tuple[datetime, str]:
        """ "Latest" means greatest (decided_at, id): ties go to the greater id (section 2b)."""
        return (self.decided_at, self.id)


@dataclass(frozen=True)
class Outcome:
    """An outcome event; `written` is its position among stored outcomes (for 'ties: last written')."""

    decision_id: str
    observed_at: datetime
    agent_correct: bool
    final_correct: bool
    error_cost: float
    agent_error_cost: float | None  # None: default, evaluated from the final verdict when used
    written: int

    @classmethod
    def from_event(cls, raw: Mapping[str, Any], written: int) -> Outcome:
        error_cost = _present(raw, "error_cost")
        agent_error_cost = _present(raw, "agent_error_cost")
        return cls(
            decision_id=raw["decision_id"],
            observed_at=parse_time(raw["observed_at"]),
            agent_correct=bool(raw["agent_correct"]),
            final_correct=bool(raw["final_correct"]),
            error_cost=0.0 if error_cost is None else float(error_cost),  # default 0
            agent_error_cost=None if agent_error_cost is None else float(agent_error_cost),
            written=written,
        )


def _normalised(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parsed content for 'same content' checks: nulls dropped, timestamps as instants."""
    stamps = _TIMESTAMP_FIELDS.get(raw.get("type", ""), ())
    return {
        name: (parse_time(value) if name in stamps else value)
        for name, value in raw.items()
        if value is not None
    }


@dataclass
class Store:
    """What the audit store would hold after ingesting the events (duplicates removed)."""

    decisions: dict[str, Decision]
    reviews: list[Review]
    outcomes: list[Outcome]


def load_store(events: Iterable[Mapping[str, Any]]) -> Store:
    """De-duplicate like the store (R2) and drop reviews/outcomes of unknown decisions (R1)."""
    by_id: dict[tuple[str, str], Mapping[str, Any]] = {}
    decisions: list[Mapping[str, Any]] = []
    reviews: list[Mapping[str, Any]] = []
    outcomes: list[dict[str, Any]] = []  # normalised, in written order
    outcome_raws: list[Mapping[str, Any]] = []
    for raw in events:
        kind = raw["type"]
        if kind == "outcome":
            norm = _normalised(raw)
            if norm not in outcomes:  # identical re-send: a duplicate, not a new row
                outcomes.append(norm)
                outcome_raws.append(raw)
            continue
        key = (kind, raw["id"])
        if key in by_id:
            if _normalised(by_id[key]) != _normalised(raw):
                raise ValueError(f"conflict: {kind} {raw['id']!r} re-sent with different content")
            continue
        by_id[key] = raw
        if kind == "decision":
            decisions.append(raw)
        elif kind == "review":
            reviews.append(raw)
        # change events never alter KPIs: kept out of the store model on purpose.
    known = {raw["id"]: Decision.from_event(raw) for raw in decisions}
    # READING (R1): "known" = present anywhere in the list.
    return Store(
        decisions=known,
        reviews=[Review.from_event(r) for r in reviews if r["decision_id"] in known],
        outcomes=[
            Outcome.from_event(r, written=i) for i, r in enumerate(outcome_raws) if r["decision_id"] in known
        ],
    )


# ---------------------------------------------------------------------------
# Derived facts (section 2 and 2b)
# ---------------------------------------------------------------------------

PENDING = None  # final verdict of a pending decision


def final_verdict(decision: Decision, reviews: Sequence[Review]) -> str | None:
    """Verdict of the latest primary/escalation review not saying escalate; 'auto' for an
    auto decision without one; None (pending) otherwise. Uses every review (R3)."""
    deciding = [r for r in reviews if r.kind in ("primary", "escalation") and r.verdict != "escalate"]
    if deciding:
        return max(deciding, key=lambda r: r.order_key).verdict
    # An auto decision whose only primary/escalation reviews say escalate keeps 'auto'.
    if decision.route == "auto":
        return "auto"
    return PENDING


def latest_outcome(outcomes: Sequence[Outcome]) -> Outcome | None:
    """Latest by observed_at; ties: the last written (R2: among stored outcomes)."""
    if not outcomes:
        return None
    return max(outcomes, key=lambda o: (o.observed_at, o.written))


def agent_error_cost(outcome: Outcome, verdict: str | None) -> float:
    """Given value, else error_cost when the final action was the agent's own (auto/approve), else 0."""
    if outcome.agent_error_cost is not None:
        return outcome.agent_error_cost
    return outcome.error_cost if verdict in ("auto", "approve") else 0.0


def hourly_rate_of(hourly_rate: float | Mapping[str, Any], queue: str | None) -> float:
    """The hourly rate of a decision's queue (R6)."""
    if not isinstance(hourly_rate, Mapping):
        return float(hourly_rate)
    queues = hourly_rate.get("queues") or {}
    if queue is not None and queue in queues:
        return float(queues[queue])
    return float(hourly_rate.get("default", DEFAULT_HOURLY_RATE))


def review_cost(review: Review, rate_per_hour: float) -> float:
    """cost if given; else handle seconds x hourly rate / 3600 (section 2)."""
    if review.cost is not None:
        return review.cost
    if review.handle_seconds is not None:
        handle = review.handle_seconds
    elif review.claimed_at is not None:
        handle = seconds_between(review.decided_at, review.claimed_at)  # READING (R11): not clamped
    else:
        handle = 0.0
    return handle * rate_per_hour / 3600.0


def sla_seconds(sla: Mapping[str, float], risk_class: str) -> float:
    """SLA of a risk class; 14400 s for a class not in the table (R6)."""
    return float(sla.get(risk_class, OTHER_SLA_SECONDS))


def confidence_bin(confidence: float) -> int:
    """min(floor(10 x confidence), 9) in double precision: 1.0 falls in the last bin."""
    return min(math.floor(10.0 * float(confidence)), N_BINS - 1)


# ---------------------------------------------------------------------------
# Pure statistics
# ---------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for an empty sequence (a zero denominator is null)."""
    if not values:
        return None
    return math.fsum(values) / len(values)


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator; None when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def expected_calibration_error(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """ECE over (confidence, agent_correct) pairs: sum over non-empty bins of
    (n_b / N) x |mean(correct)_b - mean(confidence)_b|; None when there are no pairs."""
    if not pairs:
        return None
    bins: dict[int, list[tuple[float, bool]]] = {}
    for conf, correct in pairs:
        bins.setdefault(confidence_bin(conf), []).append((conf, correct))
    total = len(pairs)
    terms = []
    for members in bins.values():
        accuracy = mean([1.0 if c else 0.0 for _, c in members])
        avg_conf = mean([conf for conf, _ in members])
        assert accuracy is not None and avg_conf is not None
        terms.append(len(members) / total * abs(accuracy - avg_conf))
    return math.fsum(terms)


def brier_score(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """Mean of (confidence - agent_correct)^2; None when there are no pairs."""
    return mean([(conf - (1.0 if correct else 0.0)) ** 2 for conf, correct in pairs])


def bin_shares(confidences: Sequence[float]) -> list[float]:
    """Share of the values in each of the 10 confidence bins (unfloored)."""
    counts = [0] * N_BINS
    for conf in confidences:
        counts[confidence_bin(conf)] += 1
    return [c / len(confidences) for c in counts]


def population_stability_index(reference: Sequence[float], current: Sequence[float]) -> float | None:
    """PSI = sum (q_i - p_i) ln(q_i / p_i), shares floored at 0.0001 (R13); None when
    either window has no decisions."""
    if not reference or not current:
        return None
    p = [max(s, PSI_FLOOR) for s in bin_shares(reference)]
    q = [max(s, PSI_FLOOR) for s in bin_shares(current)]
    return math.fsum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q))


def nominal_alpha(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's nominal alpha from the coincidence matrix (Krippendorff 2011).

    Each unit is the list of values it received (missing values simply left
    out). o_ck = sum over units of (number of ordered c-k pairs of values from
    different coders in the unit) / (m_u - 1); n_c = sum_k o_ck; n = sum_c n_c.
    alpha = 1 - D_o / D_e with D_o = sum_{c!=k} o_ck / n and
    D_e = sum_{c!=k} n_c n_k / (n (n - 1)). Units with fewer than 2 values are
    not pairable and left out. None when n < 2 or D_e = 0. Exact fractions so
    that D_e = 0 is an exact test, not a float accident.
    """
    coincidence: dict[tuple[Hashable, Hashable], Fraction] = {}
    for unit in units:
        values = list(unit)
        m_u = len(values)
        if m_u < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    coincidence[(c, k)] = coincidence.get((c, k), Fraction(0)) + Fraction(1, m_u - 1)
    marginals: dict[Hashable, Fraction] = {}
    for (c, _k), weight in coincidence.items():
        marginals[c] = marginals.get(c, Fraction(0)) + weight
    n = sum(marginals.values(), Fraction(0))
    if n < 2:
        return None
    observed = sum((w for (c, k), w in coincidence.items() if c != k), Fraction(0)) / n
    expected = sum(
        (marginals[c] * marginals[k] for c in marginals for k in marginals if c != k), Fraction(0)
    ) / (n * (n - 1))
    if expected == 0:
        return None
    return float(1 - observed / expected)


def percentile(values: Sequence[float], q: float) -> float | None:
    """numpy's default (linear interpolation between closest ranks); None when empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


# ---------------------------------------------------------------------------
# KPIs of one slice (section 3)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Per-decision facts as of now, shared by every slice."""

    store: Store
    reviews_of: Mapping[str, list[Review]]
    verdict_of: Mapping[str, str | None]
    outcome_of: Mapping[str, Outcome | None]


def derive_facts(store: Store) -> Facts:
    """Final verdict and outcome of every decision, from every stored event (R3)."""
    reviews_of: dict[str, list[Review]] = {d: [] for d in store.decisions}
    for review in store.reviews:
        reviews_of[review.decision_id].append(review)
    outcomes_of: dict[str, list[Outcome]] = {d: [] for d in store.decisions}
    for outcome in store.outcomes:
        outcomes_of[outcome.decision_id].append(outcome)
    return Facts(
        store=store,
        reviews_of=reviews_of,
        verdict_of={d: final_verdict(dec, reviews_of[d]) for d, dec in store.decisions.items()},
        outcome_of={d: latest_outcome(outcomes_of[d]) for d in store.decisions},
    )


def kpi_verdict_rates(decisions: Sequence[Decision], facts: Facts) -> dict[str, Any]:
    """decisions, intervention_rate and auto_rate (denominator: resolved decisions)."""
    verdicts = [facts.verdict_of[d.id] for d in decisions]
    resolved = [v for v in verdicts if v is not PENDING]
    return {
        "decisions": len(decisions),
        "intervention_rate": ratio(sum(v in ("edit", "reject") for v in resolved), len(resolved)),
        "auto_rate": ratio(sum(v == "auto" for v in resolved), len(resolved)),
    }


def kpi_pending(decisions: Sequence[Decision], facts: Facts, now: datetime) -> dict[str, Any]:
    """pending and pending_oldest_age_seconds (None when nothing is pending; R10)."""
    pending = [d for d in decisions if facts.verdict_of[d.id] is PENDING]
    oldest = min((d.proposed_at for d in pending), default=None)
    return {
        "pending": len(pending),
        "pending_oldest_age_seconds": None if oldest is None else seconds_between(now, oldest),
    }


def calibration_pairs(decisions: Sequence[Decision], facts: Facts) -> list[tuple[float, bool]]:
    """(confidence, agent_correct) of the decisions that have an outcome."""
    pairs = []
    for d in decisions:
        outcome = facts.outcome_of[d.id]
        if outcome is not None:
            pairs.append((d.confidence, outcome.agent_correct))
    return pairs


def kpi_calibration(
    decisions: Sequence[Decision], reference: Sequence[Decision], facts: Facts
) -> dict[str, Any]:
    """ece, brier, psi and ece_drift of a slice against the same slice of the reference window."""
    ece = expected_calibration_error(calibration_pairs(decisions, facts))
    reference_ece = expected_calibration_error(calibration_pairs(reference, facts))
    return {
        "ece": ece,
        "brier": brier_score(calibration_pairs(decisions, facts)),
        # psi uses all decisions of both windows, not only those with outcomes.
        "psi": population_stability_index(
            [d.confidence for d in reference], [d.confidence for d in decisions]
        ),
        "ece_drift": None if ece is None or reference_ece is None else ece - reference_ece,
    }


def kpi_overrides(decisions: Sequence[Decision], facts: Facts) -> dict[str, Any]:
    """override_count and the KPIs over overridden decisions with an outcome (R5)."""
    overridden: list[tuple[Outcome, str | None]] = []
    for d in decisions:
        outcome, verdict = facts.outcome_of[d.id], facts.verdict_of[d.id]
        if outcome is not None and verdict in ("edit", "reject"):
            overridden.append((outcome, verdict))
    count = len(overridden)
    agent_wrong = mean([0.0 if o.agent_correct else 1.0 for o, _ in overridden])
    final_wrong = mean([0.0 if o.final_correct else 1.0 for o, _ in overridden])
    harmful = sum(o.agent_correct and not o.final_correct for o, _ in overridden)
    avoided = math.fsum(agent_error_cost(o, v) for o, v in overridden) - math.fsum(
        o.error_cost for o, _ in overridden
    )
    return {
        "override_count": count,
        "override_error_delta": None if count == 0 else agent_wrong - final_wrong,  # type: ignore[operator]
        "harmful_override_rate": ratio(harmful, count),
        "cost_avoided": None if count == 0 else avoided,
    }


def agreement_units(decisions: Sequence[Decision], facts: Facts) -> list[list[str]]:
    """One unit per decision reviewed by >= 2 distinct reviewers (all kinds, any time; R4):
    each reviewer's latest verdict by (decided_at, id), escalate included."""
    units = []
    for d in decisions:
        latest: dict[str, Review] = {}
        for review in facts.reviews_of[d.id]:
            held = latest.get(review.reviewer_id)
            if held is None or review.order_key > held.order_key:
                latest[review.reviewer_id] = review
        if len(latest) >= 2:
            units.append([r.verdict for r in latest.values()])
    return units


def kpi_agreement(decisions: Sequence[Decision], facts: Facts) -> dict[str, Any]:
    """agreement_alpha: Krippendorff's nominal alpha over the slice's units."""
    return {"agreement_alpha": nominal_alpha(agreement_units(decisions, facts))}


def kpi_latency(primaries: Sequence[Review], facts: Facts, sla: Mapping[str, float]) -> dict[str, Any]:
    """Latency percentiles and sla_breach_rate over primary reviews decided in the window."""
    latencies = [seconds_between(r.decided_at, r.enqueued_at) for r in primaries]
    breaches = sum(
        latency > sla_seconds(sla, facts.store.decisions[r.decision_id].risk_class)  # strictly greater
        for r, latency in zip(primaries, latencies)
    )
    return {
        "latency_p50_seconds": percentile(latencies, 50),
        "latency_p90_seconds": percentile(latencies, 90),
        "latency_p99_seconds": percentile(latencies, 99),
        "sla_breach_rate": ratio(breaches, len(latencies)),
    }


def kpi_cost(
    decisions: Sequence[Decision], facts: Facts, hourly_rate: float | Mapping[str, Any]
) -> dict[str, Any]:
    """cost_per_decision: review costs (every kind, whenever decided) + model costs, per decision."""
    if not decisions:
        return {"cost_per_decision": None}
    costs: list[float] = []
    for d in decisions:
        rate = hourly_rate_of(hourly_rate, d.queue)
        costs.extend(review_cost(r, rate) for r in facts.reviews_of[d.id])
        costs.append(d.model_cost)
    return {"cost_per_decision": math.fsum(costs) / len(decisions)}


def slice_kpis(
    decisions: Sequence[Decision],
    primaries: Sequence[Review],
    reference: Sequence[Decision],
    facts: Facts,
    *,
    now: datetime,
    hourly_rate: float | Mapping[str, Any],
    sla: Mapping[str, float],
) -> dict[str, Any]:
    """Every KPI of section 3 for one slice, keyed in KPI_NAMES order."""
    values: dict[str, Any] = {}
    values.update(kpi_verdict_rates(decisions, facts))
    values.update(kpi_pending(decisions, facts, now))
    values.update(kpi_calibration(decisions, reference, facts))
    values.update(kpi_overrides(decisions, facts))
    values.update(kpi_agreement(decisions, facts))
    values.update(kpi_latency(primaries, facts, sla))
    values.update(kpi_cost(decisions, facts, hourly_rate))
    assert set(values) == set(KPI_NAMES)
    return {name: values[name] for name in KPI_NAMES}


# ---------------------------------------------------------------------------
# Slicing and the report (section 2b, 3 and 5)
# ---------------------------------------------------------------------------


def slice_value(decision: Decision, by_field: str) -> str | None:
    """A decision's value for a slice field; None when absent (or a missing segment key)."""
    if by_field.startswith(SEGMENT_PREFIX):
        segment = _present(decision.raw, "segment") or {}
        return segment.get(by_field[len(SEGMENT_PREFIX) :])
    if by_field in PLAIN_SLICE_FIELDS:
        return _present(decision.raw, by_field)
    raise ValueError(f"cannot slice by {by_field!r}")


def row_sort_key(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    """Plain string order per component, nulls last (R9)."""
    return tuple((value is None, "" if value is None else value) for value in key)


def reference_bounds(
    start: datetime, end: datetime, reference_start: str | None, reference_end: str | None
) -> tuple[datetime, datetime]:
    """The reference window; by default the window of equal length ending at start (R7)."""
    ref_end = start if reference_end is None else parse_time(reference_end)
    ref_start = ref_end - (end - start) if reference_start is None else parse_time(reference_start)
    return ref_start, ref_end


def reference_report(
    events: list[dict],
    start: str,
    end: str,
    *,
    by: Sequence[str] = (),
    now: str,
    reference_start: str | None = None,
    reference_end: str | None = None,
    hourly_rate: float | dict = 60.0,
    sla: dict | None = None,
) -> dict:
    """The section-5 JSON object of `hitl-tower report`, computed naively from the contract."""
    by = list(by)
    for by_field in by:
        if not (by_field in PLAIN_SLICE_FIELDS or by_field.startswith(SEGMENT_PREFIX)):
            raise ValueError(f"cannot slice by {by_field!r}")
    w_start, w_end, at = parse_time(start), parse_time(end), parse_time(now)
    r_start, r_end = reference_bounds(w_start, w_end, reference_start, reference_end)
    sla_table = DEFAULT_SLA_SECONDS if sla is None else sla  # READING (R6): replaces, not merges
    facts = derive_facts(load_store(events))
    decisions_by_id = facts.store.decisions

    window = [d for d in decisions_by_id.values() if in_window(d.proposed_at, w_start, w_end)]
    reference = [d for d in decisions_by_id.values() if in_window(d.proposed_at, r_start, r_end)]
    primaries = [
        r for r in facts.store.reviews if r.kind == "primary" and in_window(r.decided_at, w_start, w_end)
    ]

    def kpis(keep: Any) -> dict[str, Any]:
        return slice_kpis(
            [d for d in window if keep(d)],
            [r for r in primaries if keep(decisions_by_id[r.decision_id])],
            [d for d in reference if keep(d)],
            facts,
            now=at,
            hourly_rate=hourly_rate,
            sla=sla_table,
        )

    def key_of(decision: Decision) -> tuple[str | None, ...]:
        return tuple(slice_value(decision, f) for f in by)

    rows = []
    if by:  # READING (R8): no --by, no rows
        keys = {key_of(d) for d in window} | {key_of(decisions_by_id[r.decision_id]) for r in primaries}
        for key in sorted(keys, key=row_sort_key):
            row: dict[str, Any] = dict(zip(by, key))
            row.update(kpis(lambda d, key=key: key_of(d) == key))
            rows.append(row)
    return {"start": start, "end": end, "by": by, "total": kpis(lambda d: True), "rows": rows}
