"""The interchange format of section 1 of the contract, declared once as data.

Both the fast line validator (`collectors.validate`) and the JSON Schema for
producers (`collectors.schema`) are derived from these tables, so the two can
never disagree about what a valid event is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Kind(str, Enum):
    """What a field holds; each kind has one checker in `collectors.validate`."""

    STRING = "string"
    TIMESTAMP = "timestamp"
    NUMBER = "number"
    BOOL = "bool"
    STR_MAP = "str_map"  # object of string to string
    POLICY_CHECKS = "policy_checks"  # list of {rule, result}
    ANY = "any"  # any JSON value


@dataclass(frozen=True)
class FieldSpec:
    """One field of one event type, with its constraints."""

    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    exclusive_minimum: bool = False
    description: str = ""
    max_length: int | None = None  # strings: at most this many characters (code points)


EventType = Literal["decision", "review", "outcome", "change"]

ROUTES = ("auto", "review", "shadow")
REVIEW_KINDS = ("primary", "escalation", "audit")
VERDICTS = ("approve", "edit", "reject", "escalate")
CHANGE_KINDS = ("threshold", "policy", "model", "other")
CHECK_RESULTS = ("pass", "fail", "warn")

_S, _T, _N, _B = Kind.STRING, Kind.TIMESTAMP, Kind.NUMBER, Kind.BOOL

#: The most characters an id or slice field may hold (the contract is silent; docs/events.md says why):
#: PostgreSQL cannot index a value over ~2700 bytes, and 256 characters of UTF-8 stay under it.
MAX_ID_LENGTH = 256
_ID = MAX_ID_LENGTH
#: The largest amount (cost, seconds) an event may state (the contract is silent; docs/events.md says why):
#: sums of amounts near the double's limit overflow to infinity in the KPIs and rollups.
MAX_AMOUNT = 1e12

DECISION_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", _S, True, max_length=_ID, description="unique per event type"),
    FieldSpec("proposed_at", _T, True, description="when the agent proposed the action"),
    FieldSpec("agent_id", _S, True, max_length=_ID, description="the agent that proposed the action"),
    FieldSpec("model_version", _S, True, max_length=_ID, description="model version behind the proposal"),
    FieldSpec("policy_version", _S, max_length=_ID, description="policy in force at decision time"),
    FieldSpec("risk_class", _S, True, max_length=_ID, description="e.g. low, medium, high, critical"),
    FieldSpec("queue", _S, max_length=_ID, description="review queue the item was routed to"),
    FieldSpec("action_type", _S, True, max_length=_ID, description="what the agent proposes to do, e.g. refund"),
    FieldSpec("confidence", _N, True, minimum=0.0, maximum=1.0,
              description="the agent's confidence that its proposal is correct"),
    FieldSpec("route", _S, True, choices=ROUTES,
              description="auto: executed with no human first; review: held for approval; "
              "shadow: humans act, the agent only recommends"),
    FieldSpec("model_cost", _N, minimum=0.0, maximum=MAX_AMOUNT, description="inference cost; default 0"),
    FieldSpec("segment", Kind.STR_MAP, description="subgroup attributes for fairness slices"),
    FieldSpec("policy_checks", Kind.POLICY_CHECKS, description="guardrail results at decision time"),
)

REVIEW_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", _S, True, max_length=_ID, description="unique per event type"),
    FieldSpec("decision_id", _S, True, max_length=_ID, description="must name a known decision"),
    FieldSpec("reviewer_id", _S, True, max_length=_ID, description="the human reviewer"),
    FieldSpec("kind", _S, True, choices=REVIEW_KINDS,
              description="audit: a post-hoc sample or overlap review; never changes the final action"),
    FieldSpec("enqueued_at", _T, True, description="when the item entered this reviewer's queue"),
    FieldSpec("claimed_at", _T, description="when the reviewer opened it"),
    FieldSpec("decided_at", _T, True, description="must be >= enqueued_at"),
    FieldSpec("verdict", _S, True, choices=VERDICTS, description="the reviewer's judgement"),
    FieldSpec("reason_code", _S, max_length=_ID, description="from the reason taxonomy"),
    FieldSpec("handle_seconds", _N, minimum=0.0, maximum=MAX_AMOUNT, description="active handling time"),
    FieldSpec("cost", _N, minimum=0.0, maximum=MAX_AMOUNT, description="cost of this review"),
    FieldSpec("audit_probability", _N, minimum=0.0, maximum=1.0, exclusive_minimum=True,
              description="probability this item was drawn for audit (used on audit reviews)"),
)

OUTCOME_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("decision_id", _S, True, max_length=_ID, description="a later outcome supersedes an earlier one"),
    FieldSpec("observed_at", _T, True, description="when the outcome was observed"),
    FieldSpec("agent_correct", _B, True,
              description="whether the agent's proposal was (or would have been) correct"),
    FieldSpec("final_correct", _B, True,
              description="whether what was actually done (after any human change) was correct"),
    FieldSpec("error_cost", _N, minimum=0.0, maximum=MAX_AMOUNT,
              description="cost of what was done, when wrong; default 0"),
    FieldSpec("agent_error_cost", _N, minimum=0.0, maximum=MAX_AMOUNT,
              description="cost the agent's proposal would have caused"),
)

CHANGE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", _S, True, max_length=_ID, description="unique per event type"),
    FieldSpec("changed_at", _T, True, description="when the change took effect"),
    FieldSpec("actor", _S, True, max_length=_ID, description="who made the change"),
    FieldSpec("kind", _S, True, choices=CHANGE_KINDS, description="what changed"),
    FieldSpec("scope", Kind.STR_MAP, description="where it applies; empty: everywhere"),
    FieldSpec("before", Kind.ANY, description="value before the change, e.g. 0.92"),
    FieldSpec("after", Kind.ANY, description="value after the change, e.g. 0.88"),
    FieldSpec("reason", _S, description="why"),
)

FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "decision": DECISION_FIELDS,
    "review": REVIEW_FIELDS,
    "outcome": OUTCOME_FIELDS,
    "change": CHANGE_FIELDS,
}

EVENT_TYPES: tuple[str, ...] = tuple(FIELDS)

#: The keys the contract names for each type, "type" included: any other key of an event is an extra.
KNOWN_KEYS: dict[str, frozenset[str]] = {
    etype: frozenset(spec.name for spec in specs) | {"type"} for etype, specs in FIELDS.items()
}
