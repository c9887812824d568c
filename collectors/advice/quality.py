"""Quality analytics: how often the agent's actions and the humans' verdicts were right, and what the
errors cost.

Outcome-based figures read an *evaluation sample*: every decision with an outcome, except auto
decisions that were not audited. Auto outcomes that arrive on their own (complaints, chargebacks)
are a biased sample of auto items, so, like the threshold advice, only audited auto outcomes count
and each weighs 1 / audit_probability; all other outcomes weigh 1. A weighted share's interval is a
Wilson interval on the effective sample size (sum w)^2 / sum w^2, and `rows` gives the unweighted
count behind it. Guardrails and model versions live in `guardrails` and `model_compare`.

Minimum sample of a flag. A Wilson bound or a z-test alone flags on almost nothing (0 right of 1 has
an upper bound of 0.79, below a team at 0.95), so each flag reuses the floor the tower already applies
to a flag of its kind, rather than a new number:
- a reviewer below the expected accuracy needs at least `DISSENT_MIN_ITEMS` (20) judged items, the
  floor of the Agreement page's dissenting reviewer (`collectors.kpis.reviewers`), the other flag
  of one person on a Wilson bound;
- a model version less accurate than stable (`model_compare`) and a guardrail whose failures that went
  through are wrong more often (`guardrails`) need at least `fairness.min_samples` (100) outcomes in
  each group compared: the floor below which fairness flags no segment gap and triage ranks no segment
  value, the other flags of a group of decisions against a reference.
Rows under a floor keep their figures, with `enough_samples` false. The report carries the floors as
`reviewer_min_items` and `min_samples`, and the tests' level as `significance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from collectors.advice.frame import decision_frame
from collectors.advice.stats import SIGNIFICANCE, share
from collectors.kpis.reviewers import DISSENT_MIN_ITEMS
from collectors.store.models import Decision, DecisionState, Review

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

_R = Review.__table__
_S = DecisionState.__table__
_D = Decision.__table__
WENT_THROUGH = ("auto", "approve")
HUMAN_VERDICTS = ("approve", "edit", "reject")
TOP_SHARE = 0.10  # error-cost concentration: the costliest 10% of errors


def quality_report(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                   filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every quality figure of the decisions proposed in [start, end), JSON-ready."""
    from collectors.advice import guardrails, model_compare  # they build on this module's shares

    frame = decision_frame(engine, config, start_us, end_us, filters)
    reviews = reviews_with_outcomes(engine, start_us, end_us)
    reviews = reviews[reviews["decision_id"].isin(frame["id"])]
    floor = config.fairness.min_samples
    return {
        "decisions": len(frame),
        "min_samples": floor,
        "reviewer_min_items": DISSENT_MIN_ITEMS,
        "significance": SIGNIFICANCE,
        "precision_recall": precision_recall(frame),
        "acceptance": acceptance(frame),
        "defects": defects(frame),
        "error_cost": error_cost(frame),
        "guardrails": guardrails.guardrail_table(frame, evaluation_weights(frame), floor),
        "gold_accuracy": gold_accuracy(reviews, DISSENT_MIN_ITEMS),
        "reviewer_accuracy": reviewer_accuracy(reviews, DISSENT_MIN_ITEMS),
        "model_versions": model_compare.compare_versions(frame, evaluation_weights(frame), floor),
    }


def evaluation_weights(frame: pd.DataFrame) -> np.ndarray:
    """Weight of each decision's outcome: 0 without an outcome or for an unaudited auto decision,
    1 / audit_probability for an audited auto decision, else 1."""
    has = frame["has_outcome"].to_numpy(dtype=bool)
    auto = (frame["final_verdict"] == "auto").to_numpy()
    audited = frame["audited"].to_numpy(dtype=bool)
    p = frame["audit_probability"].to_numpy(dtype=float)
    inverse = np.divide(1.0, p, out=np.zeros(len(p)), where=np.nan_to_num(p) > 0)
    return np.where(~has, 0.0, np.where(auto, np.where(audited, inverse, 0.0), 1.0))


