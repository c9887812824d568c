"""The engine on hand-built event sets, on SQLite and PostgreSQL: every fine point of contract section 2b."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review
from sqlalchemy import event

from collectors.config import HourlyRates, Sla, TowerConfig
from collectors.engine.query import SliceFieldError
from collectors.engine.report import compute_report, reference_window, report_to_dict
from collectors.kpis.agreement import agreement_alpha
from collectors.kpis.spec import KPI_IDS

END = T0 + DAY
NOW = T0 + 2 * DAY
S = 1_000_000  # one second in microseconds


def run(db_url: str, events: list[dict[str, Any]], by: tuple[str, ...] = (), *,
        config: TowerConfig | None = None, batches: int | None = None, **kwargs: Any) -> dict[str, Any]:
    engine = load(db_url, events, batch=batches)
    try:
        report = compute_report(engine, config or TowerConfig(), T0, kwargs.pop("end", END), by=by,
                                now_us=kwargs.pop("now_us", NOW), **kwargs)
    finally:
        engine.dispose()
    return report_to_dict(report)


def test_empty_store(db_url: str) -> None:
    data = run(db_url, [], by=("risk_class",))
    total = data["total"]
    assert list(total) == list(KPI_IDS)
    assert total["decisions"] == 0 and total["pending"] == 0 and total["override_count"] == 0
    assert all(total[k] is None for k in KPI_IDS if k not in ("decisions", "pending", "override_count"))
    assert data["rows"] == []
    assert data["samples"]["total"]["decisions"] == 0


def test_final_verdict_ties_go_to_the_greater_review_id(db_url: str) -> None:
    at = T0 + 2 * HOUR
    events = [
        decision("d1", T0 + HOUR),
        # Same decided_at: "r9" > "r10" in plain string order, so r9 (reject) is the latest.
        review("r10", "d1", at, "approve"),
        review("r9", "d1", at, "reject", reviewer="bob"),
    ]
    total = run(db_url, events)["total"]
    assert total["intervention_rate"] == 1.0 and total["auto_rate"] == 0.0


def test_escalate_and_audit_reviews_do_not_set_the_final_verdict(db_url: str) -> None:
    events = [
        decision("auto1", T0 + HOUR, route="auto"),
        review("e1", "auto1", T0 + 2 * HOUR, "escalate"),
        review("e2", "auto1", T0 + 3 * HOUR, "escalate", kind="escalation", reviewer="bob"),
        decision("rev1", T0 + HOUR, route="review"),
        review("e3", "rev1", T0 + 2 * HOUR, "escalate"),
        review("a1", "rev1", T0 + 3 * HOUR, "reject", kind="audit", reviewer="carol"),
        decision("sh1", T0 + 5 * HOUR, route="shadow"),
    ]
    total = run(db_url, events)["total"]
    # auto1 stays auto; rev1 is pending (escalated, undecided); sh1 is pending (no review).
    assert total["decisions"] == 3
    assert total["auto_rate"] == 1.0 and total["intervention_rate"] == 0.0
    assert total["pending"] == 2
    assert total["pending_oldest_age_seconds"] == (NOW - (T0 + HOUR)) / S


def test_reviews_decided_after_the_window_still_set_the_final_verdict(db_url: str) -> None:
    events = [
        decision("d1", T0 + HOUR),
        review("r1", "d1", END + 5 * DAY, "edit", enqueued=T0 + HOUR),
        outcome("d1", END + 6 * DAY, agent_correct=False, final_correct=True),
    ]
    data = run(db_url, events)
    total = data["total"]
    assert total["pending"] == 0 and total["intervention_rate"] == 1.0
    assert total["override_count"] == 1 and total["override_error_delta"] == 1.0
    # ...but its latency belongs to the window it was decided in, not this one.
    assert total["latency_p50_seconds"] is None and data["samples"]["total"]["primary_reviews"] == 0


def test_later_outcome_supersedes_and_ties_go_to_the_last_written(db_url: str) -> None:
    events = [
        decision("d1", T0 + HOUR, confidence=0.9, route="auto"),
        outcome("d1", T0 + 3 * HOUR, agent_correct=False, final_correct=False),
        outcome("d1", T0 + 2 * HOUR, agent_correct=True, final_correct=True),  # older: ignored
        outcome("d1", T0 + 4 * HOUR, agent_correct=True, final_correct=True),
        outcome("d1", T0 + 4 * HOUR, agent_correct=False, final_correct=False, error_cost=1.0),  # tie
    ]
    total = run(db_url, events)["total"]  # one batch
    assert total["brier"] == pytest.approx(0.81)  # (0.9 - 0)^2: the last written of the tie wins
    assert total["ece"] == pytest.approx(0.9)


def test_outcome_tie_across_batches(db_url: str) -> None:
    events = [
        decision("d1", T0 + HOUR, confidence=0.9, route="auto"),
        outcome("d1", T0 + 4 * HOUR, agent_correct=False, final_correct=False),
        outcome("d1", T0 + 4 * HOUR, agent_correct=True, final_correct=True),  # tie, written last
        outcome("d1", T0 + 2 * HOUR, agent_correct=False, final_correct=False),  # older, written later
    ]
    total = run(db_url, events, batches=1)["total"]
    assert total["brier"] == pytest.approx(0.01)


def test_cost_avoided_and_the_agent_error_cost_default(db_url: str) -> None:
    events = [
        # Overrides: agent_error_cost absent defaults to 0 (the final action was not the agent's).
        decision("d1", T0 + HOUR), review("r1", "d1", T0 + 2 * HOUR, "edit"),
        outcome("d1", T0 + 3 * HOUR, agent_correct=False, final_correct=True, error_cost=5.0),
        decision("d2", T0 + HOUR), review("r2", "d2", T0 + 2 * HOUR, "reject"),
        outcome("d2", T0 + 3 * HOUR, agent_correct=True, final_correct=False, agent_error_cost=2.0),
        # Not overrides: approve and auto (their default agent_error_cost = error_cost is not counted).
        decision("d3", T0 + HOUR), review("r3", "d3", T0 + 2 * HOUR, "approve"),
        outcome("d3", T0 + 3 * HOUR, agent_correct=False, final_correct=False, error_cost=100.0),
        decision("d4", T0 + HOUR, route="auto"),
        outcome("d4", T0 + 3 * HOUR, agent_correct=False, final_correct=False, error_cost=100.0),
        # An override without outcome is not counted.
        decision("d5", T0 + HOUR), review("r5", "d5", T0 + 2 * HOUR, "edit"),
    ]
    total = run(db_url, events)["total"]
    assert total["override_count"] == 2
    assert total["cost_avoided"] == pytest.approx((0.0 + 2.0) - (5.0 + 0.0))
    assert total["override_error_delta"] == pytest.approx(0.5 - 0.5)
    assert total["harmful_override_rate"] == 0.5
    assert total["intervention_rate"] == pytest.approx(3 / 5)


def test_rows_sort_in_code_point_order_with_nulls_last(db_url: str) -> None:
    events = [decision(f"d{i}", T0 + HOUR, segment=seg) for i, seg in enumerate([
        {"region": "eu"}, {"region": "Zulu"}, None, {"region": "éire"}, {"tier": "gold"},
        {"region": "a"}, {"region": "eu"},
    ])]
    data = run(db_url, events, by=("segment.region",))
    assert [row["segment.region"] for row in data["rows"]] == ["Zulu", "a", "eu", "éire", None]
    assert [row["decisions"] for row in data["rows"]] == [1, 1, 2, 1, 2]
    assert data["samples"]["rows"][-1]["segment.region"] is None


def test_two_slice_fields_and_missing_queue(db_url: str) -> None:
    events = [
        decision("d1", T0 + HOUR, risk_class="high", queue="b"),
        decision("d2", T0 + HOUR, risk_class="high"),
        decision("d3", T0 + HOUR, risk_class="low", queue="a"),
        decision("d4", T0 + HOUR, risk_class="high", queue="a"),
    ]
    rows = run(db_url, events, by=("risk_class", "queue"))["rows"]
    assert [(r["risk_class"], r["queue"]) for r in rows] == [("high", "a"), ("high", "b"), ("high", None),
                                                            ("low", "a")]
    assert list(rows[0])[:3] == ["risk_class", "queue", "decisions"]


def test_segment_key_with_quotes_and_dots(db_url: str) -> None:
    events = [decision("d1", T0 + HOUR, segment={'we"ird.key': "v", "a.b": "w"}),
              decision("d2", T0 + HOUR, segment={"a": "x"})]
    rows = run(db_url, events, by=('segment.we"ird.key', "segment.a.b"))["rows"]
    assert [(r['segment.we"ird.key'], r["segment.a.b"]) for r in rows] == [("v", "w"), (None, None)]


@pytest.mark.parametrize("key", ["a\\b", "\n", "tab\there", "\x01", "x\\\\y", "\\n"])
def test_segment_keys_that_json_escapes_slice_like_any_other(db_url: str, key: str) -> None:
    """A key with a backslash or a control character: its own value, never a look-alike's (found by the
    audit: SQLite's JSON path compared the escaped text, so 'a\\b' sliced as null and the two
    characters \\n took the value of a newline key)."""
    look_alike = {"a\\b": "a\\\\b", "\n": "\\n", "tab\there": "tab\\there", "\x01": "\\u0001",
                  "x\\\\y": "x\\y", "\\n": "\n"}[key]
    events = [decision("d1", T0 + HOUR, segment={key: "mine"}),
              decision("d2", T0 + HOUR, segment={look_alike: "other"}),
              decision("d3", T0 + HOUR, segment={})]
    rows = run(db_url, events, by=(f"segment.{key}",))["rows"]
    assert [(r[f"segment.{key}"], r["decisions"]) for r in rows] == [("mine", 1), (None, 2)]


def test_latency_covers_primary_reviews_decided_in_the_window(db_url: str) -> None:
    config = TowerConfig(sla=Sla(risk_classes={"high": 3600.0}, default_seconds=100.0))
    events = [
        decision("old", T0 - 3 * DAY, risk_class="high", agent_id="agent-old"),
        review("r1", "old", T0 + HOUR, "approve", enqueued=T0 + HOUR - 3600 * S),  # exactly the SLA
        decision("d1", T0 + HOUR, risk_class="other"),
        review("r2", "d1", T0 + 2 * HOUR, "escalate", enqueued=T0 + 2 * HOUR - 101 * S),  # > 100 s
        review("r3", "d1", T0 + 3 * HOUR, "edit", kind="escalation", enqueued=T0),  # not primary
        review("r4", "d1", END, "approve", enqueued=T0 + HOUR),  # decided at the end: outside
        decision("late", END + HOUR),
        review("r5", "late", T0 + 5 * HOUR, "approve", enqueued=T0 + 5 * HOUR - 10 * S),
    ]
    data = run(db_url, events, by=("agent_id",), config=config)
    total = data["total"]
    assert data["samples"]["total"]["primary_reviews"] == 3
    assert total["latency_p50_seconds"] == 101.0
    assert total["latency_p99_seconds"] == pytest.approx(float(np.percentile([3600, 101, 10], 99)))
    assert total["sla_breach_rate"] == pytest.approx(1 / 3)  # only r2: 101 > 100; 3600 = 3600 is no breach
    rows = {row["agent_id"]: row for row in data["rows"]}
    assert set(rows) == {"agent-1", "agent-old"}  # a row for the old decision's primary review
    assert rows["agent-old"]["decisions"] == 0 and rows["agent-old"]["latency_p50_seconds"] == 3600.0
    assert rows["agent-old"]["intervention_rate"] is None and rows["agent-old"]["psi"] is None
    assert rows["agent-old"]["cost_per_decision"] is None and rows["agent-old"]["sla_breach_rate"] == 0.0


def test_cost_per_decision_counts_every_review_at_the_decision_queue_rate(db_url: str) -> None:
    config = TowerConfig(hourly_rate=HourlyRates(default=60.0, queues={"fast": 360.0}))
    events = [
        decision("d1", T0 + HOUR, queue="fast", model_cost=0.5),
        review("r1", "d1", T0 + 2 * HOUR, "escalate", handle_seconds=60.0),  # 60 s x 360/h = 6
        review("r2", "d1", END + DAY, "approve", kind="escalation", reviewer="bob", cost=2.0),  # after window
        review("r3", "d1", T0 + 3 * HOUR, "reject", kind="audit", reviewer="carol",
               claimed_at=T0 + 3 * HOUR - 30 * S),  # 30 s x 360/h = 3
        decision("d2", T0 + HOUR),  # no queue: default rate
        review("r4", "d2", T0 + 2 * HOUR, "approve", handle_seconds=120.0),  # 120 s x 60/h = 2
        review("r5", "d2", T0 + 2 * HOUR, "approve", reviewer="bob"),  # no time at all: 0
    ]
    data = run(db_url, events, by=("queue",), config=config)
    assert data["total"]["cost_per_decision"] == pytest.approx((0.5 + 6 + 2 + 3 + 2) / 2)
    rows = {row["queue"]: row for row in data["rows"]}
    assert rows["fast"]["cost_per_decision"] == pytest.approx(11.5)
    assert rows[None]["cost_per_decision"] == pytest.approx(2.0)


def test_psi_and_ece_drift_against_the_reference_window(db_url: str) -> None:
    events = [
        decision("ref1", T0 - HOUR, confidence=0.05, risk_class="low"),
        decision("ref2", T0 - 2 * HOUR, confidence=0.95, risk_class="low"),
        decision("cur1", T0 + HOUR, confidence=0.95, risk_class="low"),
        decision("cur2", T0 + HOUR, confidence=0.95, risk_class="low"),
        decision("cur3", T0 + HOUR, confidence=0.5, risk_class="high"),  # no reference decisions: psi null
        outcome("ref1", T0, agent_correct=False), outcome("cur1", T0 + 2 * HOUR, agent_correct=True),
    ]
    data = run(db_url, events, by=("risk_class",))
    rows = {row["risk_class"]: row for row in data["rows"]}
    expected = (0.0001 - 0.5) * math.log(0.0001 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert rows["low"]["psi"] == pytest.approx(expected)
    assert rows["high"]["psi"] is None and rows["high"]["ece_drift"] is None
    # ece: current |1 - 0.95| = 0.05; reference |0 - 0.05| = 0.05
    assert rows["low"]["ece_drift"] == pytest.approx(0.0, abs=1e-15)
    assert data["total"]["psi"] is not None
    # An explicit reference window with no decisions: psi and ece_drift null.
    empty_ref = run(db_url, [], reference=(END, END + HOUR))["total"]
    assert empty_ref["psi"] is None and empty_ref["ece_drift"] is None


def test_default_reference_window_is_the_previous_one() -> None:
    assert reference_window(T0, END) == (T0 - DAY, T0)
    assert reference_window(T0, END, T0 - 7 * DAY, None) == (T0 - 7 * DAY, T0)
    assert reference_window(T0, END, None, T0 - DAY) == (T0 - 2 * DAY, T0 - DAY)


def test_agreement_over_reviews_of_the_window_decisions(db_url: str) -> None:
    events = [
        decision("d1", T0 + HOUR, route="auto"),
        review("a", "d1", T0 + 2 * HOUR, "approve", kind="audit", reviewer="alice"),
        review("b", "d1", T0 + 2 * HOUR, "approve", kind="audit", reviewer="bob"),
        decision("d2", T0 + HOUR),
        review("c", "d2", T0 + 2 * HOUR, "approve", reviewer="alice"),
        review("d", "d2", T0 + 3 * HOUR, "reject", reviewer="alice"),  # alice's latest on d2
        review("e", "d2", END + DAY, "reject", kind="escalation", reviewer="bob"),  # decided later: counts
        review("f", "d2", T0 + 3 * HOUR, "escalate", reviewer="carol"),
        decision("d3", T0 + HOUR),
        review("g", "d3", T0 + 2 * HOUR, "edit", reviewer="alice"),  # one reviewer: left out
        decision("out", T0 - HOUR),  # outside the window
        review("h", "out", T0 + 2 * HOUR, "edit", reviewer="alice"),
        review("i", "out", T0 + 2 * HOUR, "reject", reviewer="bob"),
    ]
    data = run(db_url, events)
    assert data["total"]["agreement_alpha"] == agreement_alpha([["approve", "approve"],
                                                                 ["reject", "reject", "escalate"]])
    assert data["samples"]["total"]["agreement_units"] == 2
    assert data["samples"]["total"]["agreement_values"] == 5


def test_report_uses_few_queries(db_url: str) -> None:
    engine = load(db_url, [decision("d1", T0 + HOUR)])
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    compute_report(engine, TowerConfig(), T0, END, by=("risk_class", "segment.region"), now_us=NOW)
    engine.dispose()
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4


def test_bad_arguments(db_url: str) -> None:
    engine = load(db_url, [])
    with pytest.raises(ValueError, match="before"):
        compute_report(engine, TowerConfig(), END, T0)
    with pytest.raises(SliceFieldError, match="unknown"):
        compute_report(engine, TowerConfig(), T0, END, by=("reviewer_id",))
    with pytest.raises(SliceFieldError):
        compute_report(engine, TowerConfig(), T0, END, by=("segment.",))
    with pytest.raises(ValueError, match="reference"):
        compute_report(engine, TowerConfig(), T0, END, reference=(T0, T0))
    engine.dispose()


def test_windows_are_half_open(db_url: str) -> None:
    events = [decision("at_start", T0), decision("at_end", END), decision("before", T0 - 1)]
    data = run(db_url, events)
    assert data["total"]["decisions"] == 1
    assert data["samples"]["total"]["reference_decisions"] == 1


def test_report_rows_keep_their_aggregates_for_reliability_diagrams(db_url: str) -> None:
    from collectors.kpis.calibration import reliability_bins

    engine = load(db_url, [decision("d1", T0 + HOUR, confidence=0.85, route="auto"),
                           outcome("d1", T0 + 2 * HOUR, agent_correct=True)])
    report = compute_report(engine, TowerConfig(), T0, END, now_us=NOW)
    engine.dispose()
    bars = reliability_bins(report.total.stats.calibration)
    assert bars[8].count == 1 and bars[8].accuracy == 1.0 and bars[8].mean_confidence == 0.85
