"""One row per decision, with its derived state, audit sampling and final reason: the input of every
decision-support figure.

Decision support looks at individual decisions (a cost curve re-routes each one
at every candidate threshold; a bootstrap resamples them), so unlike the KPI
engine it reads rows, not aggregates: one query per window, joined to
decision_state (final verdict and outcome as of now), to the final review (its
reason code) and to the decision's audit reviews (was it drawn for audit, and
with which probability). A million decisions make a frame of about 250 MB.

Columns (NaN / None where unknown):
  seq, id, proposed_at (epoch us), agent_id, model_version, policy_version, risk_class,
  queue, action_type, confidence, route, model_cost (0 when absent),
  final_verdict ("pending", "auto", "approve", "edit", "reject"), final_decided_at,
  final_reason_code, has_outcome (bool), agent_correct / final_correct (float 1/0, NaN
  without outcome), error_cost (0 default with an outcome), agent_error_cost (the
  contract's default applied), agent_error_cost_given (bool), review_cost (all reviews of the
  decision, priced as in section 2), review_seconds,
  audited (bool: has an audit review), audit_probability (the review's, else the config's
  for the risk class; NaN when not audited), segment.KEY for every segment key present,
  policy_checks (list of {rule, result} or None).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import String, func, select, type_coerce

from collectors.kpis.overrides import AGENT_OWN_VERDICTS
from collectors.store.models import Change, Decision, DecisionState, Review

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

_D = Decision.__table__
_S = DecisionState.__table__
_R = Review.__table__
_C = Change.__table__
SEGMENT_PREFIX = "segment."


FrameKey = tuple[int, int, int]  # (id of the engine, start_us, end_us)
_SHARED: ContextVar[MutableMapping[FrameKey, pd.DataFrame] | None] = ContextVar("_shared_frames", default=None)


@contextmanager
def shared_frames(store: MutableMapping[FrameKey, pd.DataFrame] | None = None) -> Iterator[None]:
    """Within the block, read each window's frame once and hand every caller its own copy.

    `report --advice all` runs six parts over the same window; each asks for the frame,
    and reading it is most of their cost. Outside the block every call reads the store.
    `store` keeps the frames beyond the block (the dashboard passes one that forgets them
    after its cache TTL, so its five decision-support pages read a window once).
    """
    token = _SHARED.set({} if store is None else store)
    try:
        yield
    finally:
        _SHARED.reset(token)


def decision_frame(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                   filters: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The decisions proposed in [start, end) (optionally only those whose fields or segment keys
    equal `filters`, e.g. {"risk_class": "low", "segment.region": "EU"}), one row each."""
    shared = _SHARED.get()
    if shared is not None:
        key = (id(engine), start_us, end_us)
        if key not in shared:
            shared[key] = _read_frame(engine, config, start_us, end_us)
        return apply_filters(shared[key].copy(), filters or {})
    return apply_filters(_read_frame(engine, config, start_us, end_us), filters or {})


def _read_frame(engine: Engine, config: TowerConfig, start_us: int, end_us: int) -> pd.DataFrame:
    """Every decision of [start, end) with its derived columns (no filters)."""
    final = _R.alias("final_review")
    audits = (
        select(_R.c.decision_id, func.count().label("audits"),
               func.max(_R.c.audit_probability).label("audit_probability"))
        .where(_R.c.kind == "audit")
        .group_by(_R.c.decision_id)
        .subquery("audits")
    )
    query = (
        select(_D.c.seq, _D.c.id, _D.c.proposed_at, _D.c.agent_id, _D.c.model_version, _D.c.policy_version,
               _D.c.risk_class, _D.c.queue, _D.c.action_type, _D.c.confidence, _D.c.route, _D.c.model_cost,
               # Raw JSON text (parsed below with orjson, ~5x faster than the JSON type's json.loads).
               type_coerce(_D.c.segment, String).label("segment"),
               type_coerce(_D.c.policy_checks, String).label("policy_checks"),
               _S.c.final_verdict, _S.c.final_decided_at, final.c.reason_code.label("final_reason_code"),
               _S.c.outcome_seq, _S.c.agent_correct, _S.c.final_correct, _S.c.error_cost, _S.c.agent_error_cost,
               _S.c.review_cost_sum, _S.c.review_seconds_sum,
               audits.c.audits, audits.c.audit_probability)
        .select_from(
            _D.join(_S, _S.c.decision_seq == _D.c.seq)
            .outerjoin(final, final.c.id == _S.c.final_review_id)
            .outerjoin(audits, audits.c.decision_id == _D.c.id))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us)
        .order_by(_D.c.seq)
    )
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(query)]
    return _to_frame(rows, config)


_RAW_COLUMNS = ("seq", "id", "proposed_at", "agent_id", "model_version", "policy_version", "risk_class", "queue",
                "action_type", "confidence", "route", "model_cost", "segment", "policy_checks", "final_verdict",
                "final_decided_at", "final_reason_code", "outcome_seq", "agent_correct", "final_correct",
                "error_cost", "agent_error_cost", "review_cost", "review_seconds", "audits", "audit_probability")


