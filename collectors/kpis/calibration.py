"""Calibration family: ece, brier, psi and ece_drift, plus reliability-diagram bins.

Confidence falls in 10 equal-width bins, bin i = [i/10, (i+1)/10) with 1.0
in the last bin: index min(floor(10 x confidence), 9) in double precision.
The aggregates are per-bin sums, so the statistics of two sets of decisions
merge by adding them bin by bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BINS = 10
PSI_FLOOR = 0.0001


def confidence_bin(confidence: float) -> int:
    """Bin index of a confidence: min(floor(10 x confidence), 9)."""
    return min(math.floor(10 * confidence), N_BINS - 1)


def _zeros_int() -> tuple[int, ...]:
    return (0,) * N_BINS


def _zeros_float() -> tuple[float, ...]:
    return (0.0,) * N_BINS


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin sums over decisions that have an outcome."""

    count: tuple[int, ...] = _zeros_int()
    confidence_sum: tuple[float, ...] = _zeros_float()
    correct: tuple[int, ...] = _zeros_int()  # decisions whose agent was correct
    squared_error_sum: tuple[float, ...] = _zeros_float()  # sum of (confidence - agent_correct)^2

    @property
    def total(self) -> int:
        """Decisions with an outcome in all bins."""
        return sum(self.count)

    def merge(self, other: CalibrationBins) -> CalibrationBins:
        """Bin-wise sums of both sets."""
        return CalibrationBins(
            tuple(a + b for a, b in zip(self.count, other.count)),
            tuple(a + b for a, b in zip(self.confidence_sum, other.confidence_sum)),
            tuple(a + b for a, b in zip(self.correct, other.correct)),
            tuple(a + b for a, b in zip(self.squared_error_sum, other.squared_error_sum)),
        )


def bins_of(confidence: np.ndarray, correct: np.ndarray) -> CalibrationBins:
    """CalibrationBins of decisions held as arrays (confidence, agent_correct as 1/0 or bool), all with an
    outcome: for callers that have rows rather than the engine's aggregates."""
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(correct, dtype=float)
    index = np.minimum(np.floor(10 * conf), N_BINS - 1).astype(int)

    def per_bin(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=N_BINS)

    return CalibrationBins(
        count=tuple(int(x) for x in per_bin()),
        confidence_sum=tuple(float(x) for x in per_bin(conf)),
        correct=tuple(int(x) for x in np.rint(per_bin(right))),
        squared_error_sum=tuple(float(x) for x in per_bin((conf - right) ** 2)),
    )


def ece(bins: CalibrationBins) -> float | None:
    """Expected calibration error: sum over non-empty bins of (n_b / N) x |mean(correct)_b - mean(conf)_b|.

    Unit: ratio in [0, 1]. None when no decision has an outcome.
    """
    total = bins.total
    if total == 0:
        return None
    return math.fsum(
        n / total * abs(correct / n - conf_sum / n)
        for n, correct, conf_sum in zip(bins.count, bins.correct, bins.confidence_sum)
        if n
    )


def brier(bins: CalibrationBins) -> float | None:
    """Brier score: mean of (confidence - agent_correct)^2 over decisions with an outcome.

    Unit: score in [0, 1]. None when no decision has an outcome.
    """
    total = bins.total
    return None if total == 0 else math.fsum(bins.squared_error_sum) / total


def psi(reference_counts: tuple[int, ...], current_counts: tuple[int, ...]) -> float | None:
    """Population stability index of confidence: sum over bins of (q_i - p_i) x ln(q_i / p_i).

    p_i and q_i are the shares of reference and current decisions (all of them,
    with or without outcome) in bin i, each floored at 0.0001. Unit: score >= 0.
    None when either window has no decisions.
    """
    ref_total, cur_total = sum(reference_counts), sum(current_counts)
    if ref_total == 0 or cur_total == 0:
        return None
    terms = []
    for ref_n, cur_n in zip(reference_counts, current_counts):
        p = max(ref_n / ref_total, PSI_FLOOR)
        q = max(cur_n / cur_total, PSI_FLOOR)
        terms.append((q - p) * math.log(q / p))
    return math.fsum(terms)


def ece_drift(current_ece: float | None, reference_ece: float | None) -> float | None:
    """ece(this window) - ece(reference window). Unit: ratio in [-1, 1]. None when either is None."""
    if current_ece is None or reference_ece is None:
        return None
    return current_ece - reference_ece


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram, with a Wilson 95% interval on the observed accuracy."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None


def wilson_bounds(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals at `level` (statsmodels), vectorised; NaN where n is 0.

    The bounds are exactly 0 with no successes and exactly 1 with all successes, as the formula says;
    statsmodels leaves them a rounding error away (2.8e-17, 0.9999999999999999), which would make an
    interval of 7/7 exclude a rate of 1.
    """
    from statsmodels.stats.proportion import proportion_confint

    hits, size = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    safe = np.where(size > 0, size, 1.0)
    hits = np.minimum(hits, safe)
    low, high = proportion_confint(hits, safe, alpha=1 - level, method="wilson")
    low, high = np.where(hits <= 0, 0.0, low), np.where(hits >= safe, 1.0, high)
    empty = size <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson_interval(successes: float, n: float, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion at `level` (wilson_bounds); None when n is 0."""
    if n <= 0:
        return None
    low, high = wilson_bounds(np.asarray(successes), np.asarray(n), level)
    return float(low), float(high)


def reliability_bins(bins: CalibrationBins) -> list[ReliabilityBin]:
    """The 10 reliability-diagram bars; empty bins carry None for their means and interval."""
    bars = []
    for i, (n, correct, conf_sum) in enumerate(zip(bins.count, bins.correct, bins.confidence_sum)):
        interval = wilson_interval(correct, n)
        bars.append(ReliabilityBin(
            lower=i / N_BINS,
            upper=(i + 1) / N_BINS,
            count=n,
            mean_confidence=conf_sum / n if n else None,
            accuracy=correct / n if n else None,
            accuracy_low=interval[0] if interval else None,
            accuracy_high=interval[1] if interval else None,
        ))
    return bars
