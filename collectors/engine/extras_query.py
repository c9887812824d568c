"""SQL of the figures beyond the contract: reliability bins, verdict and reason counts, escalation
steps and per-reviewer activity.

SQLAlchemy Core, identical on SQLite and PostgreSQL; counts, sums, distinct
hours and per-decision step counts run in the database, grouped by slice keys
(the decision's, as in the report) or by reviewer. Only handling times come
back raw, for an exact median. Nothing here sorts text (PostgreSQL collations
are not code-point order); callers sort in Python. Agreement votes come from
`collectors.engine.query.agreement_votes`, the same units as agreement_alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from collectors.engine.query import _keys, _slice_expression  # slice-key expressions (segment JSON paths)
from collectors.kpis.breakdowns import DECIDING_KINDS
from collectors.store.models import Decision, DecisionState, Review

Key = tuple[str | None, ...]
HOUR_US = 3_600_000_000

_D = Decision.__table__
_S = DecisionState.__table__
_R = Review.__table__


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


def reliability_counts(conn: Connection, start_us: int, end_us: int,
                       by: Sequence[str]) -> list[tuple[Key, int, int, float, int]]:
    """(slice keys, confidence bin, decisions with an outcome, their confidence sum, agent correct)
    over the decisions proposed in [start, end) that have an outcome."""
    w = (
        select(*_keys(by, conn.dialect.name), _D.c.conf_bin, _D.c.confidence, _S.c.agent_correct)
        .select_from(_D.join(_S, _S.c.decision_seq == _D.c.seq))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us, _S.c.outcome_seq.is_not(None))
        .subquery("w")
    )
    group = [w.c[f"k{i}"] for i in range(len(by))]
    query = select(*group, w.c.conf_bin, func.count(), func.sum(w.c.confidence),
                   _count_if(w.c.agent_correct.is_(True))).group_by(*group, w.c.conf_bin)
    n = len(by)
    return [(tuple(r[:n]), int(r[n]), int(r[n + 1]), float(r[n + 2] or 0.0), int(r[n + 3]))
            for r in conn.execute(query)]


def deciding_reviews(conn: Connection, start_us: int, end_us: int,
                     by: Sequence[str]) -> list[tuple[Key, str, str, str | None, int]]:
    """(slice keys of the decision, kind, verdict, reason_code, reviews) over the primary and
    escalation reviews decided in [start, end), wherever their decision's proposed_at falls."""
    w = (
        select(*_keys(by, conn.dialect.name), _R.c.kind, _R.c.verdict, _R.c.reason_code)
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(_R.c.decided_at >= start_us, _R.c.decided_at < end_us, _R.c.kind.in_(DECIDING_KINDS))
        .subquery("w")
    )
    group = [w.c[f"k{i}"] for i in range(len(by))]
    query = (select(*group, w.c.kind, w.c.verdict, w.c.reason_code, func.count())
             .group_by(*group, w.c.kind, w.c.verdict, w.c.reason_code))
    n = len(by)
    return [(tuple(r[:n]), r[n], r[n + 1], r[n + 2], int(r[n + 3])) for r in conn.execute(query)]


