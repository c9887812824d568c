"""Per-reviewer figures beyond the contract: throughput, handle time, override rate, agreement, dissent.

Over the reviews a reviewer decided in the window (by decided_at, every kind):

- reviews: how many, in total and per kind (primary, escalation, audit).
- active hours: distinct UTC clock hours ([hh:00, hh+1:00)) in which the
  reviewer decided at least one review of the window; reviews per active
  hour = reviews / active hours. A reviewer's idle hours do not dilute it,
  and a burst of 10 reviews in 20 minutes counts as 10 in one hour.
- median handle time: exact median (mean of the two middle values for an
  even count) of handle_seconds, else decided_at - claimed_at when claimed_at
  is given; reviews with neither are left out (not counted as 0, unlike
  review cost), and their number is the sample size.
- override rate: share of the reviewer's primary and escalation reviews with
  a verdict other than escalate whose verdict is edit or reject.

Agreement starts from the units of agreement_alpha: the window's decisions
(by proposed_at) reviewed by at least 2 distinct reviewers (every kind,
whenever decided), each reviewer's latest review of an item by (decided_at,
review id). Unlike alpha (where the contract counts `escalate` as a verdict),
a latest verdict of `escalate` is left out here: it hands the item to someone
else instead of judging it, so pairing it with the escalation reviewer's
verdict would make every escalation reviewer look like a dissenter (and every
reviewer who escalates often). For reviewers a and b, shared(a, b) is the
number of items both judged (latest verdict not escalate) and agreed(a, b)
those where their latest verdicts are equal. A reviewer's agreement is pooled over their
(item, other reviewer) pairs: sum_b agreed(a, b) / sum_b shared(a, b), i.e.
the per-peer shares averaged with weights by shared items, so one item shared
with a rare peer cannot swing it. The peers' agreement is the same pooled
share over every pair of reviewers not involving a. A reviewer is flagged as
dissenting when they share at least `min_items` items, the peers' pairs
number at least `min_items`, and even the upper end of the 95% Wilson
interval of their agreement is more than `margin` below the peers'. The
interval keeps a reviewer who happened to share 20 items with the dissenter
(and so agrees less) from being flagged on a short window; a real dissenter
is flagged once the sample supports it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

from collectors.kpis.agreement import Vote
from collectors.kpis.breakdowns import DECIDING_KINDS, Share
from collectors.kpis.calibration import wilson_interval
from collectors.kpis.rates import INTERVENTION_VERDICTS, ratio

REVIEW_KINDS = ("primary", "escalation", "audit")
DISSENT_MIN_ITEMS = 20
DISSENT_MARGIN = 0.2
DISSENT_LEVEL = 0.95  # of the Wilson interval whose upper end must clear the margin

Pair = tuple[str, str]  # (a, b) with a < b in plain string order


@dataclass(frozen=True)
class ReviewerActivity:
    """Aggregates of one reviewer's reviews decided in the window."""

    reviewer_id: str
    verdicts: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (kind, verdict) -> reviews
    active_hours: int = 0
    handle_seconds: tuple[float, ...] = ()  # known handling times only


def reviews_by_kind(activity: ReviewerActivity) -> dict[str, int]:
    """Reviews decided in the window per kind (every kind listed). Unit: counts."""
    counts = dict.fromkeys(REVIEW_KINDS, 0)
    for (kind, _verdict), n in activity.verdicts.items():
        counts[kind] = counts.get(kind, 0) + n
    return counts


def reviews_decided(activity: ReviewerActivity) -> int:
    """Reviews of every kind decided in the window. Unit: count. Empty window: 0."""
    return sum(activity.verdicts.values())


def reviews_per_active_hour(activity: ReviewerActivity) -> float | None:
    """Reviews decided / distinct clock hours with at least one. Unit: reviews per hour. None with no review."""
    return ratio(reviews_decided(activity), activity.active_hours)


def median_handle_seconds(activity: ReviewerActivity) -> float | None:
    """Exact median handling time of the reviews whose time is known. Unit: seconds. None when none is."""
    return statistics.median(activity.handle_seconds) if activity.handle_seconds else None


def override_rate(activity: ReviewerActivity) -> Share:
    """Edit or reject verdicts / primary and escalation reviews not escalated. Unit: ratio; None when empty."""
    deciding = {(k, v): n for (k, v), n in activity.verdicts.items() if k in DECIDING_KINDS and v != "escalate"}
    return Share(sum(n for (_k, v), n in deciding.items() if v in INTERVENTION_VERDICTS),
                 sum(deciding.values()))


