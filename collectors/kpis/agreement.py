"""Agreement family: agreement_alpha, Krippendorff's alpha for nominal data.

A unit is a decision of the window reviewed by at least 2 distinct reviewers
(reviews of every kind, whenever decided); each reviewer contributes one
value, the verdict of their latest review of the item by (decided_at, review
id), `escalate` included. With n_uc the number of values c in unit u and m_u
its number of values, the coincidence matrix has diagonal
o_cc = sum_u n_uc (n_uc - 1) / (m_u - 1) and marginals n_c = sum_u n_uc, so

    alpha = 1 - (n - 1) x (n - sum_c o_cc) / (n^2 - sum_c n_c^2)

(Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"). The
arithmetic is exact (integers and one Fraction), so a result of e.g. 0.743
is the correctly rounded value and "expected disagreement is 0" is an exact test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class Vote:
    """One review as agreement sees it."""

    decision_id: str
    reviewer_id: str
    decided_at: int
    review_id: str
    verdict: str


def agreement_units(votes: Iterable[Vote]) -> dict[str, list[str]]:
    """Decision id -> verdicts of its reviewers' latest reviews, for decisions with >= 2 reviewers.

    A reviewer's latest review of an item is the greatest (decided_at, review id),
    ids in plain string order.
    """
    latest: dict[str, dict[str, Vote]] = {}
    for vote in votes:
        held = latest.setdefault(vote.decision_id, {}).get(vote.reviewer_id)
        if held is None or (vote.decided_at, vote.review_id) > (held.decided_at, held.review_id):
            latest[vote.decision_id][vote.reviewer_id] = vote
    return {
        decision: [v.verdict for v in by_reviewer.values()]
        for decision, by_reviewer in latest.items()
        if len(by_reviewer) >= 2
    }


@dataclass(frozen=True)
class Coincidences:
    """Mergeable sufficient statistics of nominal alpha over a set of units.

    values: n_c, the number of pairable values of each category;
    matches: for each unit size m, sum over units of that size of sum_c n_uc (n_uc - 1);
    units: the number of pairable units.
    """

    values: Counter[Hashable] = field(default_factory=Counter)
    matches: Counter[int] = field(default_factory=Counter)
    units: int = 0

    @property
    def n(self) -> int:
        """Number of pairable values."""
        return sum(self.values.values())

    def merge(self, other: Coincidences) -> Coincidences:
        """The statistics of both sets of units (units must be distinct)."""
        return Coincidences(self.values + other.values, self.matches + other.matches,
                            self.units + other.units)


def coincidences(units: Iterable[Sequence[Hashable]]) -> Coincidences:
    """Coincidence statistics of units given as their lists of values; units with < 2 values are left out."""
    values: Counter[Hashable] = Counter()
    matches: Counter[int] = Counter()
    count = 0
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        per_value = Counter(unit)
        values.update(per_value)
        matches[m] += sum(k * (k - 1) for k in per_value.values())
        count += 1
    return Coincidences(values, matches, count)


def nominal_alpha(stats: Coincidences) -> float | None:
    """Krippendorff's nominal alpha: 1 - D_o / D_e from the coincidence statistics.

    Unit: coefficient in [-1, 1] (1 perfect agreement, 0 chance). None when fewer
    than 2 pairable values exist or the expected disagreement is 0 (one category only).
    """
    n = stats.n
    if n < 2:
        return None
    expected = n * n - sum(c * c for c in stats.values.values())  # sum over c != k of n_c n_k
    if expected == 0:
        return None
    diagonal = sum((Fraction(total, m - 1) for m, total in stats.matches.items()), Fraction(0))
    return float(1 - (n - 1) * (n - diagonal) / expected)


def agreement_alpha(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's nominal alpha over units given as their lists of values (see `nominal_alpha`).

    Unit: coefficient in [-1, 1]. None when fewer than 2 pairable values exist or all
    pairable values are equal (expected disagreement 0).
    """
    return nominal_alpha(coincidences(units))
