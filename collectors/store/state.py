"""Derived facts per decision (contract section 2), updated incrementally as events arrive.

A decision's final verdict is set by its latest (decided_at, review id)
primary or escalation review whose verdict is not `escalate`; its outcome is
the latest by (observed_at, write order). Both are "latest wins" rules, so
applying new events one by one in any order gives the same state as a cold
evaluation: that is what lets ingest keep this table current in
O(new events) instead of re-reading a decision's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PENDING = "pending"
AUTO = "auto"


@dataclass
class State:
    """The mutable derived state of one decision."""

    decision_seq: int
    final_verdict: str
    final_decided_at: int | None = None
    final_review_id: str | None = None
    outcome_seq: int | None = None
    outcome_observed_at: int | None = None
    agent_correct: bool | None = None
    final_correct: bool | None = None
    error_cost: float | None = None
    agent_error_cost: float | None = None
    review_cost_sum: float = 0.0
    review_seconds_sum: float = 0.0

    @classmethod
    def initial(cls, decision_seq: int, route: str) -> State:
        """A decision with no review yet: auto decisions are resolved as `auto`, others pending."""
        return cls(decision_seq, initial_verdict(route))

    def as_row(self) -> dict[str, Any]:
        """The decision_state row."""
        return dict(self.__dict__)


def initial_verdict(route: str) -> str:
    """The final verdict of a decision with no review yet: `auto` for auto decisions, else pending.

    (The writer's `_INITIAL_STATES` says the same in SQL, for a batch's new decisions.)
    """
    return AUTO if route == "auto" else PENDING


def review_seconds(row: Mapping[str, Any]) -> float:
    """Seconds of review time used to price a review without an explicit cost (section 2).

    handle_seconds if given, else decided_at - claimed_at if claimed_at is given, else 0.
    Timestamps are epoch microseconds.
    """
    return _seconds(row.get("handle_seconds"), row.get("claimed_at"), row["decided_at"])


def _seconds(handle_seconds: float | None, claimed_at: int | None, decided_at: int) -> float:
    if handle_seconds is not None:
        return float(handle_seconds)
    if claimed_at is not None:
        return (decided_at - claimed_at) / 1_000_000
    return 0.0


def apply_review(state: State, review_id: str, kind: str, verdict: str, decided_at: int,
                 claimed_at: int | None, handle_seconds: float | None, cost: float | None) -> None:
    """Fold one review (timestamps in microseconds) into its decision's state.

    Takes the review's fields rather than a row mapping: the writer calls it for every stored
    review, straight from its row values (`REVIEW_FIELDS` names them in order).
    """
    if cost is not None:
        state.review_cost_sum += float(cost)
    else:
        state.review_seconds_sum += _seconds(handle_seconds, claimed_at, decided_at)
    if kind == "audit" or verdict == "escalate":
        return
    if state.final_decided_at is None or (decided_at, review_id) > (state.final_decided_at,
                                                                     state.final_review_id or ""):
        state.final_verdict = verdict
        state.final_decided_at, state.final_review_id = decided_at, review_id


def apply_outcome(state: State, seq: int, observed_at: int, agent_correct: bool, final_correct: bool,
                  error_cost: float | None, agent_error_cost: float | None) -> None:
    """Fold one outcome into its decision's state: a later (observed_at, seq) supersedes.

    Takes the outcome's fields in `OUTCOME_FIELDS` order, as `apply_review` does.
    """
    if state.outcome_seq is not None and (observed_at, seq) < (state.outcome_observed_at or 0, state.outcome_seq):
        return
    state.outcome_seq = seq
    state.outcome_observed_at = observed_at
    state.agent_correct = bool(agent_correct)
    state.final_correct = bool(final_correct)
    state.error_cost = error_cost
    state.agent_error_cost = agent_error_cost


# The row fields `apply_review` and `apply_outcome` take, in their order.
REVIEW_FIELDS = ("id", "kind", "verdict", "decided_at", "claimed_at", "handle_seconds", "cost")
OUTCOME_FIELDS = ("seq", "observed_at", "agent_correct", "final_correct", "error_cost", "agent_error_cost")
