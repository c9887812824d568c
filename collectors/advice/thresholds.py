"""Threshold advice: cost curves per (risk class, action type) and the auto-approve threshold that
minimises expected cost within the risk class's error-rate cap.

For each candidate threshold t (0.50 ... 0.99) the model in
`collectors.advice.cost_model` re-routes the window's resolved decisions
(confidence >= t: auto-approved; else reviewed) and prices them with their
outcomes, weighted for selection (auto items are known from audit samples).
The recommendation comes with a bootstrap interval, the current threshold
(the latest matching `threshold` change event) and the saving against it; a
scope with too few outcomes gets its curve but no recommendation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collectors.advice import cost_model
from collectors.advice.cost_model import GRID, Imputed, Items
from collectors.validate import format_timestamp
from collectors.wording import plural

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig

SCOPE_FIELDS = ("risk_class", "action_type")
SEED = 20261124  # fixed: the same data always gives the same interval
_ROW_KEYS = ("cost_per_1000", "auto_rate", "error_rate", "reviews_per_1000", "review_hours_per_1000")


def threshold_advice(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                     filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Cost curves and threshold advice for every (risk_class, action_type) among the window's resolved
    decisions (optionally only those matching `filters`), JSON-ready, sorted by scope."""
    from collectors.advice.frame import change_frame, decision_frame

    chosen = dict(filters or {})
    frame = decision_frame(engine, config, start_us, end_us, chosen)
    changes = change_frame(engine)
    frame = frame[frame["final_verdict"] != "pending"]
    scopes = []
    for (risk_class, action_type), scope in frame.groupby(list(SCOPE_FIELDS), sort=True):
        change = current_change(changes, {"risk_class": risk_class, "action_type": action_type, **chosen},
                                end_us)
        result = advise(scope, config.thresholds.cap_for(str(risk_class)), config,
                        None if change is None else change["threshold"])
        scopes.append({"risk_class": risk_class, "action_type": action_type, "current_change": change, **result})
    t = config.thresholds
    return {"start": format_timestamp(start_us), "end": format_timestamp(end_us), "filters": chosen, "grid": [float(x) for x in GRID],
            "min_outcomes": t.min_outcomes, "interval_level": t.interval_level,
            "bootstrap_resamples": t.bootstrap_resamples, "scopes": scopes}


def current_change(changes: pd.DataFrame, values: Mapping[str, Any], end_us: int) -> dict[str, Any] | None:
    """The threshold in force at `end_us`: {"threshold", "id", "changed_at", "from"} of the latest
    `threshold` change before it whose every scope key names one of `values` with the same value (an
    empty scope matches everything), taking its `after`; with no such change, the `before` of the first
    matching change at or after `end_us` (what it replaced). None when that value is not a number in
    [0, 1], or nothing matches.

    A change scoped by a key the curve does not fix (say agent_id, with no such filter) covers only
    part of the curve's decisions, so it does not match. `changes` is `change_frame(engine)`, oldest first.
    """
    if changes.empty:
        return None
    kind = changes[changes["kind"] == "threshold"]
    matching = kind[[all(key in values and values[key] == value for key, value in (scope or {}).items())
                     for scope in kind["scope"]]]
    before_end = matching[matching["changed_at"] < end_us]
    if len(before_end):
        row, field = before_end.iloc[-1], "after"
    elif len(matching):
        row, field = matching.iloc[0], "before"
    else:
        return None
    value = row[field]
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= float(value) <= 1:
        return {"threshold": float(value), "id": str(row["id"]), "changed_at": format_timestamp(int(row["changed_at"])),
                "from": field}
    return None


def advise(frame: pd.DataFrame, cap: float, config: TowerConfig, current: float | None = None,
           seed: int = SEED) -> dict[str, Any]:
    """The advice of one scope's decisions (pending ones are left out): curve, recommendation, interval,
    refusal reason and caveats, JSON-ready. `cap` is the maximum error rate; `current` the threshold
    in force, if known."""
    frame = frame[frame["final_verdict"] != "pending"]
    items = cost_model.build_items(frame)
    settings = config.thresholds
    outcomes = int((items.used_auto | items.used_review).sum())
    caveats = _caveats(frame, items)
    result: dict[str, Any] = {
        "decisions": items.n, "outcomes": outcomes, "max_error_rate": cap, "current_threshold": current,
        "recommended_threshold": None, "interval": None, "refused": None, "refused_share": None,
        "cost_at_current": None, "cost_at_recommended": None, "saving_per_1000": None,
        "at_current": None, "at_recommended": None, "caveats": caveats, "curve": []}
    if current is None:
        caveats.append("no current threshold known (no matching threshold change event)")
    if outcomes == 0:
        result["refused"] = f"not enough outcomes: 0 of {settings.min_outcomes} needed"
        return result
    thresholds = np.union1d(GRID, [current]) if current is not None else GRID
    ones = np.ones((1, items.n))
    imputed = _filled(items, cost_model.impute(items, ones), config, frame, caveats)
    curves = cost_model.evaluate(items, thresholds, ones, imputed=imputed)
    rows = [_row(curves, j, float(t), cap) for j, t in enumerate(thresholds)]
    result["curve"] = [row for row, t in zip(rows, thresholds) if t in GRID]
    if current is not None:
        result["at_current"] = rows[int(np.searchsorted(thresholds, current))]
        result["cost_at_current"] = result["at_current"]["cost_per_1000"]
    if outcomes < settings.min_outcomes:
        result["refused"] = f"not enough outcomes: {outcomes} of {settings.min_outcomes} needed"
        return result
    pick = int(cost_model.recommend(curves.cost_per_1000, curves.error_rate, cap)[0])
    picks = cost_model.bootstrap(items, thresholds, cap, settings.bootstrap_resamples, imputed, seed)
    result["refused_share"] = float(np.mean(picks < 0)) if len(picks) else None
    if pick < 0:
        result["refused"] = (f"no threshold keeps the error rate under {cap:.1%}: route every item to review")
        return result
    result["recommended_threshold"] = float(thresholds[pick])
    result["at_recommended"] = rows[pick]
    result["cost_at_recommended"] = rows[pick]["cost_per_1000"]
    result["interval"] = _interval(thresholds, picks, settings.interval_level)
    if result["cost_at_current"] is not None and result["cost_at_recommended"] is not None:
        result["saving_per_1000"] = result["cost_at_current"] - result["cost_at_recommended"]
    return result


