"""The live demo's traffic: steady synthetic events released when their time comes.

A decision is proposed now, its review comes minutes or hours later and its
outcome days later, as in the generated history. Generating a few seconds of
traffic at a time would lose those (the generator drops what falls after its
span), leave every held decision pending for ever and, at a batch size fixed
per interval, run many times the history's rate. So traffic is generated a
UTC day at a time (the generator's hour-of-day profile and weekday factor
count from the day's start) at the history's rate, with its reviews and
outcomes up to `HORIZON` later, and held here until due.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors import synth
from collectors.validate import parse_timestamp

HORIZON = timedelta(days=60)  # reviews and outcomes later than this after their decision are dropped
DAY = timedelta(days=1)
_WHEN = {"decision": "proposed_at", "review": "decided_at", "outcome": "observed_at", "change": "changed_at"}


def event_time_us(event: dict[str, Any]) -> int:
    """When an event happens: proposed_at, decided_at, observed_at or changed_at, in microseconds."""
    return parse_timestamp(event[_WHEN[event["type"]]])


class LiveTraffic:
    """Steady traffic from `start` on at `per_day` decisions a day; `due(now)` hands out what is due."""

    def __init__(self, *, seed: int, per_day: int, start: datetime, held: Iterable[dict[str, Any]] = ()) -> None:
        self._seed, self._per_day = seed, per_day
        self._start_us = int(start.timestamp() * 1_000_000)
        self._next = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self._order = itertools.count()
        self._held: list[tuple[int, int, dict[str, Any]]] = []
        self.hold(held)

    def hold(self, events: Iterable[dict[str, Any]]) -> None:
        """Keep events until their time (e.g. the history's reviews and outcomes due after its end)."""
        for event in events:
            heapq.heappush(self._held, (event_time_us(event), next(self._order), event))

    @property
    def held(self) -> int:
        """Events generated but not due yet."""
        return len(self._held)

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """The events whose time is at or before `now`, in time order (generating ahead as needed)."""
        while self._next <= now:
            self._generate_day(self._next)
            self._next += DAY
        now_us = int(now.timestamp() * 1_000_000)
        out = []
        while self._held and self._held[0][0] <= now_us:
            out.append(heapq.heappop(self._held)[2])
        return out

    def _generate_day(self, midnight: datetime) -> None:
        """Hold one UTC day of traffic; of the first day, only decisions from `start` on (and theirs)."""
        skipped: set[str] = set()
        events = []
        for event in synth.generate(seed=self._seed * 1_000_003 + int(midnight.timestamp()) // 86_400, days=1,
                                    decisions_per_day=self._per_day, start=midnight, steady=True,
                                    id_prefix=f"live{midnight:%Y%m%d}-", horizon=midnight + DAY + HORIZON):
            if event["type"] == "decision" and event_time_us(event) < self._start_us:
                skipped.add(event["id"])
            elif event.get("decision_id") not in skipped:
                events.append(event)
        self.hold(events)


def until(events: Iterable[dict[str, Any]], end: datetime, later: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The events up to `end`, streamed; the ones after it go to `later`."""
    end_us = int(end.timestamp() * 1_000_000)
    for event in events:
        if event_time_us(event) <= end_us:
            yield event
        else:
            later.append(event)
