"""Breakdowns beyond the contract: verdicts, reason codes, escalation rate and escalation depth.

Every figure keeps its sample size next to it (`Share.n`, `Breakdown.n`), so a
reader can tell 2/3 from 2000/3000; a share over an empty sample is None.

- Verdict breakdown: primary reviews decided in the window, per verdict
  (approve, edit, reject, escalate; all four always listed).
- Reason-code breakdown: primary and escalation reviews decided in the window
  whose verdict is edit or reject (the reviews that change what is done), per
  reason_code (None when the review gave none), most frequent first.
- Escalation steps of a decision (every review in the store, as of now):
  max(escalate verdicts of its primary and escalation reviews, its
  escalation-kind reviews). A hand-off is usually recorded twice, as the
  escalate verdict that asks for it and the escalation review that answers
  it, so the max counts each level once where a sum would count it twice,
  and still counts a level recorded only one way (an escalation review with
  no recorded escalate verdict, or an escalate verdict not yet answered).
- Escalation rate: decisions of the window with at least one step / decisions
  of the window. Escalation depth: the distribution of steps over the
  escalated decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from collectors.kpis.rates import INTERVENTION_VERDICTS, ratio

VERDICTS = ("approve", "edit", "reject", "escalate")
DECIDING_KINDS = ("primary", "escalation")  # audit reviews never route nor change an item


@dataclass(frozen=True)
class Share:
    """count out of n, with value count / n (None when n is 0)."""

    count: int
    n: int

    @property
    def value(self) -> float | None:
        """count / n, or None for an empty sample."""
        return ratio(self.count, self.n)


@dataclass(frozen=True)
class BreakdownEntry:
    """One category of a breakdown: its label, count and share of the breakdown's n."""

    label: str | int | None
    count: int
    share: float | None
    by_verdict: Mapping[str, int] | None = None  # reason codes only: edit and reject counts


@dataclass(frozen=True)
class Breakdown:
    """Counts per category and their shares of n (the sum of the counts)."""

    n: int
    entries: tuple[BreakdownEntry, ...]


def verdict_breakdown(counts: Mapping[str, int]) -> Breakdown:
    """Primary reviews decided in the window per verdict, in the order approve, edit, reject, escalate.

    Unit: counts and ratios in [0, 1] summing to 1. Empty window: n 0, every share None.
    """
    n = sum(counts.get(v, 0) for v in VERDICTS)
    return Breakdown(n, tuple(BreakdownEntry(v, counts.get(v, 0), ratio(counts.get(v, 0), n))
                              for v in VERDICTS))


def reason_code_breakdown(counts: Mapping[tuple[str | None, str], int]) -> Breakdown:
    """Edit and reject reviews per reason code, from counts per (reason_code, verdict).

    Entries sort by count (highest first), then code in plain string order, the
    missing code (None) last. Unit: ratios in [0, 1]. Empty window: n 0, no entries.
    """
    per_code: dict[str | None, dict[str, int]] = {}
    for (code, verdict), count in counts.items():
        if verdict in INTERVENTION_VERDICTS and count:
            split = per_code.setdefault(code, dict.fromkeys(INTERVENTION_VERDICTS, 0))
            split[verdict] += count
    n = sum(sum(split.values()) for split in per_code.values())
    order = sorted(per_code, key=lambda c: (-sum(per_code[c].values()), c is None, c or ""))
    return Breakdown(n, tuple(
        BreakdownEntry(code, sum(per_code[code].values()), ratio(sum(per_code[code].values()), n),
                       dict(per_code[code]))
        for code in order))


def escalation_steps(escalate_verdicts: int, escalation_reviews: int) -> int:
    """Escalation steps of a decision: max(escalate verdicts, escalation-kind reviews) (see module doc)."""
    return max(escalate_verdicts, escalation_reviews)


def escalation_rate(depths: Mapping[int, int]) -> Share:
    """Decisions with at least one escalation step / decisions, from decisions per step count.

    Unit: ratio in [0, 1]. Empty window: Share(0, 0), value None.
    """
    return Share(sum(c for d, c in depths.items() if d > 0), sum(depths.values()))


@dataclass(frozen=True)
class DepthDistribution:
    """Escalated decisions per number of escalation steps, with mean and maximum."""

    breakdown: Breakdown
    mean: float | None
    max: int | None


def escalation_depth(depths: Mapping[int, int]) -> DepthDistribution:
    """Distribution of escalation steps over escalated decisions (steps >= 1), by increasing depth.

    Unit: counts, ratios in [0, 1] and steps. No escalated decision: n 0, mean and max None.
    """
    escalated = {d: c for d, c in depths.items() if d > 0 and c}
    n = sum(escalated.values())
    entries = tuple(BreakdownEntry(d, c, ratio(c, n)) for d, c in sorted(escalated.items()))
    mean = ratio(sum(d * c for d, c in escalated.items()), n)
    return DepthDistribution(Breakdown(n, entries), mean, max(escalated) if escalated else None)
