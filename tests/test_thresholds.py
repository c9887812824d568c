"""Threshold advice: the cost model against a hand-computed example and a plain-Python reference, the
recommendation, the bootstrap, the refusal, the current threshold, the CLI and the Cost curves page."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review, ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from collectors.advice import cost_model
from collectors.advice.cost_model import GRID
from collectors.advice.thresholds import advise, current_change, threshold_advice
from collectors.cli import app
from collectors.config import Thresholds, TowerConfig

# ---- the hand-computed scope ------------------------------------------------------------------
#
# Auto decisions (A = 4): a1 and a2 audited with an outcome (1/p = 2 and 4, sum 6), so their weights are
# 2 x 4/6 = 4/3 and 4 x 4/6 = 8/3; a3 has no outcome; a4's outcome is not from an audit and is left out.
# Reviewed decisions (R = 5, 4 with an outcome): weight 5/4 each. Pending p1 is left out. Total weight 9.
# Stand-ins: agent cost of wrong proposals where known (a2 100 at 8/3, r2 80 at 5/4) = 4400/47;
# miss = 1/2 (r2 fixed, r3 not); harm = 1/2 (r4 broken, r1 not) at cost 30; review cost = 12/5 = 2.4.

COLUMNS = ("id", "route", "confidence", "final_verdict", "has_outcome", "agent_correct", "final_correct",
           "error_cost", "agent_error_cost", "agent_error_cost_given", "review_cost", "review_seconds",
           "audited", "audit_probability", "queue")
HAND = [
    ("a1", "auto", 0.90, "auto", True, 1, 1, 0, 0, False, 0.5, 30, True, 0.5, "q"),
    ("a2", "auto", 0.80, "auto", True, 0, 0, 100, 100, False, 0.5, 30, True, 0.25, "q"),
    ("a3", "auto", 0.95, "auto", False, None, None, None, None, False, 0, 0, False, None, "q"),
    ("a4", "auto", 0.85, "auto", True, 0, 0, 50, 50, False, 0, 0, False, None, "q"),
    ("r1", "review", 0.60, "approve", True, 1, 1, 0, 0, False, 2, 120, False, None, "q"),
    ("r2", "review", 0.70, "reject", True, 0, 1, 0, 80, True, 3, 180, False, None, "q"),
    ("r3", "review", 0.55, "edit", True, 0, 0, 40, 0, False, 1, 60, False, None, "q"),
    ("r4", "review", 0.65, "edit", True, 1, 0, 30, 0, False, 2, 120, False, None, "q"),
    ("r5", "review", 0.75, "approve", False, None, None, None, None, False, 4, 240, False, None, "q"),
    ("p1", "review", 0.90, "pending", False, None, None, None, None, False, 0, 0, False, None, "q"),
]
COST_050 = 1000 * (800 / 3 + 100 + 5 / 4 * 4400 / 47) / 9  # everything auto-approved; r3 at the imputed cost
COST_070 = 1000 * (800 / 3 + 100 + 5 / 4 * (2 + 41 + 32)) / 9  # a1 a2 r2 auto; r1 r3 r4 reviewed
COST_095 = 1000 * (4 / 3 * (2.4 + 0.5 * 30) + 8 / 3 * (2.4 + 0.5 * 100) + 5 / 4 * (2 + 3 + 41 + 32)) / 9


def hand_frame(rows: list[tuple[Any, ...]] = HAND) -> pd.DataFrame:
    """A decision frame with the columns the cost model reads."""
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    for column in ("agent_correct", "final_correct", "error_cost", "agent_error_cost", "audit_probability"):
        frame[column] = frame[column].astype(float)
    return frame


def make_config(**thresholds: Any) -> TowerConfig:
    return TowerConfig(thresholds=Thresholds(**thresholds))


def at(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    return next(row for row in result["curve"] if row["threshold"] == threshold)


def test_hand_example_costs_at_three_thresholds() -> None:
    result = advise(hand_frame(), 0.05, make_config())
    assert result["decisions"] == 9 and result["outcomes"] == 6
    assert at(result, 0.5)["cost_per_1000"] == pytest.approx(COST_050, rel=1e-12)
    assert at(result, 0.7)["cost_per_1000"] == pytest.approx(COST_070, rel=1e-12)
    assert at(result, 0.95)["cost_per_1000"] == pytest.approx(COST_095, rel=1e-12)
    row = at(result, 0.7)
    assert row["auto_rate"] == pytest.approx((4 / 3 + 8 / 3 + 5 / 4) / 9)
    assert row["error_rate"] == pytest.approx((8 / 3 + 3 * 5 / 4) / 9)
    assert row["reviews_per_1000"] == pytest.approx(1000 * 3.75 / 9)
    assert row["review_hours_per_1000"] == pytest.approx(1000 * 5 / 4 * 300 / 9 / 3600)
    # Everything reviewed: a1 may be broken (harm 1/2), a2's error missed (1/2), r3 and r4 stay wrong.
    assert at(result, 0.95)["error_rate"] == pytest.approx(0.5)
    assert at(result, 0.95)["auto_rate"] == 0.0
    assert at(result, 0.95)["review_hours_per_1000"] == pytest.approx(
        1000 * (4 * 144 + 5 / 4 * 480) / 9 / 3600)


def test_too_few_outcomes_is_refused_with_the_exact_message_but_keeps_the_curve() -> None:
    result = advise(hand_frame(), 0.05, make_config(), current=0.7)
    assert result["refused"] == "not enough outcomes: 6 of 200 needed"
    assert result["recommended_threshold"] is None and result["interval"] is None
    assert len(result["curve"]) == 50
    assert result["cost_at_current"] == pytest.approx(COST_070)
    assert any("1 outcome of unaudited auto decisions left out" in c for c in result["caveats"])
    assert any("imputed as 93.62" in c for c in result["caveats"])
    empty = advise(hand_frame()[~hand_frame()["has_outcome"]], 0.05, make_config())
    assert empty["refused"] == "not enough outcomes: 0 of 200 needed" and empty["curve"] == []


def test_halving_an_audit_probability_doubles_that_items_share_of_the_auto_stratum() -> None:
    rows = [r if r[0] != "a2" else (*r[:13], 0.125, r[14]) for r in HAND]
    result = advise(hand_frame(rows), 0.05, make_config())
    # 1/p = 2 and 8 (sum 10): weights 4 x 2/10 = 0.8 and 4 x 8/10 = 3.2.
    assert at(result, 0.7)["cost_per_1000"] == pytest.approx(1000 * (3.2 * 100 + 100 + 5 / 4 * 75) / 9)
    assert at(result, 0.7)["error_rate"] == pytest.approx((3.2 + 3 * 5 / 4) / 9)


def test_recommendation_is_the_cheapest_within_the_cap_ties_to_the_higher_threshold() -> None:
    cost = np.array([[5.0, 3.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    error = np.array([[0.0, 0.01, 0.01, 0.2], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    assert cost_model.recommend(cost, error, 0.05).tolist() == [2, 3, -1]


def test_a_scope_no_threshold_can_keep_under_the_cap_is_refused() -> None:
    config = make_config(min_outcomes=1, bootstrap_resamples=20)
    result = advise(hand_frame(), 0.005, config)
    assert result["refused"] == "no threshold keeps the error rate under 0.5%: route every item to review"
    assert result["recommended_threshold"] is None and result["interval"] is None
    assert 0.5 <= result["refused_share"] <= 1  # a resample with no wrong item can meet any cap


def test_recommendation_bootstrap_is_reproducible_and_on_the_grid() -> None:
    config = make_config(min_outcomes=1, bootstrap_resamples=50)
    first = advise(hand_frame(), 0.9, config, current=0.6)
    again = advise(hand_frame(), 0.9, config, current=0.6)
    assert first == again
    assert first["recommended_threshold"] in GRID
    low, high = first["interval"]
    assert low in GRID and high in GRID and low <= high
    assert first["saving_per_1000"] == pytest.approx(first["cost_at_current"] - first["cost_at_recommended"])
    json.dumps(first, allow_nan=False)


def test_an_auto_stratum_without_audited_outcomes_is_named_in_a_caveat() -> None:
    rows = [r if r[1] != "auto" else (*r[:12], False, None, r[14]) for r in HAND]
    result = advise(hand_frame(rows), 0.05, make_config())
    assert result["outcomes"] == 4
    assert any(c.startswith("4 auto decisions but no audited outcome") for c in result["caveats"])


# ---- a plain-Python reference and properties ---------------------------------------------------


def reference_curve(frame: pd.DataFrame, threshold: float, hourly: float = 60.0) -> tuple[float, float, float]:
    """(cost per 1000, error rate, auto rate) at one threshold, the slow obvious way."""
    rows = [r for r in frame.to_dict("records") if r["final_verdict"] != "pending"]
    auto = [r for r in rows if r["route"] == "auto"]
    nonauto = [r for r in rows if r["route"] != "auto"]
    used_a = [r for r in auto if r["audited"] and r["has_outcome"]]
    used_r = [r for r in nonauto if r["has_outcome"]]
    inv = sum(1 / r["audit_probability"] for r in used_a)
    w = {id(r): len(auto) / r["audit_probability"] / inv for r in used_a}
    w.update({id(r): len(nonauto) / len(used_r) for r in used_r})
    used = used_a + used_r
    wrong = {id(r): 1 - r["agent_correct"] for r in used}

    def missing(r: dict[str, Any]) -> bool:
        return r["final_verdict"] in ("edit", "reject") and not r["agent_error_cost_given"] and wrong[id(r)] == 1

    def mean(pairs: list[tuple[float, float]], default: float) -> float:
        total = sum(p[0] for p in pairs)
        return sum(p[0] * p[1] for p in pairs) / total if total > 0 else default

    known = [(w[id(r)], r["agent_error_cost"]) for r in used if wrong[id(r)] == 1 and not missing(r)]
    fallback = mean([(w[id(r)], r["error_cost"]) for r in used if r["final_correct"] == 0], 0.0)
    aec_bar = mean(known, fallback)
    miss = mean([(1, 1 - r["final_correct"]) for r in used_r if r["agent_correct"] == 0], 0.0)
    harm = mean([(1, 1 - r["final_correct"]) for r in used_r if r["agent_correct"] == 1], 0.0)
    harm_cost = mean([(1, r["error_cost"]) for r in used_r if r["agent_correct"] == 1 and r["final_correct"] == 0],
                     0.0)
    if nonauto:
        rc_bar = sum(r["review_cost"] for r in nonauto) / len(nonauto)
    else:
        seconds = [r["review_seconds"] for r in rows if r["review_seconds"] > 0]
        rc_bar = hourly * float(np.median(seconds)) / 3600 if seconds else 0.0
    cost = errors = autos = 0.0
    for r in used:
        bad = wrong[id(r)]
        aec = aec_bar if missing(r) else r["agent_error_cost"]
        if r["confidence"] >= threshold:
            c, e = bad * aec, bad
            autos += w[id(r)]
        elif r["route"] != "auto":
            c, e = r["review_cost"] + (1 - r["final_correct"]) * r["error_cost"], 1 - r["final_correct"]
        else:
            c = rc_bar + bad * aec * miss + (1 - bad) * harm * harm_cost
            e = bad * miss + (1 - bad) * harm
        cost += w[id(r)] * c
        errors += w[id(r)] * e
    total = sum(w.values())
    return 1000 * cost / total, errors / total, autos / total


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Random scopes with auto (audited or not) and reviewed decisions, outcomes and costs."""
    n = draw(st.integers(2, 30))
    rows = []
    for i in range(n):
        route = draw(st.sampled_from(["auto", "review", "shadow"]))
        conf = draw(st.sampled_from([0.3, 0.5, 0.62, 0.75, 0.8, 0.87, 0.9, 0.955, 0.99, 1.0]))
        has = draw(st.booleans())
        audited = route == "auto" and draw(st.booleans())
        verdict = "auto" if route == "auto" else draw(st.sampled_from(["approve", "edit", "reject"]))
        agent_ok, final_ok = draw(st.integers(0, 1)), draw(st.integers(0, 1))
        ec = float(draw(st.integers(0, 500))) if not final_ok else 0.0
        given = draw(st.booleans())
        aec = float(draw(st.integers(0, 500))) if given else (ec if verdict in ("auto", "approve") else 0.0)
        rows.append((f"d{i}", route, conf, verdict, has, agent_ok if has else None, final_ok if has else None,
                     ec if has else None, aec if has else None, given,
                     float(draw(st.integers(0, 20))), float(draw(st.integers(0, 600))), audited,
                     draw(st.sampled_from([0.05, 0.1, 0.5, 1.0])) if audited else None, "q"))
    frame = hand_frame(rows)
    used = (frame["has_outcome"] & ((frame["route"] != "auto") | frame["audited"])).any()
    return frame if used else hand_frame(rows + [HAND[4]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_vectorised_curves_equal_the_plain_reference(frame: pd.DataFrame) -> None:
    result = advise(frame, 0.05, make_config())
    for t in (0.5, 0.62, 0.75, 0.87, 0.99):
        cost, error, auto = reference_curve(frame, t)
        row = at(result, t)
        assert row["cost_per_1000"] == pytest.approx(cost, rel=1e-9, abs=1e-9)
        assert row["error_rate"] == pytest.approx(error, rel=1e-9, abs=1e-12)
        assert row["auto_rate"] == pytest.approx(auto, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.floats(0.0, 0.6), st.one_of(st.none(), st.sampled_from([0.5, 0.7, 0.75, 0.9, 0.99]),
                                                  st.floats(0.3, 1.0)))
def test_properties_of_the_advice(frame: pd.DataFrame, cap: float, current: float | None) -> None:
    result = advise(frame, cap, make_config(min_outcomes=1, bootstrap_resamples=10), current)
    curve = result["curve"]
    autos = [row["auto_rate"] for row in curve]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(autos)), "auto rate never rises with the threshold"
    for row in curve:
        assert 0 <= row["auto_rate"] <= 1 + 1e-12 and 0 <= row["error_rate"] <= 1 + 1e-12
        assert row["cost_per_1000"] >= 0
    if result["recommended_threshold"] is not None:
        assert result["at_recommended"]["error_rate"] <= cap + 1e-12
        if result["at_current"] is not None and result["at_current"]["within_cap"]:
            assert result["cost_at_recommended"] <= result["cost_at_current"] + 1e-9
            assert result["saving_per_1000"] >= -1e-9
        low, high = result["interval"] or (None, None)
        assert low is None or low <= high
    elif result["at_current"] is not None:
        assert not result["at_current"]["within_cap"], "refused although the current threshold meets the cap"
    assert result["refused_share"] is None or 0 <= result["refused_share"] <= 1
    json.dumps(result, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(frames(), st.data())
def test_a_bootstrap_row_of_counts_equals_repeating_the_decisions(frame: pd.DataFrame, data: st.DataObject) -> None:
    frame = frame[frame["final_verdict"] != "pending"].reset_index(drop=True)
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(frame), max_size=len(frame))))
    repeated = frame.loc[frame.index.repeat(counts)].reset_index(drop=True)
    items = cost_model.build_items(frame)
    fallback = cost_model.impute(items, np.ones((1, len(frame))))
    fallback = cost_model.Imputed(*(np.nan_to_num(v) for v in vars(fallback).values()))
    via_counts = cost_model.evaluate(items, GRID, counts[None, :].astype(float), fallback)
    rep_items = cost_model.build_items(repeated)
    direct = cost_model.evaluate(rep_items, GRID, np.ones((1, len(repeated))), fallback)
    for key in ("cost_per_1000", "error_rate", "auto_rate", "review_hours_per_1000"):
        np.testing.assert_allclose(getattr(via_counts, key), getattr(direct, key), rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(frames(), st.randoms(use_true_random=False))
def test_the_curve_does_not_depend_on_row_order(frame: pd.DataFrame, rnd: Any) -> None:
    order = list(range(len(frame)))
    rnd.shuffle(order)
    a = advise(frame, 0.1, make_config())["curve"]
    b = advise(frame.iloc[order].reset_index(drop=True), 0.1, make_config())["curve"]
    for x, y in zip(a, b):
        assert x["cost_per_1000"] == pytest.approx(y["cost_per_1000"], rel=1e-9, abs=1e-9)


def test_bootstrap_of_ten_thousand_decisions_is_quick() -> None:
    import time

    rng = np.random.default_rng(1)
    n = 10_000
    conf = np.round(rng.beta(8, 1.5, n), 3)
    auto = conf >= 0.8
    ok = rng.random(n) < conf
    audited = auto & (rng.random(n) < 0.1)
    has = np.where(auto, audited & (rng.random(n) < 0.8), rng.random(n) < 0.6)
    frame = pd.DataFrame({
        "route": np.where(auto, "auto", "review"), "confidence": conf,
        "final_verdict": np.where(auto, "auto", np.where(ok, "approve", "edit")), "has_outcome": has,
        "agent_correct": np.where(has, ok, np.nan).astype(float),
        "final_correct": np.where(has, ok | ~auto, np.nan).astype(float),
        "error_cost": np.where(has, np.where(ok | ~auto, 0.0, 100.0), np.nan),
        "agent_error_cost": np.where(has, np.where(ok, 0.0, 100.0), np.nan), "agent_error_cost_given": has,
        "review_cost": np.where(auto, 0.0, 2.0), "review_seconds": np.where(auto, 0.0, 120.0),
        "audited": audited, "audit_probability": np.where(audited, 0.1, np.nan), "queue": "q"})
    began = time.perf_counter()
    result = advise(frame, 0.05, make_config(bootstrap_resamples=200))
    assert time.perf_counter() - began < 3.0  # ~0.2 s here; generous for a shared CI machine
    assert result["recommended_threshold"] is not None and result["interval"] is not None


# ---- the current threshold ---------------------------------------------------------------------


def changes(*rows: tuple[str, str, dict[str, str], Any]) -> pd.DataFrame:
    return pd.DataFrame([{"id": i, "changed_at": T0 + k * HOUR, "actor": "ops", "kind": kind, "scope": scope,
                          "before": None, "after": after, "reason": None}
                         for k, (i, kind, scope, after) in enumerate(rows)])


def test_the_current_threshold_is_the_latest_matching_threshold_change() -> None:
    log = changes(("c1", "threshold", {}, 0.9), ("c2", "threshold", {"risk_class": "low"}, 0.8),
                  ("c3", "threshold", {"risk_class": "low", "agent_id": "x"}, 0.6),
                  ("c4", "policy", {}, 0.1), ("c5", "threshold", {"risk_class": "high"}, 0.99))
    low = {"risk_class": "low", "action_type": "refund"}
    end = T0 + DAY
    assert current_change(log, low, end) == {"threshold": 0.8, "id": "c2", "changed_at": ts(T0 + HOUR),
                                             "from": "after"}
    assert current_change(log, {**low, "agent_id": "x"}, end)["threshold"] == 0.6  # a filter fixes agent_id
    assert current_change(log, {"risk_class": "medium", "action_type": "refund"}, end)["threshold"] == 0.9
    assert current_change(log.iloc[1:], {"risk_class": "medium", "action_type": "refund"}, end) is None
    assert current_change(changes(("c1", "threshold", {}, 0.9), ("c2", "threshold", {}, "strict")), low, end) is None
    assert current_change(changes(("c1", "threshold", {}, True)), low, end) is None
    assert current_change(changes(), low, end) is None


def test_before_the_first_change_the_current_threshold_is_what_it_replaced() -> None:
    log = changes(("c1", "threshold", {"risk_class": "low"}, 0.75), ("c2", "threshold", {}, 0.7))
    log["before"] = [0.85, 0.75]
    low = {"risk_class": "low", "action_type": "refund"}
    # The window ends before c1 (at T0): the threshold then was c1's `before`.
    assert current_change(log, low, T0) == {"threshold": 0.85, "id": "c1", "changed_at": ts(T0), "from": "before"}
    assert current_change(log, low, T0 + 1)["threshold"] == 0.75  # c1 is in force
    assert current_change(log, low, T0 + HOUR + 1)["threshold"] == 0.7  # c2 (everywhere) came later
    log["before"] = [None, None]
    assert current_change(log, low, T0) is None


# ---- through the store and the command line -----------------------------------------------------


def hand_events() -> list[dict[str, Any]]:
    """The hand-computed scope as audit events (review cost = handle seconds at 60 per hour)."""
    t = T0 + HOUR
    events: list[dict[str, Any]] = [
        decision("a1", t, route="auto", confidence=0.9), decision("a2", t, route="auto", confidence=0.8),
        decision("a3", t, route="auto", confidence=0.95), decision("a4", t, route="auto", confidence=0.85),
        decision("r1", t, confidence=0.6), decision("r2", t, confidence=0.7), decision("r3", t, confidence=0.55),
        decision("r4", t, confidence=0.65), decision("r5", t, confidence=0.75), decision("p1", t, confidence=0.9),
        decision("m1", t, risk_class="medium", action_type="refund", confidence=0.7),
        review("v1", "a1", t + HOUR, kind="audit", audit_probability=0.5, handle_seconds=30),
        review("v2", "a2", t + HOUR, kind="audit", audit_probability=0.25, handle_seconds=30),
        review("v3", "r1", t + HOUR, "approve", handle_seconds=120),
        review("v4", "r2", t + HOUR, "reject", handle_seconds=180),
        review("v5", "r3", t + HOUR, "edit", handle_seconds=60),
        review("v6", "r4", t + HOUR, "edit", handle_seconds=120),
        review("v7", "r5", t + HOUR, "approve", handle_seconds=240),
        review("v8", "m1", t + HOUR, "approve", handle_seconds=60),
        outcome("a1", t + 2 * HOUR), outcome("a2", t + 2 * HOUR, False, False, error_cost=100),
        outcome("a4", t + 2 * HOUR, False, False, error_cost=50),
        outcome("r1", t + 2 * HOUR), outcome("r2", t + 2 * HOUR, False, True, agent_error_cost=80),
        outcome("r3", t + 2 * HOUR, False, False, error_cost=40),
        outcome("r4", t + 2 * HOUR, True, False, error_cost=30),
        {"type": "change", "id": "c1", "changed_at": ts(T0), "actor": "ops", "kind": "threshold",
         "scope": {"risk_class": "low"}, "before": 0.85, "after": 0.7},
        {"type": "change", "id": "c2", "changed_at": ts(T0 + 2 * DAY), "actor": "ops", "kind": "threshold",
         "scope": {"risk_class": "low"}, "before": 0.7, "after": 0.9},
    ]
    return events


@pytest.fixture
def store_url(db_url: str) -> str:
    load(db_url, hand_events()).dispose()
    return db_url


def test_threshold_advice_from_the_store_equals_the_hand_example(store_url: str, config: TowerConfig) -> None:
    from collectors.store.db import open_store

    engine = open_store(store_url, create=False)
    try:
        data = threshold_advice(engine, config, T0, T0 + DAY)
    finally:
        engine.dispose()
    assert [(s["risk_class"], s["action_type"]) for s in data["scopes"]] == [("low", "refund"), ("medium", "refund")]
    low = data["scopes"][0]
    assert low["decisions"] == 9 and low["outcomes"] == 6
    assert low["current_threshold"] == 0.7 and low["current_change"]["id"] == "c1"  # c2 is after the window
    assert low["current_change"]["from"] == "after"
    assert low["cost_at_current"] == pytest.approx(COST_070)
    assert at(low, 0.5)["cost_per_1000"] == pytest.approx(COST_050)
    assert at(low, 0.95)["cost_per_1000"] == pytest.approx(COST_095)
    assert low["refused"] == "not enough outcomes: 6 of 200 needed"
    medium = data["scopes"][1]
    assert medium["refused"] == "not enough outcomes: 0 of 200 needed" and medium["current_threshold"] is None
    assert data["grid"] == [round(x / 100, 2) for x in range(50, 100)]
    json.dumps(data, allow_nan=False)


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["thresholds", *args], catch_exceptions=False)


