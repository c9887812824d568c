"""Staged autonomy readiness: hand-computed figures, properties of the verdict, the CLI and the page."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review, ts
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from typer.testing import CliRunner

from collectors.advice.autonomy import (
    autonomy_ladder,
    current_stage,
    ece_of,
    ladder_from_frame,
)
from collectors.cli import app
from collectors.config import Autonomy, StageCriteria, TowerConfig

PAGE = str(Path(__file__).parent.parent / "app" / "views" / "autonomy.py")


def wilson_by_hand(count: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval from its closed form (independent of statsmodels)."""
    z = norm.ppf(1 - (1 - level) / 2)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# ---- a hand-computed example through the store ---------------------------------------------------
# Ten shadow decisions on one day: d0-d7 approved, d8-d9 rejected. Outcomes for six of them:
# d0, d1 (confidence 0.95, right), d2 (0.85, right), d8 (0.85, wrong), d3, d4 (0.75, right).
CONFIDENCE = {0: 0.95, 1: 0.95, 2: 0.85, 8: 0.85, 3: 0.75, 4: 0.75}
OUTCOMES = {0: True, 1: True, 2: True, 8: False, 3: True, 4: True}


def example_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(10):
        at = T0 + i * HOUR
        events.append(decision(f"d{i}", at, route="shadow", action_type="limit_increase",
                               confidence=CONFIDENCE.get(i, 0.8)))
        events.append(review(f"r{i}", f"d{i}", at + HOUR // 2, "approve" if i < 8 else "reject"))
    events += [outcome(f"d{i}", T0 + 12 * HOUR, agent_correct=ok) for i, ok in OUTCOMES.items()]
    return events


def test_hand_computed_example(db_url: str, config: TowerConfig) -> None:
    engine = load(db_url, example_events())
    try:
        data = autonomy_ladder(engine, config, T0, T0 + DAY)
    finally:
        engine.dispose()
    assert data["stages"] == ["shadow", "assisted", "auto"]
    (row,) = data["rows"]
    assert (row["action_type"], row["model_version"], row["agent_id"]) == ("limit_increase", "m1", "agent-1")
    assert row["current_stage"] == "shadow" and row["next_stage"] == "assisted"
    assert row["decisions"] == 10 and row["samples"] == 10
    agreement, accuracy = row["agreement"], row["accuracy"]
    assert (agreement["count"], agreement["n"], agreement["value"]) == (8, 10, 0.8)
    assert (accuracy["count"], accuracy["n"]) == (5, 6) and accuracy["value"] == pytest.approx(5 / 6)
    assert (agreement["low"], agreement["high"]) == pytest.approx(wilson_by_hand(8, 10), abs=1e-12)
    assert (accuracy["low"], accuracy["high"]) == pytest.approx(wilson_by_hand(5, 6), abs=1e-12)
    # Bins 9, 8, 7 with two decisions each: |1 - 0.95|, |0.5 - 0.85|, |1 - 0.75|, weighted 2/6 each.
    assert row["ece"] == pytest.approx((0.05 + 0.35 + 0.25) / 3) and row["ece_n"] == 6
    assert row["daily"] == [{
        "day": "2026-11-01", "n": 10, "agreement": agreement, "accuracy": accuracy,
        "agreement_met": None, "accuracy_met": None, "status": "thin"}]  # fewer than 20 samples: not judged
    assert not row["ready"] and row["verdict"] == "not ready"
    assert "samples 10 < 300" in row["missing"]
    assert "stable: the window holds only 1 of the 7 days (widen it)" in row["missing"]


def test_hand_computed_example_ready_under_loose_criteria(sqlite_url: str, config: TowerConfig) -> None:
    loose = Autonomy(shadow_exit=StageCriteria(min_samples=10, min_agreement=0.4, min_accuracy=0.4, max_ece=0.3,
                                               stable_days=1), min_daily_samples=5)
    engine = load(sqlite_url, example_events())
    try:
        data = autonomy_ladder(engine, config.model_copy(update={"autonomy": loose}), T0, T0 + DAY)
    finally:
        engine.dispose()
    (row,) = data["rows"]
    # Lower bounds 0.49 (8/10) and 0.44 (5/6) clear 0.4; ECE 0.217 <= 0.3; the one day meets both bars.
    assert row["ready"] and row["verdict"] == "ready" and row["missing"] == []
    assert row["streak_days"] == 1 and row["daily"][0]["status"] == "met"
    assert [c["name"] for c in row["checks"]] == ["samples", "agreement", "accuracy", "ece", "stable"]


# ---- pure functions over hand-made frames --------------------------------------------------------

def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A decision frame with the columns the ladder reads; defaults: a reviewed, approved decision."""
    base = {"action_type": "refund", "model_version": "m1", "agent_id": "a", "route": "review",
            "final_verdict": "approve", "has_outcome": False, "agent_correct": np.nan, "confidence": 0.9,
            "audited": False}
    return pd.DataFrame([{**base, **r} for r in rows])


def stream(days: int, per_day: int, *, agree: float = 1.0, correct: float = 1.0, confidence: float = 0.99,
           route: str = "shadow", start: int = T0) -> list[dict[str, Any]]:
    """`per_day` decisions a day, each with an outcome; the first `agree` share approved, `correct` right."""
    rows = []
    for day in range(days):
        for i in range(per_day):
            rows.append({"proposed_at": start + day * DAY + i * (DAY // per_day), "route": route,
                         "final_verdict": "approve" if i < agree * per_day else "reject",
                         "has_outcome": True, "agent_correct": 1.0 if i < correct * per_day else 0.0,
                         "confidence": confidence})
    return rows


def test_stage_rule() -> None:
    assert current_stage(auto=0, review=0, shadow=10) == "shadow"
    assert current_stage(auto=5, review=0, shadow=5) == "assisted"  # shadow not a majority, auto not 90%
    assert current_stage(auto=9, review=1, shadow=0) == "auto"  # humans only see a tenth: audits
    assert current_stage(auto=4, review=6, shadow=0) == "assisted"
    assert current_stage(auto=0, review=9, shadow=0) == "assisted"  # review only: threshold at 1
    assert current_stage(auto=9, review=1, shadow=0) == "auto"


def test_ece_matches_the_kpi_definition() -> None:
    conf = np.array([0.95, 0.95, 0.85, 0.85, 0.75, 0.75, 1.0])
    right = np.array([1, 1, 1, 0, 1, 1, 1.0])
    # 1.0 falls in the last bin with the two 0.95s: |1 - (0.95 + 0.95 + 1.0) / 3| over 3 of 7.
    expected = (3 * abs(1 - 2.9 / 3) + 2 * 0.35 + 2 * 0.25) / 7
    assert ece_of(conf, right) == pytest.approx(expected)
    assert ece_of(np.array([]), np.array([])) is None


def test_auto_outcomes_count_only_when_audited() -> None:
    rows = [{"proposed_at": T0, "route": "auto", "final_verdict": "auto", "has_outcome": True,
             "agent_correct": 0.0, "audited": False},
            {"proposed_at": T0 + HOUR, "route": "auto", "final_verdict": "auto", "has_outcome": True,
             "agent_correct": 1.0, "audited": True},
            {"proposed_at": T0 + 2 * HOUR, "route": "review", "final_verdict": "reject", "has_outcome": True,
             "agent_correct": 0.0}]
    # Nine auto decisions in ten puts the row on the auto rung (AUTO_STAGE_SHARE); these have no outcome.
    rows += [{"proposed_at": T0 + (3 + k) * HOUR, "route": "auto", "final_verdict": "auto", "has_outcome": False,
              "audited": False} for k in range(25)]
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + DAY)["rows"]
    assert row["current_stage"] == "auto" and row["next_stage"] is None
    assert (row["accuracy"]["count"], row["accuracy"]["n"]) == (1, 2)  # the unaudited auto outcome is left out
    assert (row["agreement"]["count"], row["agreement"]["n"]) == (0, 1)  # auto verdicts say nothing
    assert row["verdict"] == "demotion warning"


def test_a_perfect_stream_long_enough_is_ready() -> None:
    data = ladder_from_frame(frame(stream(10, 50)), Autonomy(), T0, T0 + 10 * DAY)
    (row,) = data["rows"]
    assert row["ready"] and row["verdict"] == "ready" and row["missing"] == []
    assert row["evaluation"] == {"start": ts(T0 + 3 * DAY), "end": ts(T0 + 10 * DAY), "days": 7}
    assert row["samples"] == 350 and row["streak_days"] == 10
    assert row["ece"] == pytest.approx(0.01)


def test_a_failed_day_breaks_the_streak_and_stability() -> None:
    rows = stream(10, 50)
    bad_day = [r for r in rows if T0 + 8 * DAY <= r["proposed_at"] < T0 + 9 * DAY]
    for r in bad_day[:25]:
        r["final_verdict"] = "reject"  # agreement 0.5 that day
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 10 * DAY)["rows"]
    assert row["streak_days"] == 1 and row["daily"][8]["status"] == "failed"
    assert not row["ready"]
    assert "stable: bars missed on 1 of the last 7 days (11-09)" in row["missing"]


def test_a_day_misses_a_bar_only_when_its_band_lies_below_it() -> None:
    rows = stream(7, 50)
    for day, approved in ((5, 38), (6, 30)):
        today = [r for r in rows if T0 + day * DAY <= r["proposed_at"] < T0 + (day + 1) * DAY]
        for r in today[approved:]:
            r["final_verdict"] = "reject"
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 7 * DAY)["rows"]
    noisy, low = row["daily"][5], row["daily"][6]
    # 38/50 = 0.76 is below the 0.80 bar, but its Wilson band reaches 0.86: noise, not a miss.
    assert noisy["agreement"]["value"] == 0.76 and noisy["agreement"]["high"] > 0.8
    assert noisy["agreement_met"] is True and noisy["status"] == "met"
    # 30/50 = 0.60 has its whole band (0.46-0.72) below the bar.
    assert low["agreement"]["high"] == pytest.approx(wilson_by_hand(30, 50)[1]) and low["agreement"]["high"] < 0.8
    assert low["agreement_met"] is False and low["status"] == "failed" and row["streak_days"] == 0


def test_stability_needs_half_of_the_days_judged() -> None:
    rows = stream(3, 50) + stream(4, 10, start=T0 + 3 * DAY)
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 7 * DAY)["rows"]
    assert [d["status"] for d in row["daily"]] == ["met"] * 3 + ["thin"] * 4
    assert "stable: only 3 of the last 7 days have >= 20 human verdicts or outcomes (need 4)" in row["missing"]
    assert row["samples"] == 190 and row["streak_days"] == 3


def test_thin_days_neither_count_nor_break() -> None:
    rows = stream(3, 50) + stream(1, 5, start=T0 + 3 * DAY) + stream(1, 50, start=T0 + 4 * DAY)
    for r in rows:
        if T0 + 3 * DAY <= r["proposed_at"] < T0 + 4 * DAY:
            r["final_verdict"] = "reject"  # bad, but only 5 samples: not judged
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 5 * DAY)["rows"]
    assert [d["status"] for d in row["daily"]] == ["met", "met", "met", "thin", "met"]
    assert row["streak_days"] == 4


def test_a_retired_model_version_is_inactive() -> None:
    (row,) = ladder_from_frame(frame(stream(2, 50)), Autonomy(), T0, T0 + 20 * DAY)["rows"]
    assert row["verdict"] == "inactive" and row["missing"] == ["no decisions in the last 7 days"]


def _walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


decision_rows = st.lists(st.fixed_dictionaries({
    "proposed_at": st.integers(T0, T0 + 9 * DAY),
    "route": st.sampled_from(["auto", "review", "shadow"]),
    "final_verdict": st.sampled_from(["approve", "edit", "reject", "pending", "auto"]),
    "has_outcome": st.booleans(),
    "agent_correct": st.sampled_from([0.0, 1.0]),
    "confidence": st.floats(0, 1),
    "audited": st.booleans(),
    "model_version": st.sampled_from(["m1", "m2"]),
}), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(decision_rows)
def test_intervals_contain_the_point_and_output_is_json_ready(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        r["agent_correct"] = r["agent_correct"] if r["has_outcome"] else np.nan
    data = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 10 * DAY)
    json.dumps(data, allow_nan=False)
    assert all(v is None or type(v) in (str, int, float, bool) for v in _walk(data))
    assert sum(r["decisions"] for r in data["rows"]) == len(rows)
    for row in data["rows"]:
        shares = [row["agreement"], row["accuracy"], row["window"]["agreement"], row["window"]["accuracy"]]
        shares += [d[m] for d in row["daily"] for m in ("agreement", "accuracy")]
        for s in shares:
            if s["n"]:
                assert s["low"] - 1e-12 <= s["value"] <= s["high"] + 1e-12
            else:
                assert s["value"] is None and s["low"] is None
        assert row["ready"] == (row["missing"] == [])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 299), st.floats(0, 1), st.floats(0, 1))
def test_never_ready_below_the_minimum_sample(n: int, agree: float, correct: float) -> None:
    per_day = math.ceil(n / 7)
    rows = stream(7, per_day, agree=agree, correct=correct)[:n]
    (row,) = ladder_from_frame(frame(rows), Autonomy(), T0, T0 + 7 * DAY)["rows"]
    assert not row["ready"]
    assert f"samples {n} < 300" in row["missing"]


# ---- the CLI ---------------------------------------------------------------------------------------

def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["autonomy", *args], catch_exceptions=False)


@pytest.fixture
def example_url(sqlite_url: str) -> str:
    extra = [decision("x1", T0 + 2 * HOUR, route="auto", action_type="ticket_reply", model_version="m9")]
    load(sqlite_url, example_events() + extra).dispose()
    return sqlite_url


def test_cli_json(example_url: str) -> None:
    result = invoke("--db", example_url, "--start", ts(T0), "--end", ts(T0 + DAY), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(r["action_type"], r["model_version"], r["current_stage"]) for r in data["rows"]] == [
        ("limit_increase", "m1", "shadow"), ("ticket_reply", "m9", "auto")]
    assert data["rows"][0]["agreement"]["value"] == 0.8
    assert data["criteria"]["shadow_exit"]["min_samples"] == 300


def test_cli_default_window_and_action_type_filter(example_url: str) -> None:
    result = invoke("--db", example_url, "--action-type", "limit_increase", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["end"] == ts(T0 + 9 * HOUR + 1_000_000)  # the whole second just after the newest decision (d9)
    assert data["start"] == ts(T0 + 9 * HOUR + 1_000_000 - 30 * DAY)
    assert [r["action_type"] for r in data["rows"]] == ["limit_increase"]


def test_cli_table(example_url: str) -> None:
    result = invoke("--db", example_url, "--start", ts(T0), "--end", ts(T0 + DAY))
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("limit_increase"))
    assert "shadow" in line and "0.800 [0.490, 0.943] n=10" in line
    assert "missing: samples 10 < 300" in line
    assert re.search(r"ticket_reply\s+m9\s+auto", result.stdout)


def test_cli_exit_codes(tmp_path: Path, example_url: str) -> None:
    missing = f"sqlite:///{tmp_path / 'nope' / 'missing.db'}"
    result = CliRunner().invoke(app, ["autonomy", "--db", missing])
    assert result.exit_code == 2 and "error:" in result.stderr
    result = CliRunner().invoke(app, ["autonomy", "--db", example_url, "--start", "2026-11-01"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["autonomy", "--db", example_url, "--start", ts(T0 + DAY), "--end", ts(T0)])
    assert result.exit_code == 2


# ---- the page --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 days of the demo's synthetic traffic (fixed start, seed 7) at 300 decisions a day."""
    from collectors import synth
    from collectors.ingest import ingest
    from collectors.store.db import open_store

    folder = tmp_path_factory.mktemp("autonomy")
    synth.write_jsonl(folder / "events.jsonl", synth.generate(seed=7, days=30, decisions_per_day=300))
    url = f"sqlite:///{folder / 'synth.db'}"
    engine = open_store(url)
    try:
        assert not ingest(engine, [str(folder / "events.jsonl")]).rejected
    finally:
        engine.dispose()
    return url


def run_page(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", url)
    monkeypatch.delenv("HITL_TOWER_CONFIG", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    return at


def test_page_shows_the_shadow_action_type_and_what_it_lacks(synth_url: str, monkeypatch: pytest.MonkeyPatch,
                                                             fresh_caches: None) -> None:
    at = run_page(synth_url, monkeypatch)
    assert at.title[0].value == "Autonomy ladder"
    assert "limit_increase" in [s.value for s in at.subheader]
    texts = [m.value for m in at.markdown]
    assert ":blue-background[**● shadow**] → :gray[○ assisted] → :gray[○ auto]" in texts
    # At 300 decisions a day the shadow action type has too few samples for the shipped criteria.
    assert any(re.search(r"- samples \d+ < 300", t) for t in texts)
    assert at.main.selectbox[0].value == "limit_increase · fraud-gbm-8"  # the shadow row is charted first
    assert at.get("plotly_chart") and at.dataframe and at.get("download_button")


def test_page_badges_a_ready_row(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    events = []
    for day in range(10):
        for i in range(50):
            at = T0 + day * DAY + i * (DAY // 50)
            events += [decision(f"p{day}-{i}", at, route="shadow", confidence=0.99),
                       review(f"q{day}-{i}", f"p{day}-{i}", at + 60_000_000)]
            events.append(outcome(f"p{day}-{i}", at + 120_000_000, agent_correct=True))
    load(sqlite_url, events).dispose()
    at = run_page(sqlite_url, monkeypatch)
    assert "Ready for the next step: **refund · m1** (shadow → assisted" in at.success[0].value
    assert ":green-badge[ready for assisted]" in [m.value for m in at.markdown]


def test_page_on_an_empty_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    from collectors.store.db import open_store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).dispose()
    at = run_page(url, monkeypatch)
    assert "no decisions" in at.info[0].value
