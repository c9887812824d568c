"""Record audit events from Python: the producer API for agents and review tools.

    from datetime import datetime, timezone
    from collectors.events import EventRecorder

    with EventRecorder("sqlite:///hitl-tower.db") as recorder:
        recorder.decision(id="d-1", proposed_at=datetime.now(timezone.utc), agent_id="refund-agent",
                          model_version="v3", risk_class="low", action_type="refund",
                          confidence=0.93, route="review")
        recorder.review(id="r-1", decision_id="d-1", reviewer_id="alice", kind="primary",
                        enqueued_at=..., decided_at=..., verdict="approve")

Each event takes the path of a line of `hitl-tower ingest`: it is serialised to
one JSON line (aware datetimes become RFC 3339 strings), validated by
`collectors.validate.parse_line` and stored by `collectors.store.writer.write_batch`
in its own transaction. `record` returns "stored" or "duplicate" and raises
`EventRejected` (or its subclasses `EventConflict`, `UnknownDecision`) with the
same reason ingest would print.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Self

import orjson

from collectors.validate import EventError, ValidEvent, parse_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

Recorded = Literal["stored", "duplicate"]


class EventRejected(ValueError):
    """The event breaks the contract or cannot be stored; `reason` says why, as ingest would."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventConflict(EventRejected):
    """An event with this id (or outcome content key) is stored with other content; the original is kept."""


class UnknownDecision(EventRejected):
    """A review or outcome names a decision that is not stored."""


@dataclass
class RecordSummary:
    """The fate of a `record_many` call: counts, and (index, reason) of each rejected event."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class EventRecorder:
    """Writes audit events to the store: give a database URL (opened and migrated) or an Engine."""

    def __init__(self, store: str | Engine) -> None:
        if isinstance(store, str):
            from collectors.store.db import open_store

            self._engine = open_store(store)
            self._owns_engine = True
        else:
            self._engine = store
            self._owns_engine = False

    def record(self, event: Mapping[str, Any]) -> Recorded:
        """Validate and store one event (a mapping with its "type"); "stored" or "duplicate"."""
        from collectors.store.writer import write_batch

        valid = _validate(to_line(event))
        result = write_batch(self._engine, [(0, valid)])
        if result.rejected:
            reason = result.rejected[0][1]
            raise (EventConflict if reason.startswith("conflict") else EventRejected)(reason)
        if result.unknown_decision:
            raise UnknownDecision(f"unknown decision_id {valid.payload['decision_id']}")
        return "stored" if result.stored else "duplicate"

    def decision(self, **fields: Any) -> Recorded:
        """Record an agent's proposed action (contract fields as keyword arguments)."""
        return self.record({"type": "decision", **fields})

    def review(self, **fields: Any) -> Recorded:
        """Record one human judgement on a stored decision."""
        return self.record({"type": "review", **fields})

    def outcome(self, **fields: Any) -> Recorded:
        """Record the ground truth of a stored decision."""
        return self.record({"type": "outcome", **fields})

    def change(self, **fields: Any) -> Recorded:
        """Record a threshold, policy or model change."""
        return self.record({"type": "change", **fields})

    def record_many(self, events: Iterable[Mapping[str, Any]], *, batch_size: int = 10_000) -> RecordSummary:
        """Store many events in batches, in any order (a review may come before its decision).

        Nothing is raised for bad events: each is listed in `rejected` with its index.
        """
        from collectors.ingest import Loader

        summary = RecordSummary()
        loader = Loader(self._engine, batch_size=batch_size,
                        on_reject=lambda r: summary.rejected.append((r.line - 1, r.reason)))
        loader.load_lines("events", _lines(events, summary))
        counts = loader.finish()
        summary.stored, summary.duplicates = counts.stored, counts.duplicates
        summary.rejected.sort()
        return summary

    def close(self) -> None:
        """Release the store's connections if this recorder opened them."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def to_line(event: Mapping[str, Any]) -> bytes:
    """The JSON line of an event given as a mapping; raises EventRejected if it cannot be one."""
    if not isinstance(event, Mapping):
        raise EventRejected(f"an event must be a mapping of field names to values, got {type(event).__name__}")
    for name, value in event.items():
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise EventRejected(f"{name} is a datetime without a timezone (use e.g. datetime.now(timezone.utc))")
    _check_finite(event, "")
    try:
        return orjson.dumps(event, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise EventRejected(f"event is not JSON-serialisable: {exc}") from None


def _validate(line: bytes) -> ValidEvent:
    try:
        event = parse_line(line)
    except EventError as exc:
        raise EventRejected(str(exc)) from None
    except (ValueError, OverflowError) as exc:  # datetime range limits
        raise EventRejected(f"a timestamp is out of range ({exc})") from None
    if event is None:  # pragma: no cover - a serialised mapping is never blank
        raise EventRejected("empty event")
    return event


def _lines(events: Iterable[Mapping[str, Any]], summary: RecordSummary) -> Iterable[bytes]:
    """Each event as a line; one that cannot be serialised is rejected and stands as a blank line."""
    for index, event in enumerate(events):
        try:
            yield to_line(event)
        except EventRejected as exc:
            summary.rejected.append((index, exc.reason))
            yield b""


def _check_finite(value: Any, path: str) -> None:
    # orjson writes NaN and Infinity as null, which would hide the mistake; name it instead.
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventRejected(f"{path or 'value'} must be a finite number, got {value}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{path}[{i}]")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"Decimal {value} is not a finite number")
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not a JSON type")