def judged(units: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The units without `escalate` verdicts (handing an item on is no judgement of it), keeping
    those still judged by >= 2 reviewers."""
    kept = {d: {r: v for r, v in by.items() if v != "escalate"} for d, by in units.items()}
    return {d: by for d, by in kept.items() if len(by) >= 2}


def latest_verdicts(votes: Iterable[Vote]) -> dict[str, dict[str, str]]:
    """Decision id -> reviewer -> verdict of their latest review by (decided_at, id), for items with >= 2 reviewers."""
    latest: dict[str, dict[str, Vote]] = {}
    for vote in votes:
        held = latest.setdefault(vote.decision_id, {}).get(vote.reviewer_id)
        if held is None or (vote.decided_at, vote.review_id) > (held.decided_at, held.review_id):
            latest[vote.decision_id][vote.reviewer_id] = vote
    return {d: {r: v.verdict for r, v in by.items()} for d, by in latest.items() if len(by) >= 2}


@dataclass(frozen=True)
class PairCounts:
    """Items shared and agreed on by each pair of reviewers, and items per reviewer."""

    shared: Mapping[Pair, int] = field(default_factory=dict)
    agreed: Mapping[Pair, int] = field(default_factory=dict)
    items: Mapping[str, int] = field(default_factory=dict)


def pair_counts(units: Mapping[str, Mapping[str, str]]) -> PairCounts:
    """Pairwise shared and agreed items over units given as reviewer -> verdict (units with < 2 left out)."""
    shared: Counter[Pair] = Counter()
    agreed: Counter[Pair] = Counter()
    items: Counter[str] = Counter()
    for verdicts in units.values():
        if len(verdicts) < 2:
            continue
        items.update(verdicts.keys())
        for a, b in combinations(sorted(verdicts), 2):
            shared[a, b] += 1
            agreed[a, b] += verdicts[a] == verdicts[b]
    return PairCounts(dict(shared), dict(agreed), dict(items))


@dataclass(frozen=True)
class AgreementMatrix:
    """Reviewer-by-reviewer shared items, agreed items and agreement share (None when nothing shared).

    Symmetric; the diagonal is empty (0, 0, None): a reviewer is not paired with themselves.
    """

    reviewers: tuple[str, ...]
    shared: tuple[tuple[int, ...], ...]
    agreed: tuple[tuple[int, ...], ...]
    agreement: tuple[tuple[float | None, ...], ...]


def agreement_matrix(pairs: PairCounts) -> AgreementMatrix:
    """The matrix over reviewers sharing at least one item, in plain string order."""
    names = tuple(sorted(pairs.items))

    def cell(table: Mapping[Pair, int], a: str, b: str) -> int:
        return 0 if a == b else table.get((min(a, b), max(a, b)), 0)

    shared = tuple(tuple(cell(pairs.shared, a, b) for b in names) for a in names)
    agreed = tuple(tuple(cell(pairs.agreed, a, b) for b in names) for a in names)
    agreement = tuple(tuple(ratio(k, n) for k, n in zip(row_k, row_n)) for row_k, row_n in zip(agreed, shared))
    return AgreementMatrix(names, shared, agreed, agreement)


def _pair_totals(pairs: PairCounts) -> tuple[Counter[str], Counter[str], Share]:
    """Agreed and shared pairs per reviewer, and over every pair."""
    agreed: Counter[str] = Counter()
    shared: Counter[str] = Counter()
    for pair, n in pairs.shared.items():
        k = pairs.agreed.get(pair, 0)
        for name in pair:
            agreed[name] += k
            shared[name] += n
    return agreed, shared, Share(sum(pairs.agreed.values()), sum(pairs.shared.values()))


def reviewer_agreement(pairs: PairCounts, reviewer: str) -> Share:
    """Agreeing (item, other reviewer) pairs / such pairs of one reviewer. Unit: ratio; None when alone."""
    agreed, shared, _all = _pair_totals(pairs)
    return Share(agreed[reviewer], shared[reviewer])


def peer_agreement(pairs: PairCounts, reviewer: str) -> Share:
    """Agreeing pairs / pairs among the other reviewers (pairs not involving this one). None when none."""
    agreed, shared, every = _pair_totals(pairs)
    return Share(every.count - agreed[reviewer], every.n - shared[reviewer])


def is_dissenting(own: Share, peers: Share, items: int, min_items: int = DISSENT_MIN_ITEMS,
                  margin: float = DISSENT_MARGIN) -> bool:
    """True when the reviewer shares >= min_items items, peers have >= min_items pairs and
    the upper end of the reviewer's 95% Wilson interval is more than `margin` below the peers'."""
    if own.value is None or peers.value is None or items < min_items or peers.n < min_items:
        return False
    interval = wilson_interval(own.count, own.n, DISSENT_LEVEL)
    return interval is not None and interval[1] < peers.value - margin


@dataclass(frozen=True)
class ReviewerFigures:
    """Every figure of one reviewer, each with its sample size."""

    reviewer_id: str
    reviews: int
    reviews_by_kind: Mapping[str, int]
    active_hours: int
    reviews_per_active_hour: float | None
    median_handle_seconds: float | None
    handle_time_reviews: int
    override_rate: Share
    agreement: Share
    agreement_items: int
    peer_agreement: Share
    dissent: bool


def reviewer_figures(activities: Iterable[ReviewerActivity], votes: Iterable[Vote],
                     min_items: int = DISSENT_MIN_ITEMS, margin: float = DISSENT_MARGIN
                     ) -> tuple[list[ReviewerFigures], AgreementMatrix]:
    """Figures of every reviewer active in the window or sharing an item, in plain string order, and the matrix."""
    by_id = {a.reviewer_id: a for a in activities}
    pairs = pair_counts(judged(latest_verdicts(votes)))
    agreed, shared, every = _pair_totals(pairs)
    figures = []
    for name in sorted(set(by_id) | set(pairs.items)):
        activity = by_id.get(name, ReviewerActivity(name))
        own = Share(agreed[name], shared[name])
        peers = Share(every.count - own.count, every.n - own.n)
        items = pairs.items.get(name, 0)
        figures.append(ReviewerFigures(
            name, reviews_decided(activity), reviews_by_kind(activity), activity.active_hours,
            reviews_per_active_hour(activity), median_handle_seconds(activity),
            len(activity.handle_seconds), override_rate(activity), own, items, peers,
            is_dissenting(own, peers, items, min_items, margin)))
    return figures, agreement_matrix(pairs)