def test_cli_table_and_json(sqlite_url: str, tmp_path: Path) -> None:
    load(sqlite_url, hand_events()).dispose()
    window = ("--start", ts(T0), "--end", ts(T0 + DAY))
    result = invoke("--db", sqlite_url, *window)
    assert result.exit_code == 0, result.output
    assert "low / refund: not enough outcomes: 6 of 200 needed; current 0.70" in result.stdout
    assert "medium / refund: not enough outcomes: 0 of 200 needed; current unknown" in result.stdout
    current = next(line for line in result.stdout.splitlines() if line.strip().startswith("current"))
    assert current.split()[1:3] == ["0.70", f"{COST_070:,.2f}"]
    thresholds = [line.split()[-7] for line in result.stdout.splitlines() if line.endswith((" over", " ok"))]
    assert thresholds == [f"{x / 100:.2f}" for x in range(50, 100, 5)]  # every 0.05; current 0.70 among them
    full = invoke("--db", sqlite_url, *window, "--full", "--risk-class", "low")
    assert "medium" not in full.stdout and " 0.99 " in full.stdout
    as_json = invoke("--db", sqlite_url, *window, "--format", "json", "--action-type", "refund")
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["filters"] == {"action_type": "refund"} and len(data["scopes"]) == 2
    # A config that needs fewer outcomes gives a recommendation (a refused scope is still exit 0 above).
    cfg = tmp_path / "tower.yaml"
    cfg.write_text("thresholds: {min_outcomes: 5, bootstrap_resamples: 20, max_error_rate: {low: 0.9}}\n")
    advised = invoke("--db", sqlite_url, *window, "--config", str(cfg), "--risk-class", "low")
    assert advised.exit_code == 0 and "low / refund: recommend " in advised.stdout
    assert "recommended" in advised.stdout


