"""Running totals of the exporter's cumulative counters and latency histogram.

`CounterTotals` adds up the increments of `counters_query.read_counter_delta`
between refreshes. Label values pass a per-label cap that is *sticky*: a
value admitted to the exported set stays in it, and once the set is full
every new value goes to `names.OVERFLOW_VALUE` for good. So each raw value
always feeds the same series and every exported counter only grows, as
Prometheus's rate() needs (a restart of the exporter is an ordinary counter
reset). New values are admitted in order of their counts in the increment
that first shows them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.exporter.names import OVERFLOW_VALUE, label_value

if TYPE_CHECKING:
    from collectors.exporter.counters_query import CounterDelta

US = 1_000_000


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram: count at or under each bound (seconds), total count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    sum_seconds: float


@dataclass(frozen=True)
class Counters:
    """Cumulative counts over the whole store, keyed by their (capped) label values."""

    decisions: Mapping[tuple[str, str, str, str], int]  # risk_class, route, model_version, action_type
    reviews: Mapping[tuple[str, str, str], int]  # kind, verdict, risk_class
    outcomes: Mapping[tuple[str, str], int]  # agent_correct ("true"/"false"), model_version
    latency: Mapping[str, Histogram]  # risk_class -> primary-review latency histogram


class StickyCap:
    """At most `cap` distinct values of one label; values admitted once stay, later ones overflow."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept: set[str] = set()

    def admit(self, counts: Mapping[str, int]) -> None:
        """Admit unseen values, the most frequent first, while there is room."""
        for value in sorted(counts, key=lambda v: (-counts[v], v)):
            if len(self.kept) >= self.cap:
                return
            self.kept.add(value)

    def __call__(self, value: str) -> str:
        return label_value(value) if value in self.kept else OVERFLOW_VALUE


class CounterTotals:
    """The counters as of the last applied increment (chain position `since`)."""

    def __init__(self, label_cap: int, bounds_seconds: Iterable[float]) -> None:
        self.label_cap = label_cap
        self.bounds = tuple(sorted({float(b) for b in bounds_seconds}))
        self.bounds_us = tuple(round(b * US) for b in self.bounds)
        self._reset()

    def _reset(self) -> None:
        self.since = 0
        self.since_hash: str | None = None
        self.newest_us: int | None = None
        self._caps = {name: StickyCap(self.label_cap) for name in ("risk_class", "model_version", "action_type")}
        self._decisions: Counter[tuple[str, str, str, str]] = Counter()
        self._reviews: Counter[tuple[str, str, str]] = Counter()
        self._outcomes: Counter[tuple[str, str]] = Counter()
        self._latency: dict[str, list[int]] = defaultdict(lambda: [0, 0] + [0] * len(self.bounds))

    def apply(self, delta: CounterDelta) -> None:
        """Add an increment read from chain position `since` (start over when it says restart)."""
        if delta.restart:
            self._reset()
        caps = self._caps
        for name, at in (("risk_class", 0), ("model_version", 2), ("action_type", 3)):
            seen: Counter[str] = Counter()
            for decision_row in delta.decisions:
                seen[str(decision_row[at])] += decision_row[4]
            caps[name].admit(seen)
        rc, mv, at_ = caps["risk_class"], caps["model_version"], caps["action_type"]
        for risk_class, route, model_version, action_type, n in delta.decisions:
            self._decisions[(rc(risk_class), route, mv(model_version), at_(action_type))] += n
        for kind, verdict, risk_class, n in delta.reviews:
            self._reviews[(kind, verdict, rc(risk_class))] += n
        for agent_correct, model_version, n in delta.outcomes:
            self._outcomes[("true" if agent_correct else "false", mv(model_version))] += n
        for latency in delta.latency:
            held = self._latency[rc(latency.risk_class)]
            held[0] += latency.count
            held[1] += latency.sum_us
            for i, n in enumerate(latency.le_counts):
                held[2 + i] += n
        if delta.newest_us is not None:
            self.newest_us = delta.newest_us if self.newest_us is None else max(self.newest_us, delta.newest_us)
        self.since, self.since_hash = delta.head, delta.head_hash

    def counters(self) -> Counters:
        """An immutable copy of the totals, for a snapshot."""
        latency = {rc: Histogram(self.bounds, tuple(held[2:]), held[0], held[1] / US)
                   for rc, held in self._latency.items()}
        return Counters(dict(self._decisions), dict(self._reviews), dict(self._outcomes), latency)
