"""Quality analytics: hand-computed figures on small frames and stores, properties, the Quality page."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.advice import guardrails, model_compare, quality

COLUMNS = {"final_verdict": "approve", "has_outcome": True, "agent_correct": 1.0, "final_correct": 1.0,
           "audited": False, "audit_probability": np.nan, "action_type": "refund", "risk_class": "low",
           "final_reason_code": None, "error_cost": 0.0, "agent_error_cost": 0.0, "policy_checks": None,
           "confidence": 0.9, "agent_id": "a", "model_version": "m1", "proposed_at": 0, "queue": "q",
           "review_seconds": 0.0}


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """A decision frame with the columns quality reads; unspecified fields take COLUMNS' defaults."""
    out = pd.DataFrame([{**COLUMNS, **r} for r in rows])
    no = ~out["has_outcome"]
    for column in ("agent_correct", "final_correct", "error_cost", "agent_error_cost"):
        out.loc[no, column] = np.nan
    return out


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_evaluation_weights_drop_unaudited_auto_and_weight_audits() -> None:
    f = frame({"final_verdict": "auto", "audited": True, "audit_probability": 0.25},
              {"final_verdict": "auto"}, {"final_verdict": "approve"}, {"has_outcome": False},
              {"final_verdict": "reject", "agent_correct": 0.0})
    assert quality.evaluation_weights(f).tolist() == [4.0, 0.0, 1.0, 0.0, 1.0]


def test_precision_and_recall_by_hand() -> None:
    f = frame({"final_verdict": "auto", "audited": True, "audit_probability": 0.5},  # right, weight 2
              {"final_verdict": "approve"},  # right
              {"final_verdict": "approve", "agent_correct": 0.0, "final_correct": 0.0},  # wrong, went through
              {"final_verdict": "reject", "final_correct": 0.0},  # right but rejected: a missed positive
              {"final_verdict": "edit", "agent_correct": 0.0},  # wrong and stopped
              {"final_verdict": "auto", "agent_correct": 0.0, "final_correct": 0.0})  # unaudited: left out
    pr = quality.precision_recall(f)["total"]
    assert close(pr["precision"]["value"], 3 / 4)  # weights 2 + 1 right of 2 + 1 + 1
    assert close(pr["precision"]["n"], 16 / 6)  # effective n = 4^2 / (4 + 1 + 1)
    assert pr["precision"]["rows"] == 3
    assert close(pr["recall"]["value"], 3 / 4)  # 2 + 1 went through of right weights 2 + 1 + 1
    assert pr["precision"]["low"] <= 0.75 <= pr["precision"]["high"]


def test_acceptance_counts_only_human_verdicts() -> None:
    f = frame({"final_verdict": "approve"}, {"final_verdict": "approve", "action_type": "kyc"},
              {"final_verdict": "edit"}, {"final_verdict": "reject"}, {"final_verdict": "auto"},
              {"final_verdict": "pending", "has_outcome": False})
    result = quality.acceptance(f)
    assert result["total"]["value"] == 0.5 and result["total"]["n"] == 4
    assert {r["action_type"]: r["value"] for r in result["by_action_type"]} == {"kyc": 1.0, "refund": 1 / 3}


def test_defects_by_reason_code_and_action_type() -> None:
    f = frame({"final_verdict": "edit", "final_reason_code": "wrong_amount", "final_correct": 0.0},
              {"final_verdict": "edit", "final_reason_code": "wrong_amount"},
              {"final_verdict": "reject", "final_reason_code": "fraud", "action_type": "kyc"},
              {"final_verdict": "approve", "final_correct": 0.0, "action_type": "kyc"},
              {"final_verdict": "auto", "audited": True, "audit_probability": 0.5})
    d = quality.defects(f)
    reasons = {r["reason_code"]: r for r in d["by_reason_code"]}
    assert reasons["wrong_amount"]["value"] == 0.5 and reasons["fraud"]["value"] == 0.0
    assert close(reasons["none"]["value"], 1 / 3)  # approve wrong (1) + audited auto right (2)
    assert close(d["total"]["value"], 2 / 6)
    assert {r["action_type"]: r["value"] for r in d["by_action_type"]} == {"kyc": 0.5, "refund": 0.25}


def test_error_cost_per_thousand_and_concentration() -> None:
    rows = [{"final_correct": 0.0, "error_cost": float(c), "risk_class": "high" if c > 5 else "low"}
            for c in range(1, 11)]
    f = frame(*rows, *({"risk_class": "low"} for _ in range(10)))
    result = quality.error_cost(f)
    assert close(result["total"]["per_1000"], 1000 * 55 / 20)
    by_risk = {r["risk_class"]: r["per_1000"] for r in result["by_risk_class"]}
    assert close(by_risk["high"], 1000 * 40 / 5) and close(by_risk["low"], 1000 * 15 / 15)
    conc = result["concentration"]
    assert conc["errors"] == 10 and conc["top_errors"] == 1 and close(conc["cost_share"], 10 / 55)


