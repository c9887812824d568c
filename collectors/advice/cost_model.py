"""The cost model behind threshold advice: what each decision would have cost at every candidate
auto-approve threshold, weighted for how its outcome came to be known.

A threshold t splits a scope's decisions: confidence >= t is auto-approved (it
costs its agent's error, if any), the rest goes to review (a review cost plus
whatever error survives the review). Outcomes are not a random sample: auto
items are known mostly from audit samples. So each decision with an outcome
carries a weight that makes its stratum add up to the stratum's size:

  auto stratum (route auto, audited, with an outcome): w = (1/p) x A / sum(1/p),
      p the audit probability and A the scope's auto decisions (a Hajek /
      Horvitz-Thompson estimator calibrated to the known count);
  review stratum (route review or shadow, with an outcome): w = R / (those with an outcome),
      R the scope's resolved non-auto decisions.

Everything below is linear in per-decision counts, so a bootstrap resample is
just another row of counts: `evaluate` takes a (B x n) count matrix (a row of
ones for the point estimate) and returns every curve for every row at once,
with one sparse product over (stratum, threshold bin) groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

GRID = np.round(np.arange(50, 100) / 100, 2)
"""Candidate auto-approve thresholds 0.50, 0.51, ..., 0.99 (fixed by the issue)."""

_CAP_TOLERANCE = 1e-12
_CHUNK_CELLS = 4_000_000  # resamples x decisions held at once (32 MB of float64)
OVERRIDE_VERDICTS = ("edit", "reject")


@dataclass(frozen=True)
class Items:
    """Per-decision arrays of one scope's resolved decisions (outcome-free rows are zero where unknown)."""

    confidence: np.ndarray
    auto: np.ndarray  # route auto (bool)
    used_auto: np.ndarray  # auto, audited, with an outcome (bool)
    used_review: np.ndarray  # not auto, with an outcome (bool)
    base: np.ndarray  # 1/p for used_auto, 1 for used_review, 0 otherwise
    wrong: np.ndarray  # agent wrong (1/0)
    final_wrong: np.ndarray  # final action wrong (1/0)
    agent_cost: np.ndarray  # agent_error_cost where known, else 0
    cost_missing: np.ndarray  # agent wrong, overridden, agent_error_cost not given (1/0)
    error_cost: np.ndarray
    review_cost: np.ndarray
    review_seconds: np.ndarray

    @property
    def n(self) -> int:
        """Number of decisions."""
        return len(self.confidence)


def build_items(frame: pd.DataFrame) -> Items:
    """The arrays of a scope's frame (pending decisions must already be left out)."""
    has = frame["has_outcome"].to_numpy(dtype=bool)
    auto = (frame["route"] == "auto").to_numpy()
    prob = frame["audit_probability"].to_numpy(dtype=float)
    used_auto = auto & has & frame["audited"].to_numpy(dtype=bool) & (np.nan_to_num(prob) > 0)
    used_review = ~auto & has
    base = np.where(used_auto, 1.0 / np.where(used_auto, prob, 1.0), np.where(used_review, 1.0, 0.0))

    def known(column: str) -> np.ndarray:
        return np.where(has, np.nan_to_num(frame[column].to_numpy(dtype=float)), 0.0)

    wrong = np.where(has, 1.0 - known("agent_correct"), 0.0)
    missing = (frame["final_verdict"].isin(OVERRIDE_VERDICTS).to_numpy()
               & ~frame["agent_error_cost_given"].to_numpy(dtype=bool) & (wrong > 0))
    return Items(
        confidence=frame["confidence"].to_numpy(dtype=float), auto=auto, used_auto=used_auto,
        used_review=used_review, base=base, wrong=wrong,
        final_wrong=np.where(has, 1.0 - known("final_correct"), 0.0),
        agent_cost=np.where(missing, 0.0, known("agent_error_cost")), cost_missing=missing.astype(float),
        error_cost=known("error_cost"), review_cost=np.nan_to_num(frame["review_cost"].to_numpy(dtype=float)),
        review_seconds=np.nan_to_num(frame["review_seconds"].to_numpy(dtype=float)))


