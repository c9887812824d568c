"""Review priority advice: which slices deserve more human attention now, ranked by the error cost an
extra review hour is expected to avoid there.

A slice is a (risk_class, action_type, model_version) with enough decisions, plus a segment value
inside it (e.g. segment.region = LATAM) when that value's intervention or defect rate is worse than
its slice's (its Wilson interval lies above the slice's rate). Two ways to spend more attention are priced:

  audit / review the auto-approved items (those no human sees now):
    e_auto (share of auto items the agent got wrong, from audited outcomes weighted 1/p, shrunk toward
    the action type's rate) x cost of an agent error x catch rate (share of agent errors humans fix
    on reviewed items of the action type) / review hours per item;
  a second look at human-decided items:
    e_final (share of human-decided items still wrong, shrunk likewise) x cost of a final error x the
    second-look catch rate (how often audit reviewers flag a wrong proposal on gold items) / hours.

The score is the better of the two, in currency per review hour; a score above the hourly rate means
the extra hour pays for itself. Signals (uncertainty, model-vs-rules disagreement, defect rate,
fairness gaps) explain the ranking; they do not enter the score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collectors.advice.frame import decision_frame
from collectors.advice.guardrails import failed_any
from collectors.advice.quality import (
    HUMAN_VERDICTS,
    evaluation_weights,
    judged_right,
    reviews_with_outcomes,
    weighted_share,
)
from collectors.advice.stats import share
from collectors.validate import format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

SLICE_FIELDS = ("risk_class", "action_type", "model_version")
PRIOR_WEIGHT = 20.0  # pseudo-outcomes of the action type's rate added to a slice's own (shrinkage)
MIN_OWN = 20  # fewer own errors or reviews than this: use the action type's cost or handling time
CONFIDENT = 0.8


def triage(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
           filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The top config.triage.top slices of [start, end) by expected cost avoided per review hour."""
    frame = decision_frame(engine, config, start_us, end_us, filters)
    reviews = reviews_with_outcomes(engine, start_us, end_us)
    reviews = reviews[reviews["decision_id"].isin(frame["id"])]
    result = rank_slices(frame, config, second_look_catch(reviews))
    # RFC 3339, as every other command's JSON gives its window
    return {"start": format_timestamp(start_us), "end": format_timestamp(end_us), "filters": dict(filters or {}),
            **result}


def second_look_catch(reviews: pd.DataFrame) -> float | None:
    """Share of wrong proposals that audit reviewers edit or reject (their sensitivity on gold items)."""
    gold = reviews[(reviews["kind"] == "audit") & reviews["verdict"].isin(HUMAN_VERDICTS)
                   & ~reviews["agent_correct"].astype(bool)]
    return float(judged_right(gold["verdict"], gold["agent_correct"]).mean()) if len(gold) else None


class _Data:
    """The frame's columns as arrays, and the per-action-type fallbacks of every estimate."""

    def __init__(self, frame: pd.DataFrame, catch2: float | None) -> None:
        self.frame = frame
        v = frame["final_verdict"].to_numpy(dtype=object)
        self.auto, self.human = v == "auto", np.isin(v, HUMAN_VERDICTS)
        self.resolved, self.intervened = v != "pending", np.isin(v, ("edit", "reject"))
        self.conf = frame["confidence"].to_numpy(dtype=float)
        self.w = evaluation_weights(frame)
        self.agent_wrong = frame["agent_correct"].to_numpy(dtype=float) == 0.0
        self.final_wrong = frame["final_correct"].to_numpy(dtype=float) == 0.0
        self.has = frame["has_outcome"].to_numpy(dtype=bool)
        self.agent_cost = np.nan_to_num(frame["agent_error_cost"].to_numpy(dtype=float))
        self.cost = np.nan_to_num(frame["error_cost"].to_numpy(dtype=float))
        self.hours = frame["review_seconds"].to_numpy(dtype=float) / 3600
        self.failed = failed_any(frame)
        self.audited = frame["audited"].to_numpy(dtype=bool)
        self.everything = np.arange(len(frame))
        self.fallback = {a: self.estimates(idx, None, catch2)
                         for a, idx in frame.groupby("action_type").indices.items()}
        self.overall = self.estimates(self.everything, None, catch2)

    def estimates(self, idx: np.ndarray, prior: dict[str, Any] | None, catch2: float | None) -> dict[str, Any]:
        """Error rates, costs, catch rate and hours of the items `idx`, shrunk toward / filled from `prior`."""
        def rate(mask: np.ndarray, wrong: np.ndarray, key: str) -> float | None:
            w = self.w[idx] * mask
            own, n = float((w * wrong[idx]).sum()), float(w.sum())
            rows = int((w > 0).sum())
            p = prior[key] if prior else None
            if p is None:
                return own / n if n > 0 else None
            return ((own / n if n > 0 else 0.0) * rows + PRIOR_WEIGHT * p) / (rows + PRIOR_WEIGHT)

        def mean(values: np.ndarray, mask: np.ndarray, key: str) -> float | None:
            if mask.sum() >= MIN_OWN or (prior is None and mask.any()):
                return float(values[mask].mean())
            return prior[key] if prior else None

        i = idx
        wrong_agent = self.has[i] & self.agent_wrong[i]
        caught = self.human[i] & wrong_agent
        return {
            "auto_error": rate(self.auto[i], self.agent_wrong, "auto_error"),
            "final_error": rate(self.human[i], self.final_wrong, "final_error"),
            "agent_error_cost": mean(self.agent_cost[i], wrong_agent, "agent_error_cost"),
            "final_error_cost": mean(self.cost[i], self.human[i] & self.has[i] & self.final_wrong[i],
                                     "final_error_cost"),
            "catch_rate": (prior["catch_rate"] if prior else
                           float((~self.final_wrong[i][caught]).mean()) if caught.any() else None),
            "hours": mean(self.hours[i], self.human[i] & (self.hours[i] > 0), "hours"),
            "second_catch": catch2,
        }


