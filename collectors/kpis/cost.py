"""Cost family: cost_per_decision, and its two parts (beyond the contract) model and review cost per
decision, which add up to it.

A review's cost is its `cost` if given, else its handle seconds x the hourly
rate of its decision's queue / 3600 (section 2). The aggregate keeps review
seconds per queue unpriced, so a change of rates in config applies to every
window, past ones included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RateForQueue = Callable[[str | None], float]


@dataclass(frozen=True)
class CostSums:
    """Cost sums over a set of decisions: every review of theirs (any kind, whenever decided)."""

    decisions: int = 0
    review_cost: float = 0.0  # explicit review costs
    review_seconds: Mapping[str | None, float] = field(default_factory=dict)  # by decision queue
    model_cost: float = 0.0  # default 0 applied

    def merge(self, other: CostSums) -> CostSums:
        """The sums of both sets together."""
        seconds = dict(self.review_seconds)
        for queue, value in other.review_seconds.items():
            seconds[queue] = seconds.get(queue, 0.0) + value
        return CostSums(self.decisions + other.decisions, self.review_cost + other.review_cost,
                        seconds, self.model_cost + other.model_cost)


def review_cost(sums: CostSums, rate_for_queue: RateForQueue) -> float:
    """Explicit review costs plus review seconds priced at their queue's hourly rate / 3600."""
    priced = (seconds * rate_for_queue(queue) / 3600 for queue, seconds in sums.review_seconds.items())
    return math.fsum([sums.review_cost, *priced])


def cost_per_decision(sums: CostSums, rate_for_queue: RateForQueue) -> float | None:
    """(sum of review costs of the window's decisions + sum of their model_cost) / decisions.

    Unit: currency per decision. None when the window has no decisions.
    """
    if sums.decisions == 0:
        return None
    return (review_cost(sums, rate_for_queue) + sums.model_cost) / sums.decisions


def model_cost_per_decision(sums: CostSums) -> float | None:
    """Sum of the window's decisions' model_cost (absent: 0) / decisions: the agent's part of
    cost_per_decision. Unit: currency per decision. None when the window has no decisions."""
    return sums.model_cost / sums.decisions if sums.decisions else None


def review_cost_per_decision(sums: CostSums, rate_for_queue: RateForQueue) -> float | None:
    """Review costs of the window's decisions / decisions: the humans' part of cost_per_decision.
    Unit: currency per decision. None when the window has no decisions."""
    return review_cost(sums, rate_for_queue) / sums.decisions if sums.decisions else None