def weighted_share(hits: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """share() of the weighted hit rate, on the effective sample size; `rows` counts weight > 0."""
    hits = np.nan_to_num(np.asarray(hits, dtype=float))
    weights = np.asarray(weights, dtype=float)
    total, squares = float(weights.sum()), float((weights ** 2).sum())
    if total <= 0:
        return {**share(0, 0), "rows": 0}
    rate = float((hits * weights).sum()) / total
    n_eff = total ** 2 / squares
    return {**share(rate * n_eff, n_eff), "value": rate, "rows": int((weights > 0).sum())}


def precision_recall(frame: pd.DataFrame) -> dict[str, Any]:
    """Precision = P(agent right | went through as proposed); recall = P(went through | agent right),
    over the evaluation sample; in total and per action type."""
    def both(part: pd.DataFrame) -> dict[str, Any]:
        w = evaluation_weights(part)
        through = part["final_verdict"].isin(WENT_THROUGH).to_numpy()
        right = part["agent_correct"].to_numpy(dtype=float) == 1.0
        return {"precision": weighted_share(right, np.where(through, w, 0.0)),
                "recall": weighted_share(through, np.where(right, w, 0.0))}

    return {"total": both(frame),
            "by_action_type": [{"action_type": str(k), **both(g)}
                               for k, g in frame.groupby("action_type", sort=True)]}


def acceptance(frame: pd.DataFrame) -> dict[str, Any]:
    """Business acceptance: among human-decided resolved decisions (approve, edit, reject), the share
    approved as proposed; in total and per action type."""
    human = frame[frame["final_verdict"].isin(HUMAN_VERDICTS)]

    def rate(part: pd.DataFrame) -> dict[str, Any]:
        return share(int((part["final_verdict"] == "approve").sum()), len(part))

    return {"total": rate(human),
            "by_action_type": [{"action_type": str(k), **rate(g)}
                               for k, g in human.groupby("action_type", sort=True)]}


def defects(frame: pd.DataFrame) -> dict[str, Any]:
    """Defect rate: share of the evaluation sample whose final action was wrong (final_correct 0),
    in total, per action type and per final reason code ("none" without one)."""
    w = evaluation_weights(frame)
    wrong = frame["final_correct"].to_numpy(dtype=float) == 0.0
    reason = frame["final_reason_code"].astype(object).where(frame["final_reason_code"].notna(), "none")

    def rows(keys: pd.Series, name: str) -> list[dict[str, Any]]:
        out = []
        for key in sorted(set(keys[w > 0].astype(str))):
            mask = (keys.astype(str) == key).to_numpy()
            out.append({name: key, **weighted_share(wrong[mask], w[mask])})
        return out

    return {"total": weighted_share(wrong, w), "by_action_type": rows(frame["action_type"], "action_type"),
            "by_reason_code": rows(reason, "reason_code")}


def error_cost(frame: pd.DataFrame) -> dict[str, Any]:
    """Severity-weighted error cost: (weighted) mean error_cost over the evaluation sample x 1000,
    in total, per risk class and per action type; plus the share of the total error cost carried by
    the costliest 10% of the errors (unweighted, over the sample's errors with a cost)."""
    w = evaluation_weights(frame)
    cost = np.nan_to_num(frame["error_cost"].to_numpy(dtype=float))

    def per_thousand(mask: np.ndarray) -> dict[str, Any]:
        total = float(w[mask].sum())
        return {"per_1000": 1000 * float((cost[mask] * w[mask]).sum()) / total if total > 0 else None,
                "rows": int((w[mask] > 0).sum())}

    def by(column: str) -> list[dict[str, Any]]:
        keys = frame[column].astype(str).to_numpy()
        return [{column: k, **per_thousand(keys == k)} for k in sorted(set(keys[w > 0]))]

    errors = np.sort(cost[(w > 0) & (cost > 0)])[::-1]
    top = max(1, int(np.ceil(TOP_SHARE * len(errors)))) if len(errors) else 0
    concentration = float(errors[:top].sum() / errors.sum()) if len(errors) else None
    return {"total": per_thousand(np.ones(len(frame), dtype=bool)), "by_risk_class": by("risk_class"),
            "by_action_type": by("action_type"),
            "concentration": {"top_share": TOP_SHARE, "errors": len(errors), "top_errors": top,
                              "cost_share": concentration}}


def reviews_with_outcomes(engine: Engine, start_us: int, end_us: int) -> pd.DataFrame:
    """Reviews (primary, escalation, audit) of the window's decisions that have an outcome, with the
    decision's agent_correct and final_correct: the gold items of reviewer accuracy."""
    query = (
        select(_R.c.decision_id, _R.c.reviewer_id, _R.c.kind, _R.c.verdict, _D.c.route, _D.c.action_type,
               _S.c.agent_correct, _S.c.final_correct)
        .select_from(_R.join(_D, _D.c.id == _R.c.decision_id).join(_S, _S.c.decision_seq == _D.c.seq))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us, _S.c.outcome_seq.is_not(None))
        .order_by(_R.c.seq)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame.from_records(rows, columns=["decision_id", "reviewer_id", "kind", "verdict", "route",
                                                     "action_type", "agent_correct", "final_correct"])
    frame["agent_correct"] = frame["agent_correct"].astype(bool)
    return frame


def judged_right(verdict: pd.Series, agent_correct: pd.Series) -> pd.Series:
    """A judgement is right when it approves a right proposal or edits/rejects a wrong one."""
    right = agent_correct.astype(bool)
    return ((verdict == "approve") & right) | (verdict.isin(("edit", "reject")) & ~right)


def _accuracy_table(reviews: pd.DataFrame, min_items: int) -> dict[str, Any]:
    """Per reviewer: accuracy with Wilson interval and `expected`, the team's rate standardised to the
    reviewer's mix of items (the team rate of each (route, action type) cell, averaged over the
    reviewer's items), so a reviewer of harder items is not flagged for their difficulty; flagged
    (`below_team`) only from `min_items` judged items on."""
    judged = reviews[reviews["verdict"].isin(HUMAN_VERDICTS)].reset_index(drop=True)
    ok = judged_right(judged["verdict"], judged["agent_correct"]).astype(float)
    team = share(int(ok.sum()), len(judged))
    cell_rate = ok.groupby([judged["route"], judged["action_type"]]).transform("mean")
    rows = []
    for reviewer, hits in ok.groupby(judged["reviewer_id"], sort=True):
        expected = float(cell_rate[hits.index].mean())
        row = {"reviewer_id": str(reviewer), **share(int(hits.sum()), len(hits)), "expected": expected}
        row["enough_samples"] = len(hits) >= min_items
        row["below_team"] = bool(row["enough_samples"] and row["high"] is not None and row["high"] < expected)
        rows.append(row)
    rows.sort(key=lambda r: (r["value"] if r["value"] is not None else 2.0, r["reviewer_id"]))
    return {"team": team, "rows": rows, "flagged": [r["reviewer_id"] for r in rows if r["below_team"]]}


def gold_accuracy(reviews: pd.DataFrame, min_items: int = DISSENT_MIN_ITEMS) -> dict[str, Any]:
    """Rubric adherence on gold items: audit reviews of decisions with a known outcome, per reviewer
    (escalate verdicts left out); flagged when the reviewer has at least `min_items` of them and
    the Wilson upper bound is below the team's rate standardised to the reviewer's items."""
    return _accuracy_table(reviews[reviews["kind"] == "audit"], min_items)


def reviewer_accuracy(reviews: pd.DataFrame, min_items: int = DISSENT_MIN_ITEMS) -> dict[str, Any]:
    """Did the primary reviewer's verdict match the truth: the same table over primary reviews."""
    return _accuracy_table(reviews[reviews["kind"] == "primary"], min_items)