def test_cli_default_window_and_exit_codes(sqlite_url: str, tmp_path: Path) -> None:
    load(sqlite_url, hand_events()).dispose()
    default = invoke("--db", sqlite_url, "--format", "json")
    assert default.exit_code == 0
    assert json.loads(default.stdout)["end"] == ts(T0 + HOUR + 1_000_000)  # the whole second after the newest decision
    assert invoke("--db", sqlite_url, "--start", "2026-11-01").exit_code == 2  # no zone
    assert invoke("--db", sqlite_url, "--start", ts(T0 + DAY), "--end", ts(T0)).exit_code == 2
    assert invoke("--db", f"sqlite:///{tmp_path / 'missing.db'}").exit_code == 2
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    load(empty, []).dispose()
    assert invoke("--db", empty).exit_code == 2  # no decision, so no default window
    quiet = invoke("--db", empty, "--start", ts(T0), "--end", ts(T0 + DAY))
    assert quiet.exit_code == 0 and "no resolved decisions in the window" in quiet.stdout


# ---- the Cost curves page ------------------------------------------------------------------------

PAGE = str(Path(__file__).parent.parent / "app" / "views" / "cost_curves.py")


@pytest.mark.usefixtures("fresh_caches")
def test_cost_curves_page_shows_advice_chart_and_slider(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", synth_url_30d)
    monkeypatch.setenv("HITL_TOWER_THRESHOLDS__MIN_OUTCOMES", "100")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["window"] = "last 30d"
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    assert at.title[0].value == "Cost curves"
    scope = at.selectbox(key="cost_scope")
    assert scope.value.startswith("low / ") and "recommend 0." in scope.value
    # the day-14 change 0.85 -> 0.75 lets 7.4% errors through (cap 5%): that leads, in red, not a green "saves"
    assert not at.success
    assert "The current threshold **0.75** breaks the error cap" in at.error[0].value
    assert "against a cap of 5.0%" in at.error[0].value
    assert "Recommended auto-approve threshold" in at.info[0].value
    assert "Against the current **0.75**" in at.info[0].value
    assert at.select_slider(key="cost_slider").value == 0.75  # the current threshold: no change, in grey
    for metric in at.metric[4:]:
        assert metric.proto.delta == "±0" and metric.proto.color == metric.proto.MetricColor.GRAY, metric.proto
        assert metric.proto.direction == metric.proto.MetricDirection.NONE, metric.proto
    labels = at.selectbox(key="cost_scope").options
    assert any("(no advice)" in label for label in labels)  # refusals on the small scopes
    at.select_slider(key="cost_slider").set_value(0.9).run()
    assert not at.exception
    assert any("At **t = 0.90**" in m.value for m in at.markdown)
    metrics = {m.label: m for m in at.metric}
    assert metrics["Auto rate"].delta.startswith("-") and metrics["Auto rate"].delta.endswith(" pp")
    assert len(at.get("plotly_chart")) == 1
    small = next(label for label in labels if "(no advice)" in label)
    at.selectbox(key="cost_scope").set_value(small).run()
    assert not at.exception
    assert at.warning and "No advice for" in at.warning[0].value