def test_error_cost_of_an_empty_sample_is_null() -> None:
    result = quality.error_cost(frame({"has_outcome": False}))
    assert result["total"]["per_1000"] is None and result["concentration"]["cost_share"] is None


def _checks(**results: str) -> list[dict[str, str]]:
    return [{"rule": rule, "result": result} for rule, result in results.items()]


def test_guardrails_by_hand() -> None:
    f = frame({"policy_checks": _checks(limit="fail", dup="pass"), "final_verdict": "approve", "final_correct": 0.0},
              {"policy_checks": _checks(limit="fail"), "final_verdict": "reject"},
              {"policy_checks": _checks(limit="fail"), "final_verdict": "auto", "audited": True,
               "audit_probability": 0.5},
              {"policy_checks": _checks(limit="warn"), "final_verdict": "approve"},
              {"policy_checks": _checks(limit="pass", dup="warn"), "final_verdict": "approve"},
              {"policy_checks": None, "final_verdict": "approve"})
    result = guardrails.guardrail_table(f, quality.evaluation_weights(f), min_samples=1)
    rules = {r["rule"]: r for r in result["rows"]}
    limit = rules["limit"]
    assert limit["checks"] == 5 and limit["fail"]["value"] == 3 / 5 and limit["warn"]["value"] == 1 / 5
    assert close(limit["failed_but_went_through"]["value"], 2 / 3)
    assert limit["failed_but_auto"] == 1 and limit["failed_but_approved"] == 1
    assert close(limit["defect_failed_through"]["value"], 1 / 3)  # approve wrong (1) vs audited auto right (2)
    assert limit["defect_passed_through"]["value"] == 0.0
    assert rules["dup"]["checks"] == 2 and rules["dup"]["fail"]["value"] == 0.0
    assert result["any_failed"]["value"] == 3 / 5
    assert guardrails.failed_any(f).tolist() == [True, True, True, False, False, False]


def test_model_versions_roles_and_tests() -> None:
    rows = ([{"model_version": "v1", "proposed_at": 10, "agent_correct": 1.0}] * 30
            + [{"model_version": "v0", "proposed_at": 1, "agent_correct": 0.0, "final_verdict": "edit"}] * 10
            + [{"model_version": "v2", "proposed_at": 20, "agent_correct": 1.0, "confidence": 0.55}] * 5)
    versions = {v["model_version"]: v for v in model_compare.compare_versions(frame(*rows), np.ones(45), 1)}
    assert versions["v1"]["role"] == "stable" and versions["v1"]["accuracy_p_value"] is None
    assert versions["v0"]["role"] == "previous" and versions["v2"]["role"] == "canary"
    assert versions["v0"]["accuracy"]["value"] == 0.0 and versions["v0"]["accuracy_delta"] == -1.0
    assert versions["v0"]["intervention_rate"]["value"] == 1.0
    assert versions["v0"]["accuracy_p_value"] is not None and versions["v0"]["accuracy_p_value"] < 1e-6
    assert close(versions["v1"]["ece"], 0.1)  # confidence 0.9, all right
    assert close(versions["v2"]["ece"], 0.45)


def test_model_ece_equals_the_calibration_kpi() -> None:
    rng = np.random.default_rng(3)
    conf, right = rng.random(200), (rng.random(200) < 0.7).astype(float)
    from collectors.kpis.calibration import CalibrationBins, confidence_bin, ece

    bins = [confidence_bin(c) for c in conf]
    sums = CalibrationBins(tuple(bins.count(i) for i in range(10)),
                           tuple(float(sum(c for c, b in zip(conf, bins) if b == i)) for i in range(10)),
                           tuple(int(sum(r for r, b in zip(right, bins) if b == i)) for i in range(10)),
                           (0.0,) * 10)
    assert close(model_compare.version_ece(conf, right), ece(sums))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["auto", "approve", "edit", "reject", "pending"]), st.booleans(),
                          st.booleans(), st.booleans(), st.sampled_from([0.05, 0.5, 1.0]),
                          st.sampled_from(["refund", "kyc"])), min_size=1, max_size=40))
