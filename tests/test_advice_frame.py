"""The per-decision frame behind decision support, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from collectors.advice.frame import apply_filters, change_frame, decision_frame
from tests.engine_helpers import DAY, HOUR, T0, decision, load, outcome, review, ts


def _events() -> list[dict]:
    return [
        decision("a", T0, route="auto", confidence=0.95, risk_class="low", queue="q1",
                 segment={"region": "EU"}, policy_checks=[{"rule": "r1", "result": "fail"}], model_cost=0.5),
        review("ra", "a", T0 + HOUR, "approve", kind="audit", reviewer="qa", audit_probability=0.25),
        outcome("a", T0 + 2 * HOUR, agent_correct=False, final_correct=False, error_cost=40.0),
        decision("b", T0 + 1, route="review", confidence=0.6, risk_class="high", queue="q1",
                 segment={"region": "LATAM"}),
        review("rb", "b", T0 + HOUR, "reject", reviewer="bob", reason_code="wrong_amount",
               handle_seconds=360.0),
        outcome("b", T0 + 3 * HOUR, agent_correct=False, final_correct=True, agent_error_cost=100.0),
        decision("c", T0 + 2, route="review", confidence=0.7, risk_class="high"),
        review("rc", "c", T0 + HOUR, "approve", reviewer="bob", handle_seconds=60.0),
        review("rc2", "c", T0 + 2 * HOUR, "approve", kind="audit", reviewer="qa"),
        decision("late", T0 + 2 * DAY, route="review"),
        {"type": "change", "id": "ch1", "changed_at": ts(T0 + HOUR), "actor": "ops", "kind": "threshold",
         "scope": {"risk_class": "low"}, "before": 0.9, "after": 0.8, "reason": "more auto"},
    ]


def test_frame_rows_and_derived_columns(db_url: str, config) -> None:
    engine = load(db_url, _events())
    frame = decision_frame(engine, config, T0, T0 + DAY).set_index("id")
    assert list(frame.index) == ["a", "b", "c"]
    a, b, c = frame.loc["a"], frame.loc["b"], frame.loc["c"]
    assert a["final_verdict"] == "auto" and a["audited"] and a["audit_probability"] == 0.25
    assert a["agent_correct"] == 0.0 and a["error_cost"] == 40.0
    assert a["agent_error_cost"] == 40.0 and not a["agent_error_cost_given"]  # default: agent's own action
    assert a["model_cost"] == 0.5 and a["segment.region"] == "EU"
    assert a["policy_checks"] == [{"rule": "r1", "result": "fail"}]
    assert b["final_verdict"] == "reject" and b["final_reason_code"] == "wrong_amount"
    assert b["agent_error_cost"] == 100.0 and b["agent_error_cost_given"] and b["error_cost"] == 0.0
    assert b["review_cost"] == pytest.approx(360.0 * 60.0 / 3600)
    assert not b["audited"] and math.isnan(b["audit_probability"])
    # An audit review with no probability takes the config's for the risk class.
    assert c["audited"] and c["audit_probability"] == config.audit_probability["high"]
    assert not c["has_outcome"] and math.isnan(c["agent_correct"]) and c["segment.region"] is None


def test_filters_and_changes(db_url: str, config) -> None:
    engine = load(db_url, _events())
    frame = decision_frame(engine, config, T0, T0 + DAY, {"risk_class": "high", "segment.region": "LATAM"})
    assert list(frame["id"]) == ["b"]
    assert apply_filters(frame, {"segment.nope": "x"}).empty
    changes = change_frame(engine)
    assert list(changes["id"]) == ["ch1"] and changes.loc[0, "scope"] == {"risk_class": "low"}
    assert changes.loc[0, "before"] == 0.9 and changes.loc[0, "after"] == 0.8
    assert change_frame(engine, T0 + 2 * HOUR).empty


def test_absent_change_fields_are_none_not_nan(sqlite_url: str) -> None:
    engine = load(sqlite_url, [*_events(), {"type": "change", "id": "ch2", "changed_at": ts(T0 + 2 * HOUR),
                                            "actor": "ops", "kind": "other"}])
    bare = change_frame(engine).set_index("id").loc["ch2"]
    assert bare["before"] is None and bare["after"] is None and bare["reason"] is None
    assert bare["scope"] == {}


def test_shared_frames_read_the_store_once_and_hand_out_copies(sqlite_url: str, config) -> None:
    from sqlalchemy import event

    from collectors.advice.frame import shared_frames

    engine = load(sqlite_url, _events())
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with shared_frames():
        first = decision_frame(engine, config, T0, T0 + DAY)
        first["confidence"] = 0.0  # a caller scribbling on its copy
        second = decision_frame(engine, config, T0, T0 + DAY, {"risk_class": "high"})
    assert len([s for s in statements if "decision_state" in s]) == 1
    assert list(second["id"]) == ["b", "c"] and list(second["confidence"]) == [0.6, 0.7]
    decision_frame(engine, config, T0, T0 + DAY)  # outside the block: read again
    assert len([s for s in statements if "decision_state" in s]) == 2


def test_combined_advice_equals_each_part_alone(sqlite_url: str, config) -> None:
    from collectors.advice.combined import compute_advice
    from collectors.advice.fairness import fairness_report
    from collectors.advice.quality import quality_report

    engine = load(sqlite_url, _events())
    combined = compute_advice(engine, config, T0, T0 + DAY, ["quality", "fairness"])
    assert combined == {"quality": quality_report(engine, config, T0, T0 + DAY),
                        "fairness": fairness_report(engine, config, T0, T0 + DAY)}
    with pytest.raises(ValueError, match="unknown advice part"):
        compute_advice(engine, config, T0, T0 + DAY, ["nope"])
