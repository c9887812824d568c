"""The engine agrees with the contract's slow reference oracle on random event sets, on both databases.

`tests/reference_kpis.py` evaluates the contract naively from the events;
`compute_report` runs the real path (validation, batch writer, derived state,
SQL aggregates, KPI functions). Event sets are drawn to hit the fine points of
section 2b: ties on decided_at and observed_at, string-ordered review ids
("r10" < "r2"), escalation chains, audit reviews, superseded outcomes,
confidences on bin edges, latencies equal to an SLA, missing segment keys,
decisions outside the window with primary reviews inside it, empty windows.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from engine_helpers import HOUR, T0, ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_kpis import reference_report
from sqlalchemy import Engine, text

from collectors.config import HourlyRates, Sla, TowerConfig
from collectors.engine.report import compute_report, report_to_dict
from collectors.store.db import open_store
from collectors.store.writer import write_batch
from collectors.validate import validate_event

# Examples per database; raise it for a longer hunt, e.g. HITL_TEST_REFERENCE_EXAMPLES=2000.
EXAMPLES = int(os.environ.get("HITL_TEST_REFERENCE_EXAMPLES", "150"))
WINDOW = 10 * HOUR
RATES = {"default": 60.0, "queues": {"q1": 90.0, "q2": 0.0}}
SLAS = {"low": 86400.0, "medium": 14400.0, "high": 3600.0, "critical": 900.0}
CONFIG = TowerConfig(hourly_rate=HourlyRates(**RATES), sla=Sla(risk_classes=SLAS))
SLICE_FIELDS = ["risk_class", "queue", "model_version", "agent_id", "action_type", "route",
                "segment.region", "segment.tier"]

# Instants on a coarse grid (ties are likely), sometimes nudged by a microsecond.
instant = st.builds(lambda h, nudge: T0 + h * HOUR + nudge,
                    st.integers(-12, 22), st.sampled_from([0, 0, 0, 1, -1]))
# Decisions fall in the window more often than not, but also before it (reference) and after it.
proposed = st.builds(lambda h, nudge: T0 + h * HOUR + nudge,
                     st.one_of(st.integers(0, 9), st.integers(-12, 22)), st.sampled_from([0, 0, 1, -1]))
confidence = st.one_of(
    st.sampled_from([0.0, 0.1, 0.15, 0.3, 0.7, 0.9, 0.95, 0.99, 1.0, 0.30000000000000004]),
    st.floats(0.0, 1.0, allow_nan=False),
)
money = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 2.0, 10.0]), st.floats(0.0, 1000.0))
# Latencies around the SLAs, exactly on them included ("exceeds" is strictly greater).
latency_us = st.one_of(
    st.sampled_from([0, 900, 3600, 14400, 86400]).map(lambda s: s * 1_000_000),
    st.sampled_from([900, 3600, 14400]).map(lambda s: s * 1_000_000 + 1),
    st.integers(0, 2 * 86400 * 1_000_000),
)
segment = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"region": st.sampled_from(["eu", "us", "Éire", "eu-west"]),
                                        "tier": st.sampled_from(["gold", "Gold", "silver"])}),
)


@st.composite
def decisions(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.sampled_from([0, 1, 2, 4, 6, 8, 10]))
    events = []
    for i in range(n):
        event = {
            "type": "decision", "id": f"d{i}", "proposed_at": ts(draw(proposed)),
            "agent_id": draw(st.sampled_from(["a1", "a2"])),
            "model_version": draw(st.sampled_from(["m1", "m2"])),
            "risk_class": draw(st.sampled_from(["low", "medium", "high", "critical", "unlisted"])),
            "queue": draw(st.sampled_from([None, "q1", "q2", "q3"])),
            "action_type": draw(st.sampled_from(["refund", "ship"])),
            "confidence": draw(confidence),
            "route": draw(st.sampled_from(["auto", "review", "shadow"])),
            "model_cost": draw(money),
            "segment": draw(segment),
        }
        events.append({k: v for k, v in event.items() if v is not None})
    return events


@st.composite
def reviews(draw: st.DrawFn, decision_ids: list[str]) -> list[dict[str, Any]]:
    if not decision_ids:
        return []
    # Ids whose string order differs from their numeric order: "r10" < "r2".
    ids = draw(st.lists(st.integers(0, 40), unique=True, min_size=draw(st.sampled_from([0, 4, 10])), max_size=24))
    events = []
    for j in ids:
        decided = draw(instant)
        enqueued = decided - draw(latency_us)
        event: dict[str, Any] = {
            "type": "review", "id": f"r{j}", "decision_id": draw(st.sampled_from(decision_ids)),
            "reviewer_id": draw(st.sampled_from(["alice", "bob", "carol"])),
            "kind": draw(st.sampled_from(["primary", "primary", "escalation", "audit"])),
            "enqueued_at": ts(enqueued), "decided_at": ts(decided),
            "verdict": draw(st.sampled_from(["approve", "edit", "reject", "escalate"])),
            "handle_seconds": draw(st.one_of(st.none(), st.sampled_from([0.0, 30.0, 600.5]))),
            "cost": draw(st.one_of(st.none(), st.none(), st.sampled_from([0.0, 1.25, 7.0]))),
        }
        if draw(st.booleans()):
            event["claimed_at"] = ts(draw(st.integers(enqueued, decided)))
        events.append({k: v for k, v in event.items() if v is not None})
    return events


@st.composite
def outcomes(draw: st.DrawFn, decision_ids: list[str]) -> list[dict[str, Any]]:
    if not decision_ids:
        return []
    events = []
    for _ in range(draw(st.integers(0, 10))):
        event = {
            "type": "outcome", "decision_id": draw(st.sampled_from(decision_ids)),
            # Few distinct instants: superseding and tied outcomes are common.
            "observed_at": ts(T0 + draw(st.integers(0, 2)) * HOUR),
            "agent_correct": draw(st.booleans()), "final_correct": draw(st.booleans()),
            "error_cost": draw(money), "agent_error_cost": draw(money),
        }
        events.append({k: v for k, v in event.items() if v is not None})
    return events


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    decision_events = draw(decisions())
    ids = [e["id"] for e in decision_events]
    others = draw(reviews(ids)) + draw(outcomes(ids))
    others = draw(st.permutations(others))
    reference = draw(st.one_of(
        st.none(),
        st.tuples(st.integers(-12, 4), st.integers(1, 12)).map(
            lambda t: (T0 + t[0] * HOUR, T0 + (t[0] + t[1]) * HOUR)),
    ))
    return {
        "events": decision_events + list(others),
        "end": T0 + draw(st.sampled_from([WINDOW, HOUR, 24 * HOUR])),
        "by": draw(st.integers(0, 2).flatmap(
            lambda k: st.lists(st.sampled_from(SLICE_FIELDS), unique=True, min_size=k, max_size=k))),
        "now": T0 + draw(st.sampled_from([30 * HOUR, 5 * HOUR])),
        "reference": reference,
        # One transaction, or several: the derived state is then updated incrementally.
        "batch": draw(st.sampled_from([None, 1, 3])),
    }


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("decisions", "reviews", "outcomes", "changes", "decision_state",
                      "kpi_rollup", "agreement_rollup", "rollup_slices"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": "0" * 64})


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    # Tight relative tolerance; the absolute floor only absorbs sums that cancel to ~0
    # (e.g. ece_drift of equal windows), where summation order alone decides the last bits.
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_same_report(ours: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(ours)[:5] == ["start", "end", "by", "total", "rows"]
    for key in ("start", "end", "by"):
        assert ours[key] == expected[key]
    assert len(ours["rows"]) == len(expected["rows"]), (ours["rows"], expected["rows"])
    for got, want in zip([ours["total"], *ours["rows"]], [expected["total"], *expected["rows"]]):
        assert list(got) == list(want)
        for name, value in want.items():
            assert type(got[name]) is type(value), (name, got[name], value)  # counts stay ints
            assert _close(got[name], value), (name, got[name], value, got, want)


@pytest.fixture
def store(db_url: str) -> Engine:
    engine = open_store(db_url)
    yield engine
    engine.dispose()


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_engine_matches_reference(store: Engine, scenario: dict[str, Any]) -> None:
    _reset(store)
    events = scenario["events"]
    valid = [(i, validate_event(e)) for i, e in enumerate(events)]
    size = scenario["batch"] or max(len(valid), 1)
    for i in range(0, len(valid), size):
        result = write_batch(store, valid[i:i + size])
        assert not result.rejected and not result.unknown_decision
    start, end, now, ref = T0, scenario["end"], scenario["now"], scenario["reference"]
    ours = report_to_dict(compute_report(store, CONFIG, start, end, by=scenario["by"], reference=ref,
                                         now_us=now))
    expected = reference_report(
        events, ts(start), ts(end), by=scenario["by"], now=ts(now),
        reference_start=None if ref is None else ts(ref[0]),
        reference_end=None if ref is None else ts(ref[1]),
        hourly_rate=RATES, sla=SLAS,
    )
    assert_same_report(ours, expected)
