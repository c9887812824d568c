"""The audit store's tables (SQLAlchemy 2 ORM), identical on SQLite and PostgreSQL.

Timestamps are integer microseconds since the Unix epoch, UTC: exact, the
same on every engine, and cheap to bucket and subtract in SQL. Every event
row carries `seq`, its position in the store-wide hash chain, and `hash`,
the SHA-256 over the previous event's hash and this event's canonical JSON
(see `collectors.store.chain`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from collectors.store.types import JsonValue

Micros = BigInteger  # epoch microseconds, UTC
# A chain position as primary key: BIGINT, but INTEGER on SQLite, where only an "INTEGER PRIMARY KEY"
# is the table's rowid itself; any other type makes SQLite keep a second b-tree for the key, one
# more insert per event (migration 0004).
ChainSeq = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of the audit store."""


def _json() -> JSON:
    return JSON(none_as_null=True)


class Decision(Base):
    """An agent's proposed action."""

    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(ChainSeq, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String, unique=True)
    proposed_at: Mapped[int] = mapped_column(Micros, index=True)
    agent_id: Mapped[str] = mapped_column(String)
    model_version: Mapped[str] = mapped_column(String)
    policy_version: Mapped[str | None] = mapped_column(String)
    risk_class: Mapped[str] = mapped_column(String)
    queue: Mapped[str | None] = mapped_column(String)
    action_type: Mapped[str] = mapped_column(String)
    confidence: Mapped[float] = mapped_column(Float)
    conf_bin: Mapped[int] = mapped_column(SmallInteger)  # min(floor(10 x confidence), 9), set on ingest
    route: Mapped[str] = mapped_column(String)
    model_cost: Mapped[float | None] = mapped_column(Float)
    segment: Mapped[dict[str, str] | None] = mapped_column(_json())
    policy_checks: Mapped[list[Any] | None] = mapped_column(_json())
    extra: Mapped[dict[str, Any] | None] = mapped_column(_json())
    hash: Mapped[str] = mapped_column(String(64))


class Review(Base):
    """One human judgement on one decision."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_decided_at", "decided_at"),)

    seq: Mapped[int] = mapped_column(ChainSeq, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String, unique=True)
    decision_id: Mapped[str] = mapped_column(String, index=True)
    reviewer_id: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    enqueued_at: Mapped[int] = mapped_column(Micros)
    claimed_at: Mapped[int | None] = mapped_column(Micros)
    decided_at: Mapped[int] = mapped_column(Micros)
    verdict: Mapped[str] = mapped_column(String)
    reason_code: Mapped[str | None] = mapped_column(String)
    handle_seconds: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    audit_probability: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None] = mapped_column(_json())
    hash: Mapped[str] = mapped_column(String(64))


class Outcome(Base):
    """Ground truth about a decision, known later; the latest by observed_at wins."""

    __tablename__ = "outcomes"
    # observed_at first: the key is a random-looking digest, and outcomes arrive about in observed_at
    # order, so the unique index grows at its end (migration 0005 says why).
    __table_args__ = (UniqueConstraint("observed_at", "key", name="uq_outcomes_observed_at_key"),)

    seq: Mapped[int] = mapped_column(ChainSeq, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(64))  # digest of the content
    decision_id: Mapped[str] = mapped_column(String, index=True)
    observed_at: Mapped[int] = mapped_column(Micros)
    agent_correct: Mapped[bool] = mapped_column(Boolean)
    final_correct: Mapped[bool] = mapped_column(Boolean)
    error_cost: Mapped[float | None] = mapped_column(Float)
    agent_error_cost: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None] = mapped_column(_json())
    hash: Mapped[str] = mapped_column(String(64))


class Change(Base):
    """A threshold, policy or model change, marking time series."""

    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(ChainSeq, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String, unique=True)
    changed_at: Mapped[int] = mapped_column(Micros, index=True)
    actor: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    scope: Mapped[dict[str, str] | None] = mapped_column(_json())
    # any JSON value, scalars included: JsonValue keeps `1.0` as written on SQLite
    before: Mapped[Any | None] = mapped_column(JsonValue())
    after: Mapped[Any | None] = mapped_column(JsonValue())
    reason: Mapped[str | None] = mapped_column(String)
    extra: Mapped[dict[str, Any] | None] = mapped_column(_json())
    hash: Mapped[str] = mapped_column(String(64))


class DecisionState(Base):
    """Derived facts of one decision (section 2), kept up to date as its reviews and outcomes arrive.

    Not part of the audit log or the hash chain: it can always be rebuilt from
    the events (`collectors.store.derive.rebuild_state`).
    """

    __tablename__ = "decision_state"

    decision_seq: Mapped[int] = mapped_column(ChainSeq, primary_key=True, autoincrement=False)
    # auto, approve, edit, reject or pending
    final_verdict: Mapped[str] = mapped_column(String)
    # (decided_at, review id) of the review that set the final verdict
    final_decided_at: Mapped[int | None] = mapped_column(BigInteger)
    final_review_id: Mapped[str | None] = mapped_column(String)
    # the latest outcome by (observed_at, seq); raw fields, defaults applied when KPIs are computed
    outcome_seq: Mapped[int | None] = mapped_column(BigInteger)
    outcome_observed_at: Mapped[int | None] = mapped_column(BigInteger)
    agent_correct: Mapped[bool | None] = mapped_column(Boolean)
    final_correct: Mapped[bool | None] = mapped_column(Boolean)
    error_cost: Mapped[float | None] = mapped_column(Float)
    agent_error_cost: Mapped[float | None] = mapped_column(Float)
    # review cost: explicit costs, plus seconds of reviews without one (priced by the queue's rate)
    review_cost_sum: Mapped[float] = mapped_column(Float)
    review_seconds_sum: Mapped[float] = mapped_column(Float)


class ChainHead(Base):
    """The end of the hash chain: one row, updated in the same transaction as each batch."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