def test_every_share_is_a_rate_with_its_estimate_inside(rows: list[tuple[Any, ...]]) -> None:
    f = frame(*({"final_verdict": v, "has_outcome": has and v != "pending", "agent_correct": float(a),
                 "final_correct": float(a), "audited": v == "auto", "audit_probability": p if v == "auto" else np.nan,
                 "action_type": t, "error_cost": 0.0 if a else 5.0} for v, has, a, _, p, t in rows))
    parts = [quality.precision_recall(f), quality.acceptance(f), quality.defects(f),
             guardrails.guardrail_table(f, quality.evaluation_weights(f), 1)]
    shares = list(_shares(parts))
    assert shares
    for s in shares:
        if s["value"] is None:
            assert s["low"] is None and s["high"] is None
        else:
            assert -1e-9 <= s["low"] <= s["value"] + 1e-9
            assert s["value"] <= s["high"] + 1e-9 <= 1 + 2e-9
    json.dumps(parts, allow_nan=False)


def _shares(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        if {"value", "low", "high", "n"} <= set(obj):
            yield obj
        for v in obj.values():
            yield from _shares(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _shares(v)


# ---- on a store --------------------------------------------------------------------------------------

def _gold_events() -> list[dict[str, Any]]:
    events = []
    for i in range(12):
        right = i % 3 != 0  # d0, d3, d6, d9: the agent was wrong
        events.append(decision(f"d{i}", T0 + i * HOUR, route="auto", confidence=0.9,
                               policy_checks=[{"rule": "limit", "result": "fail" if i == 0 else "pass"}]))
        # qa judges every item right; bob approves everything (right on 8 of 12)
        events.append(review(f"a{i}", f"d{i}", T0 + DAY, "approve" if right else "reject", kind="audit",
                             reviewer="qa", audit_probability=0.5))
        events.append(review(f"b{i}", f"d{i}", T0 + DAY + HOUR, "approve", kind="audit", reviewer="bob"))
        events.append(outcome(f"d{i}", T0 + 2 * DAY, agent_correct=right, final_correct=right,
                              error_cost=None if right else 10.0))
    events.append(decision("p1", T0, route="review"))
    events.append(review("r1", "p1", T0 + HOUR, "approve", reviewer="carol"))
    events.append(outcome("p1", T0 + DAY, agent_correct=False, final_correct=False, error_cost=30.0))
    return events


def test_quality_report_on_a_store(db_url: str, config: Any) -> None:
    engine = load(db_url, _gold_events())
    try:
        result = quality.quality_report(engine, config, T0, T0 + DAY)
    finally:
        engine.dispose()
    json.dumps(result, allow_nan=False)
    assert result["decisions"] == 13
    gold = result["gold_accuracy"]
    by = {r["reviewer_id"]: r for r in gold["rows"]}
    assert by["qa"]["value"] == 1.0 and by["qa"]["n"] == 12
    assert by["bob"]["value"] == 8 / 12
    assert gold["team"]["value"] == 20 / 24
    assert gold["flagged"] == []  # bob's upper bound (0.89) is above the team's 0.83
    prim = result["reviewer_accuracy"]
    assert [(r["reviewer_id"], r["value"]) for r in prim["rows"]] == [("carol", 0.0)]
    # precision: 12 audited auto items weighted 2 (8 right) and carol's wrong approval
    pr = result["precision_recall"]["total"]["precision"]
    assert close(pr["value"], 16 / 25) and pr["rows"] == 13
    assert close(result["error_cost"]["total"]["per_1000"], 1000 * (4 * 10 * 2 + 30) / 25)
    limit = result["guardrails"]["rows"][0]
    assert limit["rule"] == "limit" and limit["failed_but_auto"] == 1
    assert result["model_versions"][0]["role"] == "stable"


def test_a_reviewer_far_below_the_team_is_flagged() -> None:
    reviews = pd.DataFrame(
        [{"decision_id": f"d{i}", "reviewer_id": "qa", "kind": "audit", "verdict": "approve", "route": "auto",
          "action_type": "refund", "agent_correct": True, "final_correct": True} for i in range(60)]
        + [{"decision_id": f"e{i}", "reviewer_id": "gus", "kind": "audit", "verdict": "reject", "route": "auto",
            "action_type": "refund", "agent_correct": True, "final_correct": True} for i in range(15)])
    gold = quality.gold_accuracy(reviews, min_items=15)
    assert gold["flagged"] == ["gus"]
    gus = next(r for r in gold["rows"] if r["reviewer_id"] == "gus")
    assert gus["value"] == 0.0 and close(gus["expected"], 60 / 75)


# ---- minimum sample of a flag ---------------------------------------------------------------------------

FLOOR = 100  # config.fairness.min_samples' default: the floor of model versions and guardrails
ITEMS = 20  # DISSENT_MIN_ITEMS, the Agreement page's floor for flagging a reviewer: the reviewers' floor


def _reviews(reviewer: str, n: int, verdict: str) -> list[dict[str, Any]]:
    return [{"decision_id": f"{reviewer}{i}", "reviewer_id": reviewer, "kind": "audit", "verdict": verdict,
             "route": "auto", "action_type": "refund", "agent_correct": True, "final_correct": True}
            for i in range(n)]


def test_one_wrong_review_flags_no_reviewer() -> None:
    from collectors.kpis.reviewers import DISSENT_MIN_ITEMS

    assert DISSENT_MIN_ITEMS == ITEMS
    reviews = pd.DataFrame(_reviews("qa", 300, "approve") + _reviews("gus", 1, "reject"))
    assert quality.gold_accuracy(reviews, min_items=1)["flagged"] == ["gus"]  # the Wilson bound alone: 0.79
    for table in (quality.gold_accuracy(reviews), quality.reviewer_accuracy(reviews.assign(kind="primary"))):
        gus = next(r for r in table["rows"] if r["reviewer_id"] == "gus")
        assert table["flagged"] == [] and not gus["below_team"] and not gus["enough_samples"]
        assert gus["value"] == 0.0  # the figure is still there, only not flagged
    few = pd.DataFrame(_reviews("qa", 300, "approve") + _reviews("gus", ITEMS - 1, "reject"))
    assert quality.gold_accuracy(few)["flagged"] == []
    enough = pd.DataFrame(_reviews("qa", 300, "approve") + _reviews("gus", ITEMS, "reject"))
    assert quality.gold_accuracy(enough)["flagged"] == ["gus"]


def _canary(n: int) -> pd.DataFrame:
    return frame(*([{"model_version": "v1", "proposed_at": 1, "agent_correct": 1.0}] * 270
                   + [{"model_version": "v1", "proposed_at": 1, "agent_correct": 0.0}] * 30
                   + [{"model_version": "v2", "proposed_at": 9, "agent_correct": 0.0}] * n))


def test_one_wrong_outcome_flags_no_model_version() -> None:
    one = _canary(1)
    canary = model_compare.compare_versions(one, np.ones(len(one)), FLOOR)[1]
    assert canary["role"] == "canary" and canary["accuracy_p_value"] < 0.05 and canary["accuracy_delta"] < 0
    assert not canary["flagged"] and not canary["enough_samples"]
    assert model_compare.compare_versions(one, np.ones(len(one)), 1)[1]["flagged"]
    many = _canary(FLOOR)
    assert model_compare.compare_versions(many, np.ones(len(many)), FLOOR)[1]["flagged"]
    assert not model_compare.compare_versions(many, np.ones(len(many)), FLOOR)[0]["flagged"]  # stable never


def _guarded(failed_through: int) -> pd.DataFrame:
    ok = {"policy_checks": _checks(limit="pass"), "final_verdict": "approve"}
    bad = {"policy_checks": _checks(limit="fail"), "final_verdict": "approve", "agent_correct": 0.0,
           "final_correct": 0.0}
    return frame(*([ok] * 300 + [bad] * failed_through))


def test_one_wrong_override_flags_no_guardrail() -> None:
    one = _guarded(1)
    limit = guardrails.guardrail_table(one, quality.evaluation_weights(one), FLOOR)["rows"][0]
    assert limit["p_value"] < 0.05 and not limit["flagged"]
    assert guardrails.guardrail_table(one, quality.evaluation_weights(one), 1)["rows"][0]["flagged"]
    many = _guarded(FLOOR)
    assert guardrails.guardrail_table(many, quality.evaluation_weights(many), FLOOR)["rows"][0]["flagged"]


def test_the_report_carries_its_floors(db_url: str, config: Any) -> None:
    engine = load(db_url, _gold_events())
    try:
        result = quality.quality_report(engine, config, T0, T0 + DAY)
        strict = quality.quality_report(engine, config.model_copy(update={"fairness": config.fairness.model_copy(
            update={"min_samples": 12})}), T0, T0 + DAY)
    finally:
        engine.dispose()
    assert result["min_samples"] == config.fairness.min_samples == FLOOR
    assert result["reviewer_min_items"] == ITEMS and result["significance"] == 0.05
    assert not any(r["enough_samples"] for r in result["gold_accuracy"]["rows"])  # 12 audits each
    assert not result["model_versions"][0]["enough_samples"]  # 13 outcomes
    assert strict["min_samples"] == 12 and strict["model_versions"][0]["enough_samples"]


# ---- the page ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_caches")
def test_quality_page_renders_on_a_synth_store(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", synth_url_30d)
    page = str(Path(__file__).parent.parent / "app" / "views" / "quality.py")
    at = AppTest.from_file(page, default_timeout=120)
    at.session_state["_keep_window"] = "last 30d"
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    assert at.title[0].value == "Quality"
    assert [m.label for m in at.metric][:3] == ["Precision", "Recall", "Acceptance"]
    assert len(at.get("plotly_chart")) == 3
    assert any("gus.w" in w.value for w in at.warning)  # the erratic reviewer of the demo data
