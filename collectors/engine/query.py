"""The engine's only SQL: windowed aggregates of the audit store, grouped by slice keys.

SQLAlchemy Core, identical on SQLite and PostgreSQL. Counts, sums and
confidence bins are computed in the database, grouped by (slice keys,
confidence bin, queue); only what exactness needs comes back raw: the
latencies of primary reviews (for exact percentiles) and the reviews of
decisions seen by two or more reviewers (for agreement). Nothing here sorts
text: "plain string order" is code-point order, which PostgreSQL collations
do not promise, so callers sort keys in Python.

Four queries per report (window, reference window, latencies, agreement),
each driven by an index: decisions.proposed_at, reviews.decided_at,
reviews.decision_id and the primary keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Float, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from collectors.engine.aggregates import DecisionGroup
from collectors.kpis.agreement import Vote
from collectors.kpis.overrides import AGENT_OWN_VERDICTS
from collectors.kpis.rates import INTERVENTION_VERDICTS
from collectors.store.models import Decision, DecisionState, Review

SLICE_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")
SEGMENT_PREFIX = "segment."

_D = Decision.__table__
_S = DecisionState.__table__
_R = Review.__table__


class SliceFieldError(ValueError):
    """A --by field that is not one of SLICE_FIELDS nor segment.KEY."""


def check_slice_fields(by: Sequence[str]) -> None:
    """Raise SliceFieldError unless every field can slice a report (and none repeats)."""
    seen: set[str] = set()
    for name in by:
        if name not in SLICE_FIELDS and not (name.startswith(SEGMENT_PREFIX) and len(name) > len(SEGMENT_PREFIX)):
            raise SliceFieldError(
                f"unknown --by field {name!r} (choose from {', '.join(SLICE_FIELDS)} or segment.KEY)")
        if name in seen:
            raise SliceFieldError(f"--by field {name!r} is given twice")
        seen.add(name)


def _slice_expression(name: str, dialect: str) -> ColumnElement[Any]:
    """The value of a slice field for a row of `decisions` (NULL for a missing segment key)."""
    if name in SLICE_FIELDS:
        return _D.c[name]
    return segment_value(name[len(SEGMENT_PREFIX):], dialect)


def segment_value(key: str, dialect: str) -> ColumnElement[Any]:
    """A decision's segment[key] as text, NULL when the key is absent; any key, on either engine.

    SQLite's JSON path ('$."key"') matches a key against its escaped JSON text, not its value: a
    key holding a '"', a backslash or a control character would miss its own value (or hit another
    key's: the two characters \\n match a newline), so such a key is looked up by equality over
    json_each instead, which compares decoded keys. PostgreSQL's ->> takes the key as a parameter.
    """
    if dialect == "sqlite" and _escaped_in_json(key):
        pairs = func.json_each(_D.c.segment).table_valued("key", "value")
        return select(pairs.c.value).where(pairs.c.key == key).scalar_subquery()
    return Decision.segment[key].as_string()


def _escaped_in_json(key: str) -> bool:
    """Whether JSON writes `key` other than as itself: it holds '"', a backslash or a control character."""
    return any(c in '"\\' or c < " " for c in key)


def _keys(by: Sequence[str], dialect: str) -> list[ColumnElement[Any]]:
    return [_slice_expression(name, dialect).label(f"k{i}") for i, name in enumerate(by)]


def _f(value: float) -> ColumnElement[Any]:
    return literal(value, Float)


def decision_groups(conn: Connection, start_us: int, end_us: int, by: Sequence[str]) -> list[DecisionGroup]:
    """Aggregates of the decisions proposed in [start, end), per (slice keys, confidence bin, queue).

    Final verdicts and outcomes come from decision_state (as of now); outcome
    defaults are applied here: error_cost 0, agent_error_cost as in
    `collectors.kpis.overrides.agent_error_cost_with_default`.
    """
    keys = _keys(by, conn.dialect.name)
    w = (
        select(*keys, _D.c.conf_bin, _D.c.queue, _D.c.confidence, _D.c.model_cost, _D.c.proposed_at,
               _S.c.final_verdict, _S.c.outcome_seq, _S.c.agent_correct, _S.c.final_correct,
               _S.c.error_cost, _S.c.agent_error_cost, _S.c.review_cost_sum, _S.c.review_seconds_sum)
        .select_from(_D.join(_S, _S.c.decision_seq == _D.c.seq))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us)
        .subquery("w")
    )
    has_outcome = w.c.outcome_seq.is_not(None)
    pending = w.c.final_verdict == "pending"
    override = and_(has_outcome, w.c.final_verdict.in_(INTERVENTION_VERDICTS))
    correct_value = case((w.c.agent_correct.is_(True), _f(1.0)), else_=_f(0.0))
    error = w.c.confidence - correct_value
    # PostgreSQL raises "underflow" when a product of non-zero doubles rounds to 0 (a subnormal
    # confidence squared): squares below 1e-300 count as 0, far below any reported digit.
    squared_error = case((func.abs(error) < _f(1e-150), _f(0.0)), else_=error * error)
    error_cost = func.coalesce(w.c.error_cost, _f(0.0))
    agent_error_cost = func.coalesce(
        w.c.agent_error_cost,
        case((w.c.final_verdict.in_(AGENT_OWN_VERDICTS), error_cost), else_=_f(0.0)),
    )

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.count(case((condition, 1)))

    def sum_if(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[float]:
        return func.sum(case((condition, value)))

    group_keys = [w.c[f"k{i}"] for i in range(len(by))]
    query = select(
        *group_keys, w.c.conf_bin, w.c.queue,
        func.count().label("decisions"),
        count_if(w.c.final_verdict != "pending").label("resolved"),
        count_if(w.c.final_verdict.in_(INTERVENTION_VERDICTS)).label("intervened"),
        count_if(w.c.final_verdict == "auto").label("auto"),
        count_if(pending).label("pending"),
        func.min(case((pending, w.c.proposed_at))).label("oldest_pending_us"),
        count_if(has_outcome).label("outcomes"),
        sum_if(has_outcome, w.c.confidence).label("confidence_sum"),
        count_if(and_(has_outcome, w.c.agent_correct.is_(True))).label("correct"),
        sum_if(has_outcome, squared_error).label("squared_error_sum"),
        count_if(override).label("overrides"),
        count_if(and_(override, w.c.agent_correct.is_(False))).label("override_agent_wrong"),
        count_if(and_(override, w.c.final_correct.is_(False))).label("override_final_wrong"),
        count_if(and_(override, w.c.agent_correct.is_(True), w.c.final_correct.is_(False)))
        .label("override_harmful"),
        sum_if(override, agent_error_cost).label("override_agent_error_cost"),
        sum_if(override, error_cost).label("override_error_cost"),
        func.sum(func.coalesce(w.c.model_cost, _f(0.0))).label("model_cost"),
        func.sum(w.c.review_cost_sum).label("review_cost"),
        func.sum(w.c.review_seconds_sum).label("review_seconds"),
    ).group_by(*group_keys, w.c.conf_bin, w.c.queue)

    groups = []
    n = len(by)
    for row in conn.execute(query):
        v = tuple(row)
        groups.append(DecisionGroup(
            key=tuple(v[:n]), conf_bin=int(v[n]), queue=v[n + 1],
            decisions=v[n + 2], resolved=v[n + 3], intervened=v[n + 4], auto=v[n + 5],
            pending=v[n + 6], oldest_pending_us=None if v[n + 7] is None else int(v[n + 7]),
            outcomes=v[n + 8], confidence_sum=float(v[n + 9] or 0.0), correct=v[n + 10],
            squared_error_sum=float(v[n + 11] or 0.0),
            overrides=v[n + 12], override_agent_wrong=v[n + 13], override_final_wrong=v[n + 14],
            override_harmful=v[n + 15], override_agent_error_cost=float(v[n + 16] or 0.0),
            override_error_cost=float(v[n + 17] or 0.0), model_cost=float(v[n + 18] or 0.0),
            review_cost=float(v[n + 19] or 0.0), review_seconds=float(v[n + 20] or 0.0),
        ))
    return groups


def primary_latencies(conn: Connection, start_us: int, end_us: int,
                      by: Sequence[str]) -> list[tuple[tuple[str | None, ...], str, int]]:
    """(slice keys of the decision, its risk class, decided_at - enqueued_at in us) of every primary
    review decided in [start, end), wherever its decision's proposed_at falls."""
    keys = _keys(by, conn.dialect.name)
    query = (
        select(*keys, _D.c.risk_class, (_R.c.decided_at - _R.c.enqueued_at).label("latency_us"))
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(_R.c.kind == "primary", _R.c.decided_at >= start_us, _R.c.decided_at < end_us)
    )
    n = len(by)
    return [(tuple(row[:n]), row[n], int(row[n + 1])) for row in conn.execute(query).fetchall()]


def agreement_votes(conn: Connection, start_us: int, end_us: int,
                    by: Sequence[str]) -> list[tuple[tuple[str | None, ...], Vote]]:
    """Every review (all kinds, whenever decided) of the decisions proposed in [start, end) that
    carry reviews from at least 2 distinct reviewers, with their decision's slice keys."""
    # A review whose decision also has a review by someone else: exactly the reviews of decisions
    # with >= 2 distinct reviewers. A semi-join on reviews.decision_id, no text sorting or DISTINCT.
    other = _R.alias("other")
    another_reviewer = (
        select(other.c.id)
        .where(other.c.decision_id == _R.c.decision_id, other.c.reviewer_id != _R.c.reviewer_id)
        .exists()
    )
    keys = _keys(by, conn.dialect.name)
    query = (
        select(*keys, _R.c.decision_id, _R.c.reviewer_id, _R.c.decided_at, _R.c.id, _R.c.verdict)
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us, another_reviewer)
    )
    n = len(by)
    return [(tuple(row[:n]), Vote(row[n], row[n + 1], int(row[n + 2]), row[n + 3], row[n + 4]))
            for row in conn.execute(query)]
