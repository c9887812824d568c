"""Mergeable statistics of one slice of decisions: the inputs of every KPI family.

Each part adds up across sets of decisions (counts, sums, bin arrays, value
arrays), so a slice's statistics are the merge of its groups', the total is
the merge of all slices', and per-hour rollups can later be merged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.kpis.agreement import Coincidences
from collectors.kpis.calibration import N_BINS, CalibrationBins
from collectors.kpis.cost import CostSums
from collectors.kpis.latency import LatencySample
from collectors.kpis.overrides import OverrideSums
from collectors.kpis.rates import VerdictCounts


@dataclass(frozen=True)
class DecisionGroup:
    """Aggregates of the window's decisions sharing slice key values, confidence bin and queue."""

    key: tuple[str | None, ...]
    conf_bin: int
    queue: str | None
    decisions: int
    resolved: int
    intervened: int
    auto: int
    pending: int
    oldest_pending_us: int | None
    outcomes: int
    confidence_sum: float  # over decisions with an outcome
    correct: int
    squared_error_sum: float
    overrides: int
    override_agent_wrong: int
    override_final_wrong: int
    override_harmful: int
    override_agent_error_cost: float
    override_error_cost: float
    model_cost: float
    review_cost: float
    review_seconds: float


def _one_hot(index: int, value: float, zero: float) -> tuple:  # type: ignore[type-arg]
    return tuple(value if i == index else zero for i in range(N_BINS))


@dataclass(frozen=True)
class SliceStats:
    """Everything the KPIs of one slice need."""

    verdicts: VerdictCounts = field(default_factory=VerdictCounts)
    calibration: CalibrationBins = field(default_factory=CalibrationBins)
    population: tuple[int, ...] = (0,) * N_BINS  # all decisions per confidence bin (psi)
    overrides: OverrideSums = field(default_factory=OverrideSums)
    costs: CostSums = field(default_factory=CostSums)
    latency: LatencySample = field(default_factory=LatencySample)
    agreement: Coincidences = field(default_factory=Coincidences)

    def merge(self, other: SliceStats) -> SliceStats:
        """The statistics of both sets of decisions together."""
        return SliceStats(
            self.verdicts.merge(other.verdicts),
            self.calibration.merge(other.calibration),
            tuple(a + b for a, b in zip(self.population, other.population)),
            self.overrides.merge(other.overrides),
            self.costs.merge(other.costs),
            self.latency.merge(other.latency),
            self.agreement.merge(other.agreement),
        )


def stats_of_group(group: DecisionGroup) -> SliceStats:
    """The slice statistics contributed by one decision group."""
    b = group.conf_bin
    return SliceStats(
        verdicts=VerdictCounts(group.decisions, group.resolved, group.intervened, group.auto,
                               group.pending, group.oldest_pending_us),
        calibration=CalibrationBins(
            _one_hot(b, group.outcomes, 0),
            _one_hot(b, group.confidence_sum, 0.0),
            _one_hot(b, group.correct, 0),
            _one_hot(b, group.squared_error_sum, 0.0),
        ),
        population=_one_hot(b, group.decisions, 0),
        overrides=OverrideSums(group.overrides, group.override_agent_wrong, group.override_final_wrong,
                               group.override_harmful, group.override_agent_error_cost,
                               group.override_error_cost),
        costs=CostSums(group.decisions, group.review_cost, {group.queue: group.review_seconds},
                       group.model_cost),
    )


def merge_all(stats: list[SliceStats]) -> SliceStats:
    """The merge of many slices' statistics (empty statistics for none)."""
    total = SliceStats()
    for part in stats:
        total = total.merge(part)
    return total