def escalation_steps(conn: Connection, start_us: int, end_us: int,
                     by: Sequence[str]) -> list[tuple[Key, int, int, int]]:
    """(slice keys, escalation steps, decisions, of which pending now) over the decisions proposed in
    [start, end); steps = max(escalate verdicts of primary/escalation reviews, escalation reviews),
    over every review in the store (`collectors.kpis.breakdowns.escalation_steps`)."""
    in_window = and_(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us)
    per_decision = (
        select(_R.c.decision_id,
               _count_if(and_(_R.c.verdict == "escalate", _R.c.kind.in_(DECIDING_KINDS))).label("verdicts"),
               _count_if(_R.c.kind == "escalation").label("reviews"))
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(in_window)
        .group_by(_R.c.decision_id)
        .subquery("e")
    )
    verdicts = func.coalesce(per_decision.c.verdicts, 0)
    reviews = func.coalesce(per_decision.c.reviews, 0)
    w = (
        select(*_keys(by, conn.dialect.name),
               case((verdicts >= reviews, verdicts), else_=reviews).label("steps"),
               _S.c.final_verdict)
        .select_from(_D.join(_S, _S.c.decision_seq == _D.c.seq)
                     .outerjoin(per_decision, per_decision.c.decision_id == _D.c.id))
        .where(in_window)
        .subquery("w")
    )
    group = [w.c[f"k{i}"] for i in range(len(by))]
    query = (select(*group, w.c.steps, func.count(), _count_if(w.c.final_verdict == "pending"))
             .group_by(*group, w.c.steps))
    n = len(by)
    return [(tuple(r[:n]), int(r[n]), int(r[n + 1]), int(r[n + 2])) for r in conn.execute(query)]


def _reviews(conn: Connection, filters: Mapping[str, str] | None) -> tuple[FromClause, list[ColumnElement[bool]]]:
    """FROM clause and conditions of the reviews whose decision matches `filters` (slice field ->
    value; none: every review, no join)."""
    if not filters:
        return _R, []
    return (_R.join(_D, _D.c.id == _R.c.decision_id),
            [_slice_expression(name, conn.dialect.name) == value for name, value in filters.items()])


def reviewer_verdicts(conn: Connection, start_us: int, end_us: int,
                      filters: Mapping[str, str] | None = None) -> list[tuple[str, str, str, int]]:
    """(reviewer, kind, verdict, reviews) over every review decided in [start, end) of the decisions
    matching `filters`."""
    source, matching = _reviews(conn, filters)
    query = (
        select(_R.c.reviewer_id, _R.c.kind, _R.c.verdict, func.count())
        .select_from(source)
        .where(_R.c.decided_at >= start_us, _R.c.decided_at < end_us, *matching)
        .group_by(_R.c.reviewer_id, _R.c.kind, _R.c.verdict)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]


def _hour_start(at: ColumnElement[Any]) -> ColumnElement[Any]:
    # floor to the clock hour; ((x % h) + h) % h keeps it a floor for instants before 1970 too,
    # where both engines' % takes the dividend's sign.
    h = literal(HOUR_US, BigInteger)
    return at - ((at % h) + h) % h


def reviewer_active_hours(conn: Connection, start_us: int, end_us: int,
                          filters: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """(reviewer, distinct UTC clock hours with a review decided in [start, end) of the decisions
    matching `filters`)."""
    source, matching = _reviews(conn, filters)
    query = (
        select(_R.c.reviewer_id, func.count(func.distinct(_hour_start(_R.c.decided_at))))
        .select_from(source)
        .where(_R.c.decided_at >= start_us, _R.c.decided_at < end_us, *matching)
        .group_by(_R.c.reviewer_id)
    )
    return [(r[0], int(r[1])) for r in conn.execute(query)]


def reviewer_handle_times(conn: Connection, start_us: int, end_us: int,
                          filters: Mapping[str, str] | None = None) -> list[tuple[str, float]]:
    """(reviewer, handling seconds) of the reviews decided in [start, end) of the decisions matching
    `filters` whose time is known: handle_seconds, else decided_at - claimed_at."""
    source, matching = _reviews(conn, filters)
    query = (
        select(_R.c.reviewer_id, _R.c.handle_seconds, (_R.c.decided_at - _R.c.claimed_at).label("claimed_us"))
        .select_from(source)
        .where(_R.c.decided_at >= start_us, _R.c.decided_at < end_us,
               (_R.c.handle_seconds.is_not(None)) | (_R.c.claimed_at.is_not(None)), *matching)
    )
    return [(r[0], float(r[1]) if r[1] is not None else int(r[2]) / 1_000_000) for r in conn.execute(query)]
