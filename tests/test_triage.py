"""Review triage: a hand-computed ranking, fairness-gap slices, properties, the CLI and the Triage page."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review, ts
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from collectors.advice.triage import rank_slices, second_look_catch, triage
from collectors.cli import app
from collectors.config import TowerConfig

BASE = {"final_verdict": "approve", "has_outcome": True, "agent_correct": 1.0, "final_correct": 1.0,
        "audited": False, "audit_probability": np.nan, "action_type": "refund", "risk_class": "low",
        "model_version": "m1", "queue": "q", "error_cost": 0.0, "agent_error_cost": 0.0, "policy_checks": None,
        "confidence": 0.9, "review_seconds": 0.0}


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame([{**BASE, **r} for r in rows])
    no = ~out["has_outcome"].astype(bool)
    for column in ("agent_correct", "final_correct", "error_cost", "agent_error_cost"):
        out.loc[no, column] = np.nan
    return out


def _n(row: dict[str, Any], k: int) -> list[dict[str, Any]]:
    return [dict(row) for _ in range(k)]


FAIL = [{"rule": "limit", "result": "fail"}]
AUTO = {"final_verdict": "auto"}
AUDITED = {**AUTO, "audited": True, "audit_probability": 0.1}
HUMAN_A = {"review_seconds": 360.0}
# Slice A (low / refund / m1), 60 decisions: 40 auto (4 audited: 1 wrong) and 20 reviewed (10 agent errors,
# humans fixed 8). Slice B (high / kyc / m1), 50 reviewed: 5 agent errors caught, 5 approved wrong.
SLICE_A = (_n({**AUDITED, "agent_correct": 0.0, "final_correct": 0.0, "agent_error_cost": 100.0,
               "error_cost": 100.0}, 1)
           + _n(AUDITED, 3) + _n({**AUTO, "has_outcome": False, "policy_checks": FAIL}, 2)
           + _n({**AUTO, "has_outcome": False}, 34)
           + _n(HUMAN_A, 10)
           + _n({**HUMAN_A, "final_verdict": "edit", "agent_correct": 0.0, "agent_error_cost": 100.0}, 8)
           + _n({**HUMAN_A, "final_verdict": "edit", "agent_correct": 0.0, "final_correct": 0.0,
                 "agent_error_cost": 100.0, "error_cost": 50.0}, 2))
KYC = {"action_type": "kyc", "risk_class": "high", "review_seconds": 720.0}
SLICE_B = (_n(KYC, 40) + _n({**KYC, "final_verdict": "reject", "agent_correct": 0.0, "agent_error_cost": 200.0}, 5)
           + _n({**KYC, "agent_correct": 0.0, "final_correct": 0.0, "error_cost": 200.0,
                 "agent_error_cost": 200.0}, 5))
SMALL = _n({"action_type": "chargeback", "final_verdict": "edit", "agent_correct": 0.0}, 10)


def test_ranking_by_hand() -> None:
    result = rank_slices(frame(SLICE_A + SLICE_B + SMALL), TowerConfig(), 0.9)
    assert result["candidates"] == 2  # the chargeback slice has fewer than triage.min_decisions
    a, b = result["rows"]
    assert a["slice"] == {"risk_class": "low", "action_type": "refund", "model_version": "m1"}
    assert a["rank"] == 1 and a["decisions"] == 60 and a["option"] == "audit_auto"
    est = a["signals"]["estimates"]
    assert math.isclose(est["auto_error"], 0.25) and est["agent_error_cost"] == 100.0
    assert math.isclose(est["catch_rate"], 0.8) and math.isclose(est["hours"], 0.1)
    assert math.isclose(a["score"], 0.25 * 100 * 0.8 / 0.1)  # 200 per review hour
    assert math.isclose(est["final_error"], 0.1) and est["final_error_cost"] == 50.0  # second look: 45 / h
    assert a["pays_off"] and a["recommendation"].startswith("route auto-approved refund (low risk, m1) items")
    assert any("auto-approved with a failed guardrail (2 items)" in r for r in a["reasons"])
    assert b["option"] == "second_review" and b["signals"]["estimates"]["auto_error"] is None
    assert math.isclose(b["score"], 0.1 * 200 * 0.9 / 0.2)  # 90 per review hour
    assert b["recommendation"].startswith("add a second review")


def test_a_worse_segment_becomes_its_own_slice() -> None:
    rows = ([{**KYC, "segment.region": "A"} for _ in range(50)]
            + [{**KYC, "segment.region": "B", "final_verdict": "reject", "agent_correct": 0.0,
                "agent_error_cost": 200.0} for _ in range(30)]
            + [{**KYC, "segment.region": "B"} for _ in range(20)])
    result = rank_slices(frame(rows), TowerConfig(fairness={"min_samples": 50}), 0.9)
    slices = [r["slice"] for r in result["rows"]]
    assert {"risk_class": "high", "action_type": "kyc", "model_version": "m1", "segment.region": "B"} in slices
    assert not any(s.get("segment.region") == "A" for s in slices)  # better than its slice: no gap
    parent = next(r for r in result["rows"] if "segment.region" not in r["slice"])
    gap = parent["signals"]["fairness_gaps"][0]
    assert (gap["segment"], gap["value"], gap["rate"]) == ("segment.region", "B", "intervention_rate")
    assert math.isclose(gap["segment_rate"], 0.6) and math.isclose(gap["slice_rate"], 0.3)
    assert any("fairness gap: segment.region=B" in r for r in parent["reasons"])


def test_no_decisions_no_rows() -> None:
    assert rank_slices(frame(SLICE_A)[0:0], TowerConfig(), None)["rows"] == []


def test_second_look_catch_is_the_auditors_sensitivity() -> None:
    reviews = pd.DataFrame({"kind": ["audit", "audit", "audit", "primary", "audit"],
                            "verdict": ["reject", "approve", "edit", "approve", "approve"],
                            "agent_correct": [False, False, False, False, True]})
    assert math.isclose(second_look_catch(reviews), 2 / 3)
    assert second_look_catch(reviews[reviews["kind"] == "primary"]) is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8))
def test_scores_are_non_negative_and_sorted(seed: int, top: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    verdict = rng.choice(["auto", "approve", "edit", "reject", "pending"], n)
    has = (rng.random(n) < 0.6) & (verdict != "pending")
    right = rng.random(n) < 0.8
    rows = [{"final_verdict": v, "has_outcome": bool(h), "agent_correct": float(r),
             "final_correct": float(r or v in ("edit", "reject")), "audited": v == "auto" and rng.random() < 0.3,
             "audit_probability": 0.2, "action_type": str(rng.choice(["a", "b"])),
             "risk_class": str(rng.choice(["low", "high"])), "model_version": str(rng.choice(["m1", "m2"])),
             "confidence": float(rng.random()), "error_cost": 0.0 if r else float(rng.integers(1, 100)),
             "agent_error_cost": 0.0 if r else float(rng.integers(1, 100)),
             "review_seconds": 0.0 if v in ("auto", "pending") else float(rng.integers(10, 600)),
             "policy_checks": FAIL if rng.random() < 0.1 else None, "segment.region": str(rng.choice(["X", "Y"]))}
            for v, h, r in zip(verdict, has, right)]
    config = TowerConfig(triage={"min_decisions": 20, "top": top}, fairness={"min_samples": 20})
    result = rank_slices(frame(rows), config, float(rng.random()))
    scores = [r["score"] for r in result["rows"]]
    assert len(scores) <= top and all(s >= 0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(r["decisions"] >= 20 for r in result["rows"])
    assert [r["rank"] for r in result["rows"]] == list(range(1, len(scores) + 1))
    json.dumps(result, allow_nan=False)


# ---- store, CLI ------------------------------------------------------------------------------------

def _events() -> list[dict[str, Any]]:
    events = []
    for i in range(60):
        right = i % 5 != 0
        auto = i % 2 == 0
        events.append(decision(f"d{i}", T0 + i * HOUR, route="auto" if auto else "review", confidence=0.9,
                               policy_checks=[{"rule": "limit", "result": "fail" if i % 7 == 0 else "pass"}]))
        if auto and i % 4 == 0:
            events.append(review(f"a{i}", f"d{i}", T0 + 3 * DAY, "approve" if right else "reject", kind="audit",
                                 reviewer="qa", audit_probability=0.5))
        if not auto:
            events.append(review(f"r{i}", f"d{i}", T0 + i * HOUR + 600_000_000, "approve" if right else "edit",
                                 handle_seconds=300))
        events.append(outcome(f"d{i}", T0 + 4 * DAY, agent_correct=right, final_correct=right or not auto,
                              error_cost=None if right or not auto else 80.0,
                              agent_error_cost=None if right else 80.0))
    return events


def test_triage_on_a_store(db_url: str, config: Any) -> None:
    engine = load(db_url, _events())
    try:
        result = triage(engine, config, T0, T0 + 3 * DAY)
    finally:
        engine.dispose()
    json.dumps(result, allow_nan=False)
    assert result["second_look_catch"] == 1.0  # qa rejected every wrong audited item
    (row,) = result["rows"]
    assert row["decisions"] == 60 and row["option"] == "audit_auto"
    # auto items wrong: d0, d20, d40 of the audited d0, d4, ... d56 (15 items) -> 3 / 15 = 0.2
    assert math.isclose(row["signals"]["estimates"]["auto_error"], 0.2)
    assert math.isclose(row["score"], 0.2 * 80 * 1.0 / (300 / 3600))  # catch 1.0: every reviewed error fixed


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["triage", *args], catch_exceptions=False)


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    load(sqlite_url, _events()).dispose()
    return sqlite_url


def test_cli_table_and_json(store_url: str) -> None:
    result = invoke("--db", store_url)
    assert result.exit_code == 0, result.output
    assert "low / refund / m1" in result.stdout and "route auto-approved refund" in result.stdout
    assert "rank" in result.stdout and "score/h" in result.stdout
    result = invoke("--db", store_url, "--format", "json", "--start", ts(T0), "--end", ts(T0 + 3 * DAY),
                    "--top", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["start"] == ts(T0) and len(data["rows"]) == 1 and data["rows"][0]["rank"] == 1


def test_cli_exit_2(store_url: str, sqlite_url: str, tmp_path: Path) -> None:
    assert invoke("--db", store_url, "--start", "2026-11-01T00:00:00").exit_code == 2  # no zone
    bad = invoke("--db", store_url, "--start", ts(T0 + DAY), "--end", ts(T0))
    assert bad.exit_code == 2 and "before" in bad.output
    assert invoke("--db", f"sqlite:///{tmp_path / 'none' / 'x.db'}").exit_code == 2
    from collectors.store.db import open_store

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(empty).dispose()
    result = invoke("--db", empty)
    assert result.exit_code == 2 and "no decisions" in result.output


# ---- the page ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_caches")
def test_triage_page_renders_on_a_synth_store(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", synth_url_30d)
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app" / "views" / "triage.py"), default_timeout=120)
    at.session_state["_keep_window"] = "last 30d"
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    assert at.title[0].value == "Triage"
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert len(table) > 0 and list(table["rank"])[:2] == [1, 2]
    assert any("kyc" in s for s in table["slice"])  # the drifting kyc model shows up
