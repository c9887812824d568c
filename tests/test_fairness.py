"""Fairness (collectors.advice.fairness): rates per segment value with Wilson intervals, gap flags, the reviewer
rates, the "__other__" merge, agreement with the engine's KPIs, the exporter's gauges and the dashboard page."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from statsmodels.stats.proportion import proportion_confint
from streamlit.testing.v1 import AppTest

from collectors.advice.fairness import OTHER, RATE_IDS, fairness_report, judge, segment_counts
from collectors.config import Fairness, TowerConfig
from collectors.engine.report import compute_report
from collectors.exporter import names
from collectors.exporter.collector import SnapshotCollector
from collectors.exporter.names import NULL_VALUE
from collectors.exporter.snapshot import MetricsRefresher
from tests.engine_helpers import DAY, HOUR, T0, decision, load, outcome, review

US = 1_000_000
MAIN = str(Path(__file__).parent.parent / "app" / "main.py")

# ---- a hand-computed example ---------------------------------------------------------------------

# region: (decisions, rejected, rejected with agent right, approved with an outcome (agent right))
# plus, for every rejected item, an outcome (agent wrong unless counted as right).
PLAN = {"EU": (200, 20, 10, 100), "LATAM": (100, 40, 4, 50), "US": (100, 20, 10, 60)}


def _hand_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    i = 0
    for region, (count, rejected, rejected_right, approved_known) in PLAN.items():
        for j in range(count):
            i += 1
            did, at = f"d{i:04d}", T0 + i * 60 * US
            events.append(decision(did, at, segment={"region": region, "customer_tier": "pro"}))
            verdict = "reject" if j < rejected else "approve"
            events.append(review(f"r{i:04d}", did, at + HOUR, verdict))
            if j < rejected:
                right = j < rejected_right
                events.append(outcome(did, at + 2 * HOUR, agent_correct=right, final_correct=not right))
            elif j < rejected + approved_known:
                events.append(outcome(did, at + 2 * HOUR, agent_correct=True, final_correct=True))
    events.append(decision("d9999", T0 + 1000 * 60 * US, route="auto"))  # no segment: the null value
    return events


def _row(report: dict[str, Any], rate: str, group: str | None, key: str = "segment.region") -> dict[str, Any]:
    (row,) = [r for r in report["segments"] if r["key"] == key and r["group"] == group and r["rate"] == rate]
    return row


def test_hand_computed_regions_are_flagged_only_outside_the_interval(db_url: str) -> None:
    engine = load(db_url, _hand_events())
    try:
        report = fairness_report(engine, TowerConfig(), T0, T0 + DAY)
        strict = fairness_report(engine, TowerConfig(fairness={"min_samples": 150}), T0, T0 + DAY)
    finally:
        engine.dispose()
    json.dumps(report, allow_nan=False)
    # intervention_rate: EU 20/200, LATAM 40/100, US 20/100; the auto decision resolves too: 80/401.
    overall = 80 / 401
    assert report["decisions"] == 401
    assert report["overall"]["intervention_rate"] == pytest.approx(
        {"value": overall, "count": 80, "n": 401, "low": proportion_confint(80, 401, 0.05, "wilson")[0],
         "high": proportion_confint(80, 401, 0.05, "wilson")[1]})
    for region, count, n, flagged in (("EU", 20, 200, True), ("LATAM", 40, 100, True), ("US", 20, 100, False)):
        row = _row(report, "intervention_rate", region)
        low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
        assert (row["count"], row["n"], row["value"]) == (count, n, count / n)
        assert row["low"] == pytest.approx(low, abs=1e-12) and row["high"] == pytest.approx(high, abs=1e-12)
        assert row["gap"] == pytest.approx(count / n - overall)
        assert row["flagged"] is flagged and row["enough_samples"], region
    assert _row(report, "intervention_rate", "LATAM")["direction"] == "above"
    assert _row(report, "intervention_rate", "EU")["direction"] == "below"
    assert _row(report, "intervention_rate", None)["n"] == 1  # the decision without a region
    assert not _row(report, "intervention_rate", None)["enough_samples"]
    # Below min_samples nothing is flagged, however far the rate.
    assert not _row(strict, "intervention_rate", "LATAM")["flagged"]
    assert _row(strict, "intervention_rate", "EU")["flagged"]
    # Reviewer rates: LATAM's reviewers intervene more (40/100) but on agent-right items 4 of 54.
    assert (_row(report, "reviewer_intervention_rate", "LATAM")["count"],
            _row(report, "reviewer_intervention_rate", "LATAM")["n"]) == (40, 100)
    unnecessary = _row(report, "unnecessary_intervention_rate", "LATAM")
    assert (unnecessary["count"], unnecessary["n"]) == (4, 54)
    assert report["overall"]["unnecessary_intervention_rate"]["count"] == 24
    assert report["overall"]["unnecessary_intervention_rate"]["n"] == 10 + 100 + 4 + 50 + 10 + 60
    missed = _row(report, "missed_error_rate", "LATAM")
    assert (missed["count"], missed["n"]) == (0, 36)
    harmful = _row(report, "harmful_override_rate", "EU")
    assert (harmful["count"], harmful["n"]) == (10, 20)
    # Every rate of every key with enough samples counts as one comparison; Bonferroni adjusts the level.
    judged = [r for r in report["segments"] if r["enough_samples"] and r["overall"] is not None]
    assert report["comparisons"] == len(judged) > 0
    assert report["adjusted_level"] == pytest.approx(1 - 0.05 / len(judged))
    assert report["flagged"][0]["group"] == "LATAM" and all(r["flagged"] for r in report["flagged"])


def test_a_filter_and_an_empty_window(sqlite_url: str) -> None:
    engine = load(sqlite_url, _hand_events())
    try:
        none = fairness_report(engine, TowerConfig(), T0 + 2 * DAY, T0 + 3 * DAY)
        auto = fairness_report(engine, TowerConfig(), T0, T0 + DAY, {"route": "auto"}, ["region", "tier"])
    finally:
        engine.dispose()
    json.dumps(none, allow_nan=False)
    assert none["decisions"] == 0 and none["segments"] == [] and none["comparisons"] == 0
    assert none["overall"]["intervention_rate"]["value"] is None
    assert auto["keys"] == ["segment.region", "segment.tier"]
    assert auto["overall"]["auto_rate"]["value"] == 1.0
    assert [r["group"] for r in auto["segments"] if r["rate"] == "auto_rate"] == [None, None]


# ---- pure properties ---------------------------------------------------------------------------------

def _frame(rows: list[tuple[str | None, str, bool, float]]) -> pd.DataFrame:
    """A decision frame from (region, final verdict, has outcome, agent_correct) tuples."""
    return pd.DataFrame({
        "segment.region": pd.Series([r[0] for r in rows], dtype=object),
        "final_verdict": [r[1] for r in rows],
        "has_outcome": [r[2] for r in rows],
        "agent_correct": [r[3] if r[2] else np.nan for r in rows],
        "final_correct": [1.0 if r[2] else np.nan for r in rows],
    })


_ROWS = st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D", None]),
                           st.sampled_from(["pending", "auto", "approve", "edit", "reject"]),
                           st.booleans(), st.sampled_from([0.0, 1.0])), max_size=300)


@settings(max_examples=60, deadline=None)
@given(rows=_ROWS, min_samples=st.integers(1, 60), max_values=st.integers(1, 6),
       level=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_flags_follow_the_interval_and_the_sample(rows: list[tuple[str | None, str, bool, float]], min_samples: int,
                                                 max_values: int, level: float) -> None:
    cfg = Fairness(segment_keys=["region"], min_samples=min_samples, max_values=max_values, interval_level=level)
    result = judge(_frame(rows), ["segment.region"], cfg)
    json.dumps(result, allow_nan=False)
    groups = {r["group"] for r in result["segments"]}
    assert len(groups) <= max_values + 1 and (OTHER in groups) == (len({r[0] for r in rows}) > max_values)
    for r in result["segments"]:
        if r["n"] == 0:
            assert r["value"] is None and r["low"] is None and not r["flagged"]
            continue
        assert r["low"] - 1e-12 <= r["value"] <= r["high"] + 1e-12
        if r["n"] < min_samples:
            assert not r["flagged"] and not r["enough_samples"]
        if r["overall"] is not None and r["low"] <= r["overall"] <= r["high"]:
            assert not r["flagged"]
        outside = r["overall"] is not None and (r["overall"] < r["low"] - 1e-9 or r["overall"] > r["high"] + 1e-9)
        assert r["flagged"] == (r["enough_samples"] and outside)
        if r["value"] == r["overall"]:
            assert not r["flagged"]
        assert r["flagged_adjusted"] <= r["flagged"]  # the adjusted interval is wider
    for rate in RATE_IDS:  # the groups (other included) partition the overall counts
        mine = [r for r in result["segments"] if r["rate"] == rate]
        assert sum(r["count"] for r in mine) == result["overall"][rate]["count"]
        assert sum(r["n"] for r in mine) == result["overall"][rate]["n"]


def test_other_sums_the_counts_and_recomputes_the_rate() -> None:
    # A: 5 decisions, 1 intervention; B: 3 decisions, 3 interventions; C: 1 decision, 0 interventions.
    rows = ([("A", "edit", False, 0.0)] + [("A", "approve", False, 0.0)] * 4 + [("B", "reject", False, 0.0)] * 3
            + [("C", "approve", False, 0.0)])
    table = segment_counts(_frame(rows), "segment.region", max_values=1)
    assert table["group"].tolist() == ["A", OTHER]
    other = table.set_index("group").loc[OTHER]
    assert (other["decisions"], other["count:intervention_rate"], other["n:intervention_rate"]) == (4, 3, 4)
    result = judge(_frame(rows), ["segment.region"], Fairness(max_values=1, min_samples=1))
    row = next(r for r in result["segments"] if r["group"] == OTHER and r["rate"] == "intervention_rate")
    assert row["value"] == 3 / 4  # not the mean of B's 1.0 and C's 0.0


# ---- the engine, the exporter and the page on a synthetic store ------------------------------------------


@pytest.fixture(scope="module")
def synth(synth_url_30d: str) -> Iterator[tuple[str, Engine, int]]:
    """The shared 30-day demo store (LATAM's agents right ~0.15 less often), its engine and window end."""
    from collectors.store.db import decision_time_range, open_store

    url = synth_url_30d
    engine = open_store(url, create=False)
    yield url, engine, decision_time_range(engine)[1] + 1
    engine.dispose()


def test_kpi_rates_equal_the_engine_per_region(synth: tuple[str, Engine, int]) -> None:
    _, engine, end = synth
    config = TowerConfig()
    report = fairness_report(engine, config, end - 30 * DAY, end, keys=["segment.region"])
    engine_report = compute_report(engine, config, end - 30 * DAY, end, by=["segment.region"], now_us=end)
    rows = {row.key[0]: row.kpis for row in engine_report.rows}
    assert set(rows) >= {"EU", "US", "APAC", "LATAM"}
    for rate in ("intervention_rate", "auto_rate", "harmful_override_rate"):
        assert report["overall"][rate]["value"] == engine_report.total.kpis[rate]
        for region in ("EU", "US", "APAC", "LATAM"):
            assert _row(report, rate, region)["value"] == rows[region][rate], (rate, region)


def test_latam_interventions_are_flagged_but_not_unnecessary_ones(synth: tuple[str, Engine, int]) -> None:
    _, engine, end = synth
    report = fairness_report(engine, TowerConfig(), end - 30 * DAY, end)
    for rate in ("intervention_rate", "reviewer_intervention_rate", "agent_accuracy"):
        row = _row(report, rate, "LATAM")
        assert row["flagged"] and row["flagged_adjusted"], rate
    assert _row(report, "intervention_rate", "LATAM")["gap"] > 0.04
    assert _row(report, "agent_accuracy", "LATAM")["gap"] < -0.08
    assert not _row(report, "unnecessary_intervention_rate", "LATAM")["flagged"]
    assert report["available_keys"] == ["segment.region", "segment.customer_tier", "segment.language"]


def _registry(refresher: MetricsRefresher) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(refresher.snapshot))
    return registry