def _row(curves: cost_model.Curves, j: int, threshold: float, cap: float) -> dict[str, Any]:
    row: dict[str, Any] = {"threshold": threshold}
    for key in _ROW_KEYS:
        row[key] = _clean(getattr(curves, key)[0, j])
    row["within_cap"] = None if row["error_rate"] is None else bool(cost_model.within_cap(row["error_rate"], cap))
    return row


def _interval(thresholds: np.ndarray, picks: np.ndarray, level: float) -> list[float] | None:
    """Percentile interval of the resamples' recommended thresholds, on the grid (lower/higher order
    statistics, so it never claims more precision than the grid has); None when every resample refused."""
    chosen = thresholds[picks[picks >= 0]]
    if len(chosen) == 0:
        return None
    low = np.quantile(chosen, (1 - level) / 2, method="lower")
    high = np.quantile(chosen, (1 + level) / 2, method="higher")
    return [float(low), float(high)]


def _filled(items: Items, imp: Imputed, config: TowerConfig, frame: pd.DataFrame,
            caveats: list[str]) -> Imputed:
    """The point estimate's stand-ins with the fallbacks of a scope that cannot estimate one (noted)."""
    agent_cost, miss, harm, harm_cost, review_cost, review_seconds = (
        float(v[0]) for v in (imp.agent_cost, imp.miss, imp.harm, imp.harm_cost, imp.review_cost,
                              imp.review_seconds))
    missing = int(items.cost_missing[items.used_auto | items.used_review].sum())
    if math.isnan(agent_cost):
        wrong = items.final_wrong * cost_model.weights(items)
        agent_cost = float(np.dot(wrong, items.error_cost) / wrong.sum()) if wrong.sum() > 0 else 0.0
    if missing:
        caveats.append(f"agent_error_cost not given for {plural(missing, 'overridden wrong proposal')}: imputed as "
                       f"{agent_cost:.2f}, the weighted mean over wrong proposals where it is known (else "
                       "over wrong final actions)")
    if math.isnan(miss) or math.isnan(harm):
        if items.used_auto.any():
            caveats.append("no reviewed outcome: errors left after review of auto items are taken as 0")
        miss, harm = (0.0 if math.isnan(miss) else miss), (0.0 if math.isnan(harm) else harm)
    harm_cost = 0.0 if math.isnan(harm_cost) else harm_cost
    if math.isnan(review_cost):
        seconds = items.review_seconds[items.review_seconds > 0]
        review_seconds = float(np.median(seconds)) if len(seconds) else 0.0
        queue = frame["queue"].mode()
        rate = config.hourly_rate.for_queue(queue.iloc[0] if len(queue) else None)
        review_cost = rate * review_seconds / 3600
        caveats.append(f"no reviewed decision: a review is priced at the hourly rate x the median handling "
                       f"time of this scope's audits ({review_cost:.2f})")
    def arr(x: float) -> np.ndarray:
        return np.array([x])

    return Imputed(arr(agent_cost), arr(miss), arr(harm), arr(harm_cost), arr(review_cost),
                   arr(review_seconds))


def _caveats(frame: pd.DataFrame, items: Items) -> list[str]:
    caveats = []
    unaudited = int((items.auto & frame["has_outcome"].to_numpy(dtype=bool) & ~items.used_auto).sum())
    if items.auto.any() and not items.used_auto.any():
        caveats.append(f"{int(items.auto.sum())} auto decisions but no audited outcome: the curve describes "
                       "only the reviewed decisions")
    if unaudited:
        caveats.append(f"{plural(unaudited, 'outcome')} of unaudited auto decisions left out: they arrive by "
                       "non-random routes (complaints, chargebacks) and would bias the error estimate")
    return caveats


def _clean(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None