EVENT_TABLES = {
    "decision": Decision.__table__,
    "review": Review.__table__,
    "outcome": Outcome.__table__,
    "change": Change.__table__,
}


# ---- rollups (derived, rebuildable: collectors.store.rollup) -----------------------------------

# Pending decisions are few (the newest items): the oldest pending of a window is found through this.
Index("ix_decision_state_pending", DecisionState.decision_seq,
      sqlite_where=DecisionState.final_verdict == "pending",
      postgresql_where=DecisionState.final_verdict == "pending")

ROLLUP_BINS = 10
ROLLUP_COUNTS = ("decisions", "resolved", "intervened", "auto", "pending", "overrides",
                 "override_agent_wrong", "override_final_wrong", "override_harmful")
ROLLUP_BIN_COUNTS = ("pop", "n", "correct")  # per confidence bin: all decisions, with outcome, agent right
ROLLUP_BIN_SUMS = ("conf", "sqerr")  # per confidence bin, over decisions with an outcome
ROLLUP_SUMS = ("override_agent_error_cost", "override_error_cost", "model_cost", "review_cost",
               "review_seconds")
ROLLUP_INT_COLUMNS = ROLLUP_COUNTS + tuple(f"{p}_{b}" for p in ROLLUP_BIN_COUNTS for b in range(ROLLUP_BINS))
ROLLUP_FLOAT_COLUMNS = tuple(f"{p}_{b}" for p in ROLLUP_BIN_SUMS for b in range(ROLLUP_BINS)) + ROLLUP_SUMS
AGREEMENT_VERDICTS = ("approve", "edit", "reject", "escalate")


class RollupSlice(Base):
    """One combination of a decision's slice fields; rollup rows name it by id."""

    __tablename__ = "rollup_slices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String, unique=True)  # SHA-256 hex of the JSON array of the six values
    risk_class: Mapped[str] = mapped_column(String)
    queue: Mapped[str | None] = mapped_column(String)
    model_version: Mapped[str] = mapped_column(String)
    agent_id: Mapped[str] = mapped_column(String)
    action_type: Mapped[str] = mapped_column(String)
    route: Mapped[str] = mapped_column(String)


class KpiRollup(Base):
    """Additive statistics of the decisions proposed in one hour with one slice (as of now)."""

    __tablename__ = "kpi_rollup"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # floor(us / 3600e6)
    slice_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


_kpi_rollup: Table = KpiRollup.__table__  # type: ignore[assignment]
for _name in ROLLUP_INT_COLUMNS:
    _kpi_rollup.append_column(Column(_name, BigInteger, nullable=False))
for _name in ROLLUP_FLOAT_COLUMNS:
    _kpi_rollup.append_column(Column(_name, Float, nullable=False))


class AgreementRollup(Base):
    """Coincidence statistics of the agreement units (decisions with >= 2 reviewers) of one hour,
    slice and unit size: exact integers, so alpha from rollups equals alpha from raw reviews."""

    __tablename__ = "agreement_rollup"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    slice_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit_size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    units: Mapped[int] = mapped_column(BigInteger)
    matches: Mapped[int] = mapped_column(BigInteger)  # sum over units of sum_c n_uc (n_uc - 1)
    approve: Mapped[int] = mapped_column(BigInteger)
    edit: Mapped[int] = mapped_column(BigInteger)
    reject: Mapped[int] = mapped_column(BigInteger)
    escalate: Mapped[int] = mapped_column(BigInteger)


class RollupMeta(Base):
    """One row: whether the rollups describe every stored event (false for a store loaded before
    the rollups existed, until `hitl-tower rebuild-rollups`)."""

    __tablename__ = "rollup_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid: Mapped[bool] = mapped_column(Boolean)


# ---- alert history (collectors.alerts) ---------------------------------------------------------


class AlertRecord(Base):
    """One episode of a built-in alert (`hitl-tower alerts`): pending, then firing, then resolved.

    A pending episode whose condition clears before its `for` duration never was an
    alert and is deleted; firing and resolved episodes are kept as the alert history.
    """

    __tablename__ = "alert_history"
    __table_args__ = (Index("ix_alert_history_state", "state"),
                      Index("ix_alert_history_fingerprint", "fingerprint"),
                      Index("ix_alert_history_starts_at", "starts_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the sorted labels
    alertname: Mapped[str] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String)
    labels: Mapped[dict[str, str]] = mapped_column(_json())
    annotations: Mapped[dict[str, str]] = mapped_column(_json())
    state: Mapped[str] = mapped_column(String)  # pending, firing or resolved
    threshold: Mapped[float] = mapped_column(Float)
    active_at: Mapped[int] = mapped_column(Micros)  # first evaluation past the threshold
    starts_at: Mapped[int | None] = mapped_column(Micros)  # when it fired
    ends_at: Mapped[int | None] = mapped_column(Micros)  # when it resolved
    fired_value: Mapped[float | None] = mapped_column(Float)
    resolved_value: Mapped[float | None] = mapped_column(Float)  # null when the series vanished
    last_value: Mapped[float | None] = mapped_column(Float)
    worst_value: Mapped[float | None] = mapped_column(Float)  # furthest past the threshold while active
    evaluated_at: Mapped[int] = mapped_column(Micros)  # the last evaluation that saw it
    notified_state: Mapped[str | None] = mapped_column(String)  # last state delivered to a receiver