def _to_frame(rows: Sequence[Any], config: TowerConfig) -> pd.DataFrame:
    raw = pd.DataFrame.from_records(rows, columns=list(_RAW_COLUMNS))
    raw["segment"] = _parse_json(raw["segment"])
    frame = raw.drop(columns=["segment", "outcome_seq", "audits"])
    frame["policy_checks"] = _parse_json(raw["policy_checks"])
    frame["model_cost"] = pd.to_numeric(raw["model_cost"], errors="coerce").fillna(0.0)
    add_outcome_flags(frame, raw)
    has_outcome = frame["has_outcome"].to_numpy()
    error_cost = pd.to_numeric(raw["error_cost"], errors="coerce").to_numpy(dtype=float)
    given = pd.to_numeric(raw["agent_error_cost"], errors="coerce").to_numpy(dtype=float)
    error_cost = np.where(has_outcome, np.nan_to_num(error_cost, nan=0.0), np.nan)
    own = raw["final_verdict"].isin(AGENT_OWN_VERDICTS).to_numpy()
    default = np.where(own, error_cost, 0.0)
    frame["error_cost"] = error_cost
    frame["agent_error_cost"] = np.where(has_outcome, np.where(np.isnan(given), default, given), np.nan)
    frame["agent_error_cost_given"] = ~np.isnan(given)
    # A review's cost is its `cost`, else its seconds at the hourly rate of the decision's queue (section 2).
    explicit = pd.to_numeric(raw["review_cost"], errors="coerce").fillna(0.0)
    seconds = pd.to_numeric(raw["review_seconds"], errors="coerce").fillna(0.0)
    rate = raw["queue"].map(config.hourly_rate.for_queue).astype(float)
    frame["review_cost"] = explicit + seconds * rate / 3600
    frame["review_seconds"] = seconds
    audited = raw["audits"].notna().to_numpy()
    frame["audited"] = audited
    configured = raw["risk_class"].map(
        lambda rc: config.audit_probability.get(rc, config.default_audit_probability)).to_numpy(dtype=float)
    stated = pd.to_numeric(raw["audit_probability"], errors="coerce").to_numpy(dtype=float)
    frame["audit_probability"] = np.where(audited, np.where(np.isnan(stated), configured, stated), np.nan)
    frame["confidence"] = frame["confidence"].astype(float)
    segments = pd.DataFrame.from_records([s if isinstance(s, dict) else {} for s in raw["segment"]],
                                         index=frame.index)
    for key in sorted(segments.columns, key=str):
        frame[SEGMENT_PREFIX + str(key)] = pd.Series(
            [v if isinstance(v, str) else None for v in segments[key]], index=frame.index, dtype=object)
    return frame


def add_outcome_flags(frame: pd.DataFrame, raw: pd.DataFrame) -> None:
    """Set has_outcome (bool) and agent_correct / final_correct (1.0 or 0.0, NaN without an outcome) on
    `frame` from the decision_state columns outcome_seq, agent_correct and final_correct of `raw`."""
    has_outcome = raw["outcome_seq"].notna().to_numpy()
    frame["has_outcome"] = has_outcome
    for column in ("agent_correct", "final_correct"):
        values = raw[column].to_numpy(dtype=object)
        frame[column] = np.where(has_outcome, [1.0 if v else 0.0 for v in values], np.nan)


def _parse_json(column: pd.Series) -> list[Any]:
    """JSON text (SQLite) or already-decoded values (psycopg decodes json itself) as Python values."""
    import orjson

    return [orjson.loads(v) if isinstance(v, str | bytes) else v for v in column]


def apply_filters(frame: pd.DataFrame, filters: Mapping[str, str]) -> pd.DataFrame:
    """Rows whose columns equal every filter value (a missing segment column matches nothing)."""
    mask = np.ones(len(frame), dtype=bool)
    for name, value in filters.items():
        if name not in frame.columns:
            return frame.iloc[0:0]
        mask &= (frame[name] == value).to_numpy()
    return frame if mask.all() else frame[mask].reset_index(drop=True)


def segment_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's segment.KEY columns, sorted."""
    return sorted(c for c in frame.columns if c.startswith(SEGMENT_PREFIX))


_CHANGE_COLUMNS = ("id", "changed_at", "actor", "kind", "scope", "before", "after", "reason")


def change_frame(engine: Engine, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
    """Change events (all, or those with changed_at in [start, end)), oldest first.

    Columns: id, changed_at (epoch us), actor, kind, scope (dict, {} when absent), before, after, reason.
    """
    query = select(_C.c.id, _C.c.changed_at, _C.c.actor, _C.c.kind, _C.c.scope, _C.c.before, _C.c.after,
                   _C.c.reason).order_by(_C.c.changed_at, _C.c.id)
    if start_us is not None:
        query = query.where(_C.c.changed_at >= start_us)
    if end_us is not None:
        query = query.where(_C.c.changed_at < end_us)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame.from_records(rows, columns=list(_CHANGE_COLUMNS))
    frame["scope"] = [s if isinstance(s, dict) else {} for s in frame["scope"]]
    for column in ("before", "after", "reason"):  # keep None as None (pandas would make it NaN)
        frame[column] = pd.Series([row[_CHANGE_COLUMNS.index(column)] for row in rows], dtype=object)
    return frame
