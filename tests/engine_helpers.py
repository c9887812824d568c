"""Helpers for the engine tests: build contract events by hand and load them into a store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from collectors.store.db import open_store
from collectors.store.writer import write_batch
from collectors.validate import format_timestamp, parse_timestamp, validate_event

T0 = parse_timestamp("2026-11-01T00:00:00Z")  # start of the usual test window
HOUR = 3_600_000_000
DAY = 24 * HOUR


def ts(micros: int) -> str:
    """RFC 3339 string of epoch microseconds."""
    return format_timestamp(micros)


def decision(id: str, at: int, **fields: Any) -> dict[str, Any]:
    """A decision event proposed at `at` (epoch us); defaults fill the required fields."""
    event = {"type": "decision", "id": id, "proposed_at": ts(at), "agent_id": "agent-1",
             "model_version": "m1", "risk_class": "low", "action_type": "refund",
             "confidence": 0.8, "route": "review"}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def review(id: str, decision_id: str, decided: int, verdict: str = "approve", *, kind: str = "primary",
           reviewer: str = "alice", enqueued: int | None = None, **fields: Any) -> dict[str, Any]:
    """A review event decided at `decided` (epoch us), enqueued by default at the same instant."""
    event = {"type": "review", "id": id, "decision_id": decision_id, "reviewer_id": reviewer,
             "kind": kind, "enqueued_at": ts(decided if enqueued is None else enqueued),
             "decided_at": ts(decided), "verdict": verdict}
    event.update({k: (ts(v) if k == "claimed_at" else v) for k, v in fields.items()})
    return {k: v for k, v in event.items() if v is not None}


def outcome(decision_id: str, observed: int, agent_correct: bool = True, final_correct: bool = True,
            **fields: Any) -> dict[str, Any]:
    """An outcome event observed at `observed` (epoch us)."""
    event = {"type": "outcome", "decision_id": decision_id, "observed_at": ts(observed),
             "agent_correct": agent_correct, "final_correct": final_correct}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def load(url: str, events: Iterable[dict[str, Any]], batch: int | None = None) -> Engine:
    """Open (and migrate) the store at `url` and write the events in order; every one must be stored."""
    engine = open_store(url)
    valid = [(i, validate_event(e)) for i, e in enumerate(events)]
    size = batch or max(len(valid), 1)
    for i in range(0, len(valid), size):
        result = write_batch(engine, valid[i:i + size])
        assert not result.rejected and not result.unknown_decision, (result.rejected, result.unknown_decision)
    return engine