@dataclass(frozen=True)
class Imputed:
    """Scope-level stand-ins for what a decision's own record cannot say (per resample row)."""

    agent_cost: np.ndarray  # mean agent_error_cost of wrong proposals where known
    miss: np.ndarray  # share of reviewed wrong proposals whose final action was still wrong
    harm: np.ndarray  # share of reviewed right proposals that humans broke
    harm_cost: np.ndarray  # mean error_cost of those broken items
    review_cost: np.ndarray  # mean review cost of a reviewed decision
    review_seconds: np.ndarray


@dataclass(frozen=True)
class Curves:
    """Every figure at every threshold, one row per count row: (B x T) arrays, NaN without weight."""

    cost_per_1000: np.ndarray
    auto_rate: np.ndarray
    error_rate: np.ndarray
    reviews_per_1000: np.ndarray
    review_hours_per_1000: np.ndarray
    imputed: Imputed


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _stratum_scale(items: Items, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(auto, review) factors that make each stratum's weights sum to its number of decisions."""
    sums = counts @ np.column_stack([items.auto, ~items.auto, items.used_auto * items.base,
                                     items.used_review]).astype(float)
    return (np.nan_to_num(_ratio(sums[:, 0], sums[:, 2])), np.nan_to_num(_ratio(sums[:, 1], sums[:, 3])))


def weights(items: Items) -> np.ndarray:
    """Each decision's selection weight in the observed sample (0 for a decision whose outcome is not used)."""
    w_auto, w_review = _stratum_scale(items, np.ones((1, items.n)))
    return items.base * np.where(items.used_auto, w_auto[0], w_review[0])


def impute(items: Items, counts: np.ndarray, fallback: Imputed | None = None) -> Imputed:
    """The stand-ins of each count row; a row that cannot estimate one takes `fallback`'s (or NaN)."""
    w_auto, w_review = _stratum_scale(items, counts)
    ua, ur = items.used_auto * items.base, items.used_review.astype(float)
    known = items.wrong * (1 - items.cost_missing)
    right = 1 - items.wrong
    broken = ur * right * items.final_wrong
    nonauto = (~items.auto).astype(float)
    s = counts @ np.column_stack([
        ua * known * items.agent_cost, ua * known, ur * known * items.agent_cost, ur * known,
        ur * items.wrong * items.final_wrong, ur * items.wrong, broken, ur * right, broken * items.error_cost,
        nonauto * items.review_cost, nonauto * items.review_seconds, nonauto])
    values = [
        _ratio(w_auto * s[:, 0] + w_review * s[:, 2], w_auto * s[:, 1] + w_review * s[:, 3]),
        _ratio(s[:, 4], s[:, 5]), _ratio(s[:, 6], s[:, 7]), _ratio(s[:, 8], s[:, 6]),
        _ratio(s[:, 9], s[:, 11]), _ratio(s[:, 10], s[:, 11])]
    if fallback is not None:
        backs = [fallback.agent_cost, fallback.miss, fallback.harm, fallback.harm_cost, fallback.review_cost,
                 fallback.review_seconds]
        values = [np.where(np.isnan(v), b[0], v) for v, b in zip(values, backs)]
    return Imputed(*values)


def evaluate(items: Items, thresholds: np.ndarray, counts: np.ndarray, fallback: Imputed | None = None,
             imputed: Imputed | None = None) -> Curves:
    """Curves of every count row at the sorted `thresholds` (rows of `counts`: how often each decision
    is drawn; a row of ones is the observed sample)."""
    imp = imputed if imputed is not None else impute(items, counts, fallback)
    w_auto, w_review = _stratum_scale(items, counts)
    size = len(thresholds) + 1
    used = np.flatnonzero(items.used_auto | items.used_review)
    # bin k: the first k thresholds are <= confidence, so the item is auto-approved at thresholds[j] iff j < k.
    key = np.where(items.used_auto[used], 0, size) + np.searchsorted(thresholds, items.confidence[used], "right")
    rev = items.used_review[used].astype(float)
    aut = items.used_auto[used].astype(float)
    wrong = items.wrong[used]
    parts = np.column_stack([
        np.ones(len(used)),  # 0 weight
        wrong * items.agent_cost[used],  # 1 auto-approved: known agent error cost
        wrong * items.cost_missing[used],  # 2 auto-approved: imputed agent error cost
        wrong,  # 3 auto-approved: error
        rev * (items.review_cost[used] + items.final_wrong[used] * items.error_cost[used]),  # 4 reviewed, own
        aut,  # 5 auto item sent to review: imputed review cost and seconds
        aut * wrong * items.agent_cost[used],  # 6 ... its error, missed
        aut * (1 - wrong),  # 7 ... a right proposal, broken
        rev * items.final_wrong[used],  # 8 reviewed, own error
        aut * wrong,  # 9 auto item sent to review: wrong proposal (missed with rate miss)
        rev * items.review_seconds[used],  # 10 reviewed, own seconds
    ]) * items.base[used, None]
    n_parts = parts.shape[1]
    z = sparse.csr_matrix((parts.ravel(), (np.repeat(used, n_parts),
                                           (key[:, None] * n_parts + np.arange(n_parts)).ravel())),
                          shape=(items.n, 2 * size * n_parts))
    grouped = np.asarray((z.T @ counts.T).T).reshape(len(counts), 2, size, n_parts)
    scale = np.stack([w_auto, w_review], axis=1)[:, :, None, None]
    below = (np.cumsum(grouped, axis=2) * scale).sum(axis=1)[:, :-1, :]  # bin <= j: reviewed at thresholds[j]
    above = (np.cumsum(grouped[:, :, ::-1], axis=2)[:, :, ::-1] * scale).sum(axis=1)[:, 1:, :]  # bin > j
    total = below[:, :1, 0] + above[:, :1, 0]

    def col(v: np.ndarray) -> np.ndarray:
        return v[:, None]

    cost = (above[..., 1] + col(imp.agent_cost) * above[..., 2] + below[..., 4]
            + col(imp.review_cost) * below[..., 5] + col(imp.miss) * below[..., 6]
            + col(imp.harm * imp.harm_cost) * below[..., 7])
    errors = above[..., 3] + below[..., 8] + col(imp.miss) * below[..., 9] + col(imp.harm) * below[..., 7]
    seconds = below[..., 10] + col(imp.review_seconds) * below[..., 5]
    return Curves(
        cost_per_1000=1000 * _ratio(cost, total), auto_rate=_ratio(above[..., 0], total),
        error_rate=_ratio(errors, total), reviews_per_1000=1000 * _ratio(below[..., 0], total),
        review_hours_per_1000=1000 * _ratio(seconds, total) / 3600, imputed=imp)


def within_cap(error_rate: np.ndarray | float, cap: float) -> np.ndarray | bool:
    """The error rate meets the cap (a rate that equals the cap up to float rounding does)."""
    return error_rate <= cap + _CAP_TOLERANCE  # type: ignore[no-any-return]


def recommend(cost: np.ndarray, error_rate: np.ndarray, cap: float) -> np.ndarray:
    """Per row, the index of the cheapest threshold whose error rate is within `cap` (ties: the higher
    threshold); -1 when none is."""
    ok = within_cap(error_rate, cap) & ~np.isnan(cost)
    masked = np.where(ok, cost, np.inf)
    best = masked.min(axis=1, keepdims=True)
    tie = ok & (masked <= best + 1e-9 * np.maximum(1.0, np.abs(best)))
    last = cost.shape[1] - 1 - np.argmax(tie[:, ::-1], axis=1)
    return np.where(ok.any(axis=1), last, -1)


def bootstrap(items: Items, thresholds: np.ndarray, cap: float, resamples: int, fallback: Imputed,
              seed: int) -> np.ndarray:
    """Recommended threshold index of each of `resamples` bootstrap resamples of the decisions (-1:
    none meets the cap); reproducible for a given seed."""
    rng = np.random.default_rng(seed)
    n = items.n
    step = max(1, _CHUNK_CELLS // max(n, 1))
    picks: list[np.ndarray] = []
    for first in range(0, resamples, step):
        b = min(step, resamples - first)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
        curves = evaluate(items, thresholds, counts, fallback)
        picks.append(recommend(curves.cost_per_1000, curves.error_rate, cap))
    return np.concatenate(picks) if picks else np.empty(0, dtype=int)
