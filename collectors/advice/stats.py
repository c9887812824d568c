"""Intervals and tests shared by the decision-support figures (statsmodels does the statistics).

Every share is reported as {"value", "count", "n", "low", "high"}: the point
estimate with its sample and a Wilson score interval, so a reader never sees
a rate without knowing how much data stands behind it. value, low and high
are null when n is 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from statsmodels.stats.proportion import proportions_ztest

from collectors.kpis.calibration import wilson_bounds, wilson_interval

SIGNIFICANCE = 0.05  # two-sided level of the tests behind the Quality flags (model versions, guardrails)


def wilson(count: float, n: float, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of count/n at `level`, or None when n is 0 (the KPI engine's own, for
    reliability bins: one implementation of the interval)."""
    return wilson_interval(count, n, level)


def wilson_arrays(counts: np.ndarray, ns: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson intervals; NaN where n is 0."""
    return wilson_bounds(counts, ns, level)


def share(count: float, n: float, level: float = 0.95) -> dict[str, Any]:
    """{"value", "count", "n", "low", "high"} of count/n with a Wilson interval (nulls when n is 0)."""
    interval = wilson(count, n, level)
    return {
        "value": count / n if n > 0 else None,
        "count": _number(count),
        "n": _number(n),
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


def two_proportion_test(count_a: float, n_a: float, count_b: float, n_b: float) -> float | None:
    """Two-sided p-value of H0: the two rates are equal (pooled z-test); None when it is undefined
    (an empty side, or both rates 0 or both 1, where there is no variance to test against)."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (count_a + count_b) / (n_a + n_b)
    if pooled <= 0 or pooled >= 1:
        return None
    _, p_value = proportions_ztest([count_a, count_b], [n_a, n_b])
    return float(p_value) if math.isfinite(p_value) else None


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)
