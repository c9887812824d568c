"""The sequential drift detectors' only SQL: two per-decision streams per (model_version, action_type).

- Calibration error: a decision enters the stream with its latest outcome
  (decision_state, as of now): `confidence - agent_correct`, ordered by the
  outcome's observed_at and then its seq. Outcome seq (the store-wide chain
  position) is the cursor that tells a running detector which outcomes arrived
  since its last read, so a late outcome is fed when it arrives rather than
  lost behind the cursor.
- Confidence: every decision enters the stream when it is stored, without
  waiting for an outcome, ordered by proposed_at and then its seq; the
  decision's seq is the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select

from collectors.store.models import Decision, DecisionState, Outcome

_D = Decision.__table__
_S = DecisionState.__table__
_O = Outcome.__table__


class ErrorRow(NamedTuple):
    """One decision's calibration error sample."""

    model_version: str
    action_type: str
    confidence: float
    agent_correct: bool
    observed_at: int  # epoch us of the latest outcome
    outcome_seq: int


def last_outcome_seq(conn: Connection) -> int:
    """Seq of the newest stored outcome (0 for none): the cursor after a read."""
    return int(conn.execute(select(func.coalesce(func.max(_O.c.seq), 0))).scalar_one())


def latest_errors(conn: Connection, up_to_seq: int, until_us: int, per_slice: int,
                  since_us: int | None = None) -> list[ErrorRow]:
    """The newest `per_slice` calibration errors of each (model_version, action_type), in outcome order.

    Only outcomes with seq <= up_to_seq and observed_at <= until_us count, of decisions proposed
    at or after `since_us` when given (the replay of a detector at start-up, bounded per slice and
    in time: the proposed_at index keeps the scan to the lookback, whatever the store's age).
    """
    newest_first = func.row_number().over(
        partition_by=(_D.c.model_version, _D.c.action_type),
        order_by=(_S.c.outcome_observed_at.desc(), _S.c.outcome_seq.desc()),
    ).label("rank")
    inner = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _S.c.agent_correct,
               _S.c.outcome_observed_at, _S.c.outcome_seq, newest_first)
        .join_from(_D, _S, _S.c.decision_seq == _D.c.seq)
        .where(_S.c.outcome_seq.is_not(None), _S.c.outcome_seq <= up_to_seq,
               _S.c.outcome_observed_at <= until_us,
               *([_D.c.proposed_at >= since_us] if since_us is not None else []))
        .subquery()
    )
    query = (
        select(inner.c.model_version, inner.c.action_type, inner.c.confidence, inner.c.agent_correct,
               inner.c.outcome_observed_at, inner.c.outcome_seq)
        .where(inner.c.rank <= per_slice)
        .order_by(inner.c.outcome_observed_at, inner.c.outcome_seq)
    )
    return [ErrorRow(*row) for row in conn.execute(query)]


def new_errors(conn: Connection, after_seq: int, up_to_seq: int) -> list[ErrorRow]:
    """Calibration errors of the outcomes stored after `after_seq` (up to `up_to_seq`) that are
    their decision's latest outcome, in outcome order (a range scan on outcomes.seq)."""
    query = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _S.c.agent_correct,
               _S.c.outcome_observed_at, _S.c.outcome_seq)
        .select_from(_O)
        .join(_D, _D.c.id == _O.c.decision_id)
        .join(_S, _S.c.decision_seq == _D.c.seq)
        .where(_O.c.seq > after_seq, _O.c.seq <= up_to_seq, _S.c.outcome_seq == _O.c.seq)
        .order_by(_S.c.outcome_observed_at, _S.c.outcome_seq)
    )
    return [ErrorRow(*row) for row in conn.execute(query)]


def errors_between(conn: Connection, after_us: int, until_us: int, up_to_seq: int) -> list[ErrorRow]:
    """Calibration errors whose latest outcome was observed in (after, until] and stored by
    `up_to_seq`, in outcome order: the history a replay walks through in time."""
    query = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _S.c.agent_correct,
               _S.c.outcome_observed_at, _S.c.outcome_seq)
        .join_from(_D, _S, _S.c.decision_seq == _D.c.seq)
        .where(_S.c.outcome_seq.is_not(None), _S.c.outcome_seq <= up_to_seq,
               _S.c.outcome_observed_at > after_us, _S.c.outcome_observed_at <= until_us)
        .order_by(_S.c.outcome_observed_at, _S.c.outcome_seq)
    )
    return [ErrorRow(*row) for row in conn.execute(query)]


