"""Overrides family: override_count, override_error_delta, harmful_override_rate, cost_avoided.

An override is a decision of the window with an outcome whose final verdict
(as of now) is edit or reject. Outcome costs are taken with their defaults
applied when the KPI is computed (`agent_error_cost_with_default`).
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.kpis.rates import ratio

AGENT_OWN_VERDICTS = ("auto", "approve")


def agent_error_cost_with_default(final_verdict: str, error_cost: float | None,
                                  agent_error_cost: float | None) -> float:
    """agent_error_cost as given; else error_cost (default 0) when the final action was the agent's
    own (final verdict auto or approve), else 0. Evaluated from the final verdict at KPI time."""
    if agent_error_cost is not None:
        return agent_error_cost
    if final_verdict in AGENT_OWN_VERDICTS:
        return error_cost or 0.0
    return 0.0


@dataclass(frozen=True)
class OverrideSums:
    """Counts and cost sums over overridden decisions with an outcome."""

    count: int = 0
    agent_wrong: int = 0  # not agent_correct
    final_wrong: int = 0  # not final_correct
    harmful: int = 0  # agent_correct and not final_correct
    agent_error_cost: float = 0.0  # with its default applied
    error_cost: float = 0.0  # with its default (0) applied

    def merge(self, other: OverrideSums) -> OverrideSums:
        """The sums of both sets together."""
        return OverrideSums(
            self.count + other.count,
            self.agent_wrong + other.agent_wrong,
            self.final_wrong + other.final_wrong,
            self.harmful + other.harmful,
            self.agent_error_cost + other.agent_error_cost,
            self.error_cost + other.error_cost,
        )


def override_count(sums: OverrideSums) -> int:
    """Decisions of the window with an outcome whose final verdict is edit or reject.

    Unit: count. Empty window: 0.
    """
    return sums.count


def override_error_delta(sums: OverrideSums) -> float | None:
    """Over overrides: mean(not agent_correct) - mean(not final_correct).

    Positive means humans fixed more than they broke. Unit: ratio in [-1, 1].
    None when override_count is 0.
    """
    if sums.count == 0:
        return None
    return sums.agent_wrong / sums.count - sums.final_wrong / sums.count


def harmful_override_rate(sums: OverrideSums) -> float | None:
    """Over overrides: share with agent_correct and not final_correct.

    Unit: ratio in [0, 1]. None when override_count is 0.
    """
    return ratio(sums.harmful, sums.count)


def cost_avoided(sums: OverrideSums) -> float | None:
    """Over overrides: sum of agent_error_cost - sum of error_cost (defaults applied).

    Unit: currency. None when override_count is 0.
    """
    if sums.count == 0:
        return None
    return sums.agent_error_cost - sums.error_cost
