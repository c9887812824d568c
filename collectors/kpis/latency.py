"""Latency and SLA family: latency_p50/p90/p99_seconds and sla_breach_rate.

Over every primary review decided in the window (whatever its verdict and
wherever its decision's proposed_at falls): latency = decided_at - enqueued_at.
Percentiles are exact, numpy's default (linear interpolation between closest
ranks), so the aggregate is the array of latencies itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class LatencySample:
    """Latencies of primary reviews in seconds, with the SLA of each one's decision's risk class."""

    seconds: np.ndarray = field(default_factory=lambda: np.empty(0))
    sla_seconds: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def count(self) -> int:
        """Number of primary reviews."""
        return int(self.seconds.size)

    def merge(self, other: LatencySample) -> LatencySample:
        """Both samples together."""
        return LatencySample(np.concatenate([self.seconds, other.seconds]),
                             np.concatenate([self.sla_seconds, other.sla_seconds]))


def latency_percentile(sample: LatencySample, q: float) -> float | None:
    """The q-th percentile (0-100) of latency, numpy's default linear method. None when empty."""
    if sample.count == 0:
        return None
    return float(np.percentile(sample.seconds, q))


def latency_p50_seconds(sample: LatencySample) -> float | None:
    """Median latency of primary reviews decided in the window. Unit: seconds. None when there are none."""
    return latency_percentile(sample, 50)


def latency_p90_seconds(sample: LatencySample) -> float | None:
    """90th percentile latency of primary reviews decided in the window. Unit: seconds. None when none."""
    return latency_percentile(sample, 90)


def latency_p99_seconds(sample: LatencySample) -> float | None:
    """99th percentile latency of primary reviews decided in the window. Unit: seconds. None when none."""
    return latency_percentile(sample, 99)


def sla_breach_rate(sample: LatencySample) -> float | None:
    """Share of primary reviews whose latency is strictly greater than their SLA.

    Unit: ratio in [0, 1]. None when no primary review was decided in the window.
    """
    if sample.count == 0:
        return None
    return int(np.count_nonzero(sample.seconds > sample.sla_seconds)) / sample.count