def rank_slices(frame: pd.DataFrame, config: TowerConfig, catch2: float | None) -> dict[str, Any]:
    """Score every candidate slice of the frame and return the best config.triage.top of them."""
    if frame.empty:
        return {"candidates": 0, "overall": None, "rows": []}
    data = _Data(frame, catch2)
    overall = _signals(data, data.everything)
    rows = []
    for key, idx in frame.groupby(list(SLICE_FIELDS), sort=True).indices.items():
        if len(idx) < config.triage.min_decisions:
            continue
        base = dict(zip(SLICE_FIELDS, (str(k) for k in key)))
        parent = _signals(data, idx)
        gaps = _segment_gaps(data, idx, parent, config)
        rows.append(_row(data, idx, base, parent, overall, gaps, config))
        for gap in gaps:
            sub = gap.pop("idx")
            rows.append(_row(data, sub, {**base, gap["segment"]: gap["value"]}, _signals(data, sub), overall,
                             [], config, parent=gap))
    rows = [r for r in rows if r["score"] is not None]
    rows.sort(key=lambda r: (-r["score"], -r["decisions"], sorted(r["slice"].items())))
    top = rows[: config.triage.top]
    for rank, row in enumerate(top, 1):
        row["rank"] = rank
    return {"candidates": len(rows), "second_look_catch": catch2, "prior_weight": PRIOR_WEIGHT,
            "overall": overall, "rows": top}


def _signals(data: _Data, idx: np.ndarray) -> dict[str, Any]:
    conf, auto, confident = data.conf[idx], data.auto[idx], data.conf[idx] >= CONFIDENT
    failed = data.failed[idx]
    return {
        "uncertainty": float(np.mean(1 - np.abs(2 * conf - 1))),
        "auto_share": share(int(auto.sum()), int(data.resolved[idx].sum())),
        "auto_failed_check": share(int((auto & failed).sum()), int(auto.sum())),
        "confident_failed_check": share(int((confident & failed).sum()), int(confident.sum())),
        "intervention_rate": share(int(data.intervened[idx].sum()), int(data.resolved[idx].sum())),
        "defect_rate": weighted_share(data.final_wrong[idx], data.w[idx]),
    }


def _segment_gaps(data: _Data, idx: np.ndarray, parent: dict[str, Any], config: TowerConfig) -> list[dict[str, Any]]:
    """Segment values inside the slice (with at least fairness.min_samples decisions) whose intervention or
    defect rate is worse than the slice's: their Wilson interval lies above the slice's rate."""
    floor = max(config.triage.min_decisions, config.fairness.min_samples)
    gaps = []
    for key in config.fairness.segment_keys:
        column = "segment." + key
        if column not in data.frame.columns:
            continue
        values = data.frame[column].to_numpy(dtype=object)[idx]
        for value in sorted({v for v in values if isinstance(v, str)}):
            sub = idx[values == value]
            if len(sub) < floor or len(sub) == len(idx):
                continue
            signals = _signals(data, sub)
            for name in ("intervention_rate", "defect_rate"):
                mine, theirs = signals[name], parent[name]
                if _above(mine, theirs["value"]):
                    gaps.append({"segment": column, "value": value, "rate": name, "segment_rate": mine["value"],
                                 "slice_rate": theirs["value"], "idx": sub})
                    break
    return gaps


