"""Rates family: decisions, intervention_rate, auto_rate, pending, pending_oldest_age_seconds.

Final verdicts are as of now (every review in the store, section 2b): a
decision is resolved unless its final verdict is pending.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERVENTION_VERDICTS = ("edit", "reject")


@dataclass(frozen=True)
class VerdictCounts:
    """Final-verdict counts of a set of decisions, and the oldest pending proposed_at (epoch us)."""

    decisions: int = 0
    resolved: int = 0
    intervened: int = 0  # final verdict edit or reject
    auto: int = 0
    pending: int = 0
    oldest_pending_us: int | None = None

    def merge(self, other: VerdictCounts) -> VerdictCounts:
        """The counts of both sets together (counts add, the oldest is the minimum)."""
        olds = [t for t in (self.oldest_pending_us, other.oldest_pending_us) if t is not None]
        return VerdictCounts(
            self.decisions + other.decisions,
            self.resolved + other.resolved,
            self.intervened + other.intervened,
            self.auto + other.auto,
            self.pending + other.pending,
            min(olds) if olds else None,
        )


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0 (never 0 or NaN)."""
    return None if denominator == 0 else numerator / denominator


def decisions(counts: VerdictCounts) -> int:
    """Number of decisions proposed in the window. Unit: count. Empty window: 0."""
    return counts.decisions


def intervention_rate(counts: VerdictCounts) -> float | None:
    """Resolved decisions with final verdict edit or reject / resolved decisions.

    Unit: ratio in [0, 1]. None when no decision is resolved.
    """
    return ratio(counts.intervened, counts.resolved)


def auto_rate(counts: VerdictCounts) -> float | None:
    """Resolved decisions with final verdict auto / resolved decisions.

    Unit: ratio in [0, 1]. None when no decision is resolved.
    """
    return ratio(counts.auto, counts.resolved)


def pending(counts: VerdictCounts) -> int:
    """Decisions of the window whose final verdict is pending now. Unit: count. Empty window: 0."""
    return counts.pending


def pending_oldest_age_seconds(counts: VerdictCounts, now_us: int) -> float | None:
    """now - the oldest pending proposed_at, in seconds (not clamped).

    Unit: seconds. None when nothing is pending.
    """
    if counts.oldest_pending_us is None:
        return None
    return (now_us - counts.oldest_pending_us) / 1_000_000