class ConfidenceRow(NamedTuple):
    """One decision's confidence sample."""

    model_version: str
    action_type: str
    confidence: float
    proposed_at: int  # epoch us
    seq: int


def last_decision_seq(conn: Connection) -> int:
    """Seq of the newest stored decision (0 for none): the confidence cursor after a read."""
    return int(conn.execute(select(func.coalesce(func.max(_D.c.seq), 0))).scalar_one())


def latest_confidences(conn: Connection, up_to_seq: int, until_us: int, per_slice: int,
                       since_us: int | None = None) -> list[ConfidenceRow]:
    """The newest `per_slice` confidences of each (model_version, action_type), in decision order.

    Only decisions with seq <= up_to_seq and proposed_at in [since_us, until_us] count (the
    replay of a detector at start-up, bounded per slice and in time).
    """
    newest_first = func.row_number().over(
        partition_by=(_D.c.model_version, _D.c.action_type),
        order_by=(_D.c.proposed_at.desc(), _D.c.seq.desc()),
    ).label("rank")
    inner = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _D.c.proposed_at, _D.c.seq, newest_first)
        .where(_D.c.seq <= up_to_seq, _D.c.proposed_at <= until_us,
               *([_D.c.proposed_at >= since_us] if since_us is not None else []))
        .subquery()
    )
    query = (
        select(inner.c.model_version, inner.c.action_type, inner.c.confidence, inner.c.proposed_at,
               inner.c.seq)
        .where(inner.c.rank <= per_slice)
        .order_by(inner.c.proposed_at, inner.c.seq)
    )
    return [ConfidenceRow(*row) for row in conn.execute(query)]


def new_confidences(conn: Connection, after_seq: int, up_to_seq: int) -> list[ConfidenceRow]:
    """Confidences of the decisions stored after `after_seq` (up to `up_to_seq`), in decision order
    (a range scan on decisions.seq)."""
    query = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _D.c.proposed_at, _D.c.seq)
        .where(_D.c.seq > after_seq, _D.c.seq <= up_to_seq)
        .order_by(_D.c.proposed_at, _D.c.seq)
    )
    return [ConfidenceRow(*row) for row in conn.execute(query)]


def confidences_between(conn: Connection, after_us: int, until_us: int, up_to_seq: int) -> list[ConfidenceRow]:
    """Confidences of the decisions proposed in (after, until] and stored by `up_to_seq`, in decision
    order (the proposed_at index): the history a replay walks through in time."""
    query = (
        select(_D.c.model_version, _D.c.action_type, _D.c.confidence, _D.c.proposed_at, _D.c.seq)
        .where(_D.c.seq <= up_to_seq, _D.c.proposed_at > after_us, _D.c.proposed_at <= until_us)
        .order_by(_D.c.proposed_at, _D.c.seq)
    )
    return [ConfidenceRow(*row) for row in conn.execute(query)]


def read_stream(engine: Engine, cursor: int | None, now_us: int, per_slice: int, lookback_us: int | None,
                last_seq: Callable[[Connection], int],
                latest: Callable[[Connection, int, int, int, int | None], Sequence[Any]],
                new: Callable[[Connection, int, int], Sequence[Any]]) -> tuple[Sequence[Any], int]:
    """The rows a detector has not seen yet and its cursor after them: with no cursor, the bounded
    start-up replay (`latest`: the newest `per_slice` per slice, within `lookback_us` of now when
    given); after that, what was stored since the cursor (`new`). Both detectors read this way:
    calibration errors (`last_outcome_seq`, `latest_errors`, `new_errors`) and confidences
    (`last_decision_seq`, `latest_confidences`, `new_confidences`)."""
    with engine.connect() as conn:
        newest = last_seq(conn)
        if cursor is None:
            since = now_us - lookback_us if lookback_us is not None else None
            rows = latest(conn, newest, now_us, per_slice, since)
        elif newest > cursor:
            rows = new(conn, cursor, newest)
        else:
            rows = []
    return rows, max(newest, cursor or 0)