def _row(data: _Data, idx: np.ndarray, slice_: dict[str, str], signals: dict[str, Any], overall: dict[str, Any],
         gaps: list[dict[str, Any]], config: TowerConfig, parent: dict[str, Any] | None = None) -> dict[str, Any]:
    action = slice_["action_type"]
    est = data.estimates(idx, data.fallback.get(action, data.overall), data.overall["second_catch"])
    if not data.auto[idx].any():
        est["auto_error"] = None  # the action type's rate would only describe other slices
    if not data.human[idx].any():
        est["final_error"] = None
    candidates: dict[str, float | None] = {}
    if data.auto[idx].any():
        candidates["audit_auto"] = _product(est["auto_error"], est["agent_error_cost"], est["catch_rate"])
    if data.human[idx].any():
        candidates["second_review"] = _product(est["final_error"], est["final_error_cost"], est["second_catch"])
    options = {k: v for k, v in candidates.items() if v is not None}
    hours = est["hours"] or data.overall["hours"]
    queue = pd.Series(data.frame["queue"].to_numpy(dtype=object)[idx]).mode(dropna=True)
    rate = config.hourly_rate.for_queue(str(queue.iloc[0]) if len(queue) else None)
    best = max(options, key=lambda k: options[k]) if options and hours else None
    score = options[best] / hours if best else None
    audited = share(int((data.audited[idx] & data.auto[idx]).sum()), int(data.auto[idx].sum()))
    return {
        "slice": slice_, "decisions": len(idx), "score": score, "option": best,
        "value_per_item": options.get(best) if best else None, "review_cost_per_item": hours * rate if hours else None,
        "hourly_rate": rate, "pays_off": bool(score is not None and score > rate),
        "signals": {**signals, "auto_audited": audited["value"], "estimates": est,
                    "fairness_gaps": [{k: v for k, v in g.items() if k != "idx"} for g in gaps]},
        "reasons": _reasons(signals, overall, est, gaps, parent),
        "recommendation": _recommend(best, slice_, options, hours, rate, audited["value"]),
    }


def _above(s: dict[str, Any], value: float | None) -> bool:
    """The share's interval lies above `value`."""
    return s["low"] is not None and value is not None and s["low"] > value


def _product(rate: float | None, cost: float | None, catch: float | None) -> float | None:
    """rate x cost x catch; 0 when the error rate is 0 (no error, so no cost to know); None when unknown."""
    if rate == 0:
        return 0.0
    return None if rate is None or cost is None or catch is None else rate * cost * catch


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def _reasons(s: dict[str, Any], overall: dict[str, Any], est: dict[str, Any], gaps: list[dict[str, Any]],
             parent: dict[str, Any] | None) -> list[str]:
    out = []
    if parent is not None:
        out.append(f"{parent['segment']}={parent['value']}: {parent['rate'].replace('_', ' ')} "
                   f"{_pct(parent['segment_rate'])} vs {_pct(parent['slice_rate'])} in its slice")
    if s["auto_failed_check"]["count"]:
        out.append(f"{_pct(s['auto_failed_check']['value'])} auto-approved with a failed guardrail "
                   f"({s['auto_failed_check']['count']} items)")
    d, o = s["defect_rate"], overall["defect_rate"]
    if _above(d, o["value"]):
        out.append(f"defect rate {_pct(d['value'])} (95% CI {_pct(d['low'])}-{_pct(d['high'])}) above "
                   f"{_pct(o['value'])} overall")
    if est["auto_error"] is not None and s["auto_share"]["count"]:
        out.append(f"est. {_pct(est['auto_error'])} of auto-approved items wrong (audits, shrunk)")
    c, oc = s["confident_failed_check"], overall["confident_failed_check"]
    if _above(c, oc["value"]):
        out.append(f"model vs rules: {_pct(c['value'])} of confident proposals failed a policy check "
                   f"(vs {_pct(oc['value'])})")
    if s["uncertainty"] > 1.25 * overall["uncertainty"]:
        out.append(f"uncertain: mean 1-|2c-1| {s['uncertainty']:.2f} vs {overall['uncertainty']:.2f} overall")
    for g in gaps:
        out.append(f"fairness gap: {g['segment']}={g['value']} {g['rate'].replace('_', ' ')} "
                   f"{_pct(g['segment_rate'])} vs {_pct(g['slice_rate'])}")
    return out


def _recommend(best: str | None, s: dict[str, str], options: dict[str, float], hours: float | None,
               rate: float, audited: float | None) -> str:
    what = f"{s['action_type']} ({s['risk_class']} risk, {s['model_version']}" + "".join(
        f", {k}={v}" for k, v in s.items() if k.startswith("segment.")) + ")"
    if best is None or not hours:
        return "no estimate"
    per_item, review = options[best], hours * rate
    if best == "audit_auto":
        if per_item > review:
            return (f"route auto-approved {what} items to review: an agent error costs {per_item:.2f} per "
                    f"item in expectation vs {review:.2f} to review it")
        return f"audit more auto-approved {what} items (now {_pct(audited)} audited)"
    if per_item > review:
        return f"add a second review (audit sample) of decided {what} items"
    return f"no extra review pays off for {what}; a second look would avoid {per_item:.2f} per item vs {review:.2f}"


