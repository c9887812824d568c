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
    if row.get("handle_seconds") is not None:
        return float(row["handle_seconds"])
    if row.get("claimed_at") is not None:
        return (row["decided_at"] - row["claimed_at"]) / 1_000_000
    return 0.0


def apply_review(state: State, review: Mapping[str, Any]) -> None:
    """Fold one review row (timestamps in microseconds) into its decision's state."""
    if review.get("cost") is not None:
        state.review_cost_sum += float(review["cost"])
    else:
        state.review_seconds_sum += review_seconds(review)
    if review["kind"] == "audit" or review["verdict"] == "escalate":
        return
    key = (review["decided_at"], review["id"])
    if state.final_decided_at is None or key > (state.final_decided_at, state.final_review_id or ""):
        state.final_verdict = review["verdict"]
        state.final_decided_at, state.final_review_id = key


def apply_outcome(state: State, outcome: Mapping[str, Any]) -> None:
    """Fold one outcome row into its decision's state: a later (observed_at, seq) supersedes."""
    key = (outcome["observed_at"], outcome["seq"])
    if state.outcome_seq is not None and key < (state.outcome_observed_at or 0, state.outcome_seq):
        return
    state.outcome_seq = outcome["seq"]
    state.outcome_observed_at = outcome["observed_at"]
    state.agent_correct = bool(outcome["agent_correct"])
    state.final_correct = bool(outcome["final_correct"])
    state.error_cost = outcome.get("error_cost")
    state.agent_error_cost = outcome.get("agent_error_cost")
