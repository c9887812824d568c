"""The producer API (`collectors.events`): same validation and storage path as `hitl-tower ingest`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from collectors.events import EventConflict, EventRecorder, EventRejected, UnknownDecision, to_line
from collectors.ingest import ingest
from collectors.store.db import open_store
from collectors.validate import EventError, parse_line

T = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def decision_fields(id: str = "d1", **changes: Any) -> dict[str, Any]:
    fields = {"id": id, "proposed_at": T, "agent_id": "refund-agent", "model_version": "v3",
              "risk_class": "low", "action_type": "refund", "confidence": 0.93, "route": "review"}
    fields.update(changes)
    return fields


def review_fields(id: str = "r1", decision_id: str = "d1", **changes: Any) -> dict[str, Any]:
    fields = {"id": id, "decision_id": decision_id, "reviewer_id": "alice", "kind": "primary",
              "enqueued_at": T + timedelta(minutes=1), "decided_at": T + timedelta(minutes=6), "verdict": "edit"}
    fields.update(changes)
    return fields


def test_record_each_type_and_duplicates(db_url: str) -> None:
    with EventRecorder(db_url) as recorder:
        assert recorder.decision(**decision_fields(segment={"region": "EU"}, ticket="T-1")) == "stored"
        assert recorder.decision(**decision_fields(segment={"region": "EU"}, ticket="T-1")) == "duplicate"
        assert recorder.review(**review_fields(claimed_at=T + timedelta(minutes=2), cost=Decimal("1.25"))) == "stored"
        assert recorder.outcome(decision_id="d1", observed_at=T + timedelta(days=1), agent_correct=False,
                                final_correct=True, error_cost=0) == "stored"
        assert recorder.change(id="c1", changed_at=T, actor="ops", kind="threshold", before=0.92, after=0.88,
                               scope={"risk_class": "low"}) == "stored"
        assert recorder.record({"type": "outcome", "decision_id": "d1", "observed_at": T + timedelta(days=1),
                                "agent_correct": False, "final_correct": True, "error_cost": 0.0}) == "duplicate"
    engine = open_store(db_url)
    with engine.connect() as conn:
        extra, = conn.execute(text("SELECT extra FROM decisions WHERE id = 'd1'")).one()
        verdict, cost = conn.execute(text("SELECT final_verdict, review_cost_sum FROM decision_state")).one()
        assert conn.execute(text("SELECT seq FROM chain_head")).scalar_one() == 4
    assert (orjson.loads(extra) if isinstance(extra, str) else extra) == {"ticket": "T-1"}
    assert (verdict, cost) == ("edit", 1.25)
    engine.dispose()


def test_aware_datetimes_are_stored_as_utc(sqlite_url: str) -> None:
    with EventRecorder(sqlite_url) as recorder:
        recorder.decision(**decision_fields(proposed_at=datetime(2026, 11, 24, 10, 0, tzinfo=CET)))
        # the same instant written in UTC is the same content
        assert recorder.decision(**decision_fields(proposed_at="2026-11-24T09:00:00Z")) == "duplicate"
    engine = open_store(sqlite_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT proposed_at FROM decisions")).scalar_one()
    assert stored == int(T.timestamp()) * 1_000_000
    engine.dispose()


def test_invalid_events_raise_the_ingest_reason(sqlite_url: str) -> None:
    with EventRecorder(sqlite_url) as recorder:
        bad = decision_fields(confidence=1.5)
        with pytest.raises(EventRejected) as caught:
            recorder.decision(**bad)
        with pytest.raises(EventError) as expected:
            parse_line(to_line({"type": "decision", **bad}))
        assert caught.value.reason == str(expected.value) == "confidence must be <= 1, got 1.5"
        with pytest.raises(EventRejected, match="missing required field route"):
            recorder.decision(**decision_fields(route=None))
        with pytest.raises(EventRejected, match="decided_at .* is before enqueued_at"):
            recorder.review(**review_fields(decided_at=T))
        with pytest.raises(EventRejected, match="^type must be one of"):
            recorder.record({"type": "approval", "id": "x"})
        with pytest.raises(EventRejected, match="proposed_at is a datetime without a timezone"):
            recorder.decision(**decision_fields(proposed_at=datetime(2026, 11, 24, 9, 0)))
        with pytest.raises(EventRejected, match="confidence must be a finite number, got nan"):
            recorder.decision(**decision_fields(confidence=float("nan")))
        with pytest.raises(EventRejected, match=r"segment\.tier must be a finite number"):
            recorder.decision(**decision_fields(segment={"tier": float("inf")}))
        with pytest.raises(EventRejected, match="not JSON-serialisable"):
            recorder.decision(**decision_fields(note=object()))
        with pytest.raises(EventRejected, match="must be a mapping"):
            recorder.record(["decision"])  # type: ignore[arg-type]
        with pytest.raises(EventRejected, match="NUL character"):
            recorder.decision(**decision_fields(agent_id="a\x00"))
        with pytest.raises(EventRejected, match="is out of range"):
            recorder.decision(**decision_fields(proposed_at="0001-01-01T00:00:00+01:00"))
    engine = open_store(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT seq FROM chain_head")).scalar_one() == 0
    engine.dispose()


def test_conflicts_and_unknown_decisions(db_url: str) -> None:
    with EventRecorder(db_url) as recorder:
        recorder.decision(**decision_fields())
        with pytest.raises(EventConflict) as conflict:
            recorder.decision(**decision_fields(confidence=0.5))
        assert conflict.value.reason == "conflict: decision d1 was already stored with other content (original kept)"
        with pytest.raises(UnknownDecision, match="^unknown decision_id d404$"):
            recorder.review(**review_fields(decision_id="d404"))
        with pytest.raises(UnknownDecision, match="^unknown decision_id d405$"):
            recorder.outcome(decision_id="d405", observed_at=T, agent_correct=True, final_correct=True)
        assert isinstance(conflict.value, EventRejected)


def test_record_many_in_any_order(db_url: str) -> None:
    events = [
        {"type": "review", **review_fields(decision_id="d2")},
        {"type": "decision", **decision_fields("d2")},
        {"type": "decision", **decision_fields("d3", confidence=7)},
        {"type": "decision", **decision_fields("d4", note=object())},
        {"type": "review", **review_fields("r9", decision_id="nope")},
        {"type": "decision", **decision_fields("d2")},
    ]
    with EventRecorder(db_url) as recorder:
        summary = recorder.record_many(events, batch_size=1)
    assert (summary.stored, summary.duplicates) == (2, 1)
    assert summary.rejected == [(2, "confidence must be <= 1, got 7"),
                                (3, "event is not JSON-serialisable: Type is not JSON serializable: object"),
                                (4, "unknown decision_id nope")]


def test_api_and_ingest_store_the_same_chain(tmp_path: Path) -> None:
    synth = pytest.importorskip("collectors.synth")
    events = list(synth.generate(seed=9, days=1, decisions_per_day=200))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    by_file = open_store(f"sqlite:///{tmp_path / 'file.db'}")
    assert ingest(by_file, [str(path)]).stored == len(events)
    by_api = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    recorder = EventRecorder(by_api)
    for event in events[:50]:
        assert recorder.record(event) == "stored"
    assert recorder.record_many(events[50:]).stored == len(events) - 50
    recorder.close()  # leaves an engine it was given open
    heads = []
    for engine in (by_file, by_api):
        with engine.connect() as conn:
            heads.append(conn.execute(text("SELECT seq, hash FROM chain_head")).one())
        engine.dispose()
    assert heads[0] == heads[1]