def _labels(window: str, key: str, value: str, rate: str) -> dict[str, str]:
    return {"window": window, "segment_key": key, "segment_value": value, "rate": rate}


def test_a_segment_value_spelt_like_the_folded_row_keeps_its_own_series(sqlite_url: str) -> None:
    """region "__other__" (a real value) and the values folded past max_values are two series."""
    end = T0 + DAY
    regions = ["A"] * 3 + ["__other__"] * 2 + ["B"]
    engine = load(sqlite_url, [decision(f"d{i}", end - HOUR, route="auto", segment={"region": r})
                               for i, r in enumerate(regions)])
    config = TowerConfig(fairness={"max_values": 2, "segment_keys": ["region"]})
    refresher = MetricsRefresher(engine, config, clock=lambda: end / US)
    assert refresher.refresh()
    registry = _registry(refresher)
    samples = {value: registry.get_sample_value(names.SEGMENT_SAMPLES, _labels("1h", "region", value, "auto_rate"))
               for value in ("A", "___other__", names.OVERFLOW_VALUE)}
    assert samples == {"A": 3, "___other__": 2, names.OVERFLOW_VALUE: 1}
    engine.dispose()


@pytest.mark.parametrize("max_values", [20, 1])
def test_exporter_gauges_equal_the_report(synth: tuple[str, Engine, int], max_values: int) -> None:
    _, engine, end = synth
    # 30d beside the default windows: the planted LATAM gap is asserted there, where ~9,000 decisions
    # flag it whatever hour the store ends at; over 7 days (~2,100) it was flagged or not by the hour.
    config = TowerConfig(fairness={"max_values": max_values}, exporter={"windows": ["1h", "24h", "7d", "30d"]})
    refresher = MetricsRefresher(engine, config, clock=lambda: end / US)
    assert refresher.refresh()
    registry = _registry(refresher)
    for window, length in (("1h", HOUR), ("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        report = fairness_report(engine, config, end - length, end)
        for rate, overall in report["overall"].items():
            labels = _labels(window, "", "", rate)
            assert registry.get_sample_value(names.SEGMENT_RATE, labels) == overall["value"]
            assert registry.get_sample_value(names.SEGMENT_SAMPLES, labels) == overall["n"]
        exported = {w.window: {(s.key, s.value) for s in w.segments if s.key} for w in refresher.snapshot.windows}
        assert exported[window] == {(r["key"].removeprefix("segment."), r["group"] or NULL_VALUE)
                                    for r in report["segments"]}
        for r in report["segments"]:
            labels = _labels(window, r["key"].removeprefix("segment."), r["group"] or NULL_VALUE, r["rate"])
            assert registry.get_sample_value(names.SEGMENT_SAMPLES, labels) == r["n"]
            assert registry.get_sample_value(names.SEGMENT_RATE, labels) == r["value"]  # None: no sample
            flag = registry.get_sample_value(names.SEGMENT_GAP_FLAGGED, labels)
            assert flag == (None if r["value"] is None else float(r["flagged"]))
    latam = _labels("30d", "region", "LATAM" if max_values > 1 else OTHER, "intervention_rate")
    assert registry.get_sample_value(names.SEGMENT_RATE, latam) is not None
    if max_values == 1:  # the region with most decisions kept, the others merged, per key
        # EU and US are 36 % and 34 % of traffic: which leads a 7-day window depends on when it ends.
        full = fairness_report(engine, TowerConfig(), end - 7 * DAY, end, keys=["segment.region"])
        decisions = {r["group"]: r["decisions"] for r in full["segments"]}
        top = max(decisions, key=lambda g: decisions[g])
        assert sorted(decisions.values())[-2] < decisions[top]  # no tie
        regions = {s.value for w in refresher.snapshot.windows if w.window == "7d" for s in w.segments
                   if s.key == "region"}
        assert regions == {top, OTHER}
    else:
        assert registry.get_sample_value(names.SEGMENT_GAP_FLAGGED, latam) == 1.0


def test_promtool_accepts_the_fairness_gauges(synth: tuple[str, Engine, int]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    _, engine, end = synth
    refresher = MetricsRefresher(engine, TowerConfig(fairness={"max_values": 2}), clock=lambda: end / US)
    assert refresher.refresh()
    body = refresher.exposition.text
    assert b'hitl_segment_rate_ratio{rate="intervention_rate",segment_key="region",segment_value="__other__"' in body
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_a_failing_store_keeps_the_last_fairness_gauges_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    engine = load(url, _hand_events())
    refresher = MetricsRefresher(engine, TowerConfig(), clock=lambda: (T0 + DAY) / US)
    assert refresher.refresh()
    before = refresher.snapshot.windows
    (tmp_path / "gone.db").unlink()
    assert not refresher.refresh()
    registry = _registry(refresher)
    assert registry.get_sample_value(names.STALE) == 1.0
    assert refresher.snapshot.windows == before
    assert registry.get_sample_value(names.SEGMENT_SAMPLES,
                                     _labels("24h", "region", "LATAM", "intervention_rate")) == 100
    engine.dispose()


@pytest.mark.usefixtures("fresh_caches")
def test_the_page_shows_the_latam_gap(synth: tuple[str, Engine, int], monkeypatch: pytest.MonkeyPatch) -> None:
    url = synth[0]
    monkeypatch.setenv("HITL_TOWER_DB_URL", url)
    at = AppTest.from_file(MAIN, default_timeout=90)
    at.session_state["window"] = "last 30d"
    at.switch_page("views/fairness.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="fairness_key").value == "segment.region" and at.selectbox(key="fairness_rate").value == "intervention_rate"
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("intervention rate by segment.region: significant gap for **LATAM**")
               for w in warnings), warnings
    assert any(w.startswith("reviewer intervention rate by segment.region: significant gap for **LATAM**")
               for w in warnings), warnings
    assert any(s.value.startswith("unnecessary intervention rate by segment.region: no significant gap")
               for s in at.success)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = chart["data"][0]
    colours = dict(zip(bars["x"], bars["marker"]["color"]))
    assert colours["LATAM"] == "#d62728" and bars["error_y"]["array"]
    assert any(shape.get("line", {}).get("dash") == "dash" for shape in chart["layout"]["shapes"])
    table = at.dataframe[0].value
    assert set(table["group"]) == {"EU", "US", "APAC", "LATAM"} and set(table["key"]) == {"segment.region"}
    # Another key and rate: the page reloads with the chosen key and draws without error.
    at.selectbox(key="fairness_key").set_value("segment.language")
    at.selectbox(key="fairness_rate").set_value("agent_accuracy")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.dataframe[0].value["key"]) == {"segment.language"}
