"""collectors.dashboard_data: the dashboard's numbers are the engine's numbers for the same window and slice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors import dashboard_data as dd
from collectors.config import load_config
from collectors.engine.report import compute_report
from tests.app_helpers import build_empty_store, build_synth_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, int, int]]:
    from collectors.store.db import decision_time_range, open_store

    engine = open_store(build_synth_store(tmp_path_factory.mktemp("dd"), days=10, decisions_per_day=150),
                        create=False)
    start, end = dd.window_bounds(decision_time_range(engine)[1], "last 7d")
    yield engine, load_config(), start, end
    engine.dispose()


def test_a_filtered_summary_is_the_engine_row_of_that_slice(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, start, end = store
    summary = dd.kpi_summary(engine, cfg, start, end, {"risk_class": "high"}, now_us=end)
    report = compute_report(engine, cfg, start, end, by=["risk_class"], now_us=end)
    row = next(r for r in report.rows if r.key == ("high",))
    assert summary["kpis"] == row.kpis and summary["samples"] == row.samples
    ref = compute_report(engine, cfg, report.reference_start_us, report.reference_end_us, by=["risk_class"],
                         now_us=end)
    ref_row = next(r for r in ref.rows if r.key == ("high",))
    assert summary["deltas"]["decisions"] == row.kpis["decisions"] - ref_row.kpis["decisions"]


def test_a_filter_matching_nothing_gives_no_kpis(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, start, end = store
    assert dd.kpi_summary(engine, cfg, start, end, {"queue": "fraud", "agent_id": "kyc-agent"})["kpis"] is None
    assert dd.reliability(engine, cfg, start, end, {"queue": "no-such-queue"}).empty


def test_daily_series_add_up_to_the_window(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, start, end = store
    series = dd.timeseries(engine, cfg, start, end, dd.DAY_US, ["decisions"])
    assert len(series) in (7, 8)  # the window's edges cut into the first and last day
    assert int(series["decisions"].sum()) == compute_report(engine, cfg, start, end).total.kpis["decisions"]


def test_slicing_by_a_filtered_field_keeps_one_row(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, start, end = store
    table = dd.segment_table(engine, cfg, start, end, "queue", ["decisions"], {"queue": "kyc"})
    assert table["queue"].tolist() == ["kyc"]


def test_reviewers_and_alerts_of_an_empty_store(tmp_path: Path) -> None:
    from collectors.store.db import open_store

    engine = open_store(build_empty_store(tmp_path), create=False)
    try:
        data = dd.reviewers(engine, load_config(), 0, 10**6)
        assert data["table"].empty and data["matrix"].empty
        alerts = dd.alerts(engine, load_config())
        assert alerts["firing"].empty and alerts["history"].empty
    finally:
        engine.dispose()


def test_the_cost_split_adds_up_to_the_engines_cost_per_decision(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, start, end = store
    split = dd.segment_table(engine, cfg, start, end, "queue", ("cost_per_decision", *dd.COST_PARTS),
                             {"risk_class": "medium"})
    report = compute_report(engine, cfg, start, end, by=["risk_class", "queue"])
    rows = {r.key[1] or "(none)": r for r in report.rows if r.key[0] == "medium"}
    assert sorted(split["queue"]) == sorted(rows) and len(split) > 1
    for rec in split.to_dict("records"):
        row = rows[rec["queue"]]
        assert rec["cost_per_decision"] == row.kpis["cost_per_decision"]
        assert rec["n_decisions"] == row.samples["decisions"]
        assert rec["model_cost_per_decision"] > 0 and rec["review_cost_per_decision"] >= 0
        assert rec["model_cost_per_decision"] + rec["review_cost_per_decision"] == pytest.approx(
            rec["cost_per_decision"], rel=1e-12)


def test_drift_markers_are_the_drift_alerts_that_began_in_the_window(tmp_path: Path) -> None:
    from collectors.alerts.history import insert_episode
    from collectors.store.db import open_store

    engine = open_store(build_empty_store(tmp_path), create=False)
    hour = 3_600_000_000
    start, end = 100 * hour, 200 * hour

    def episode(name: str, at: int, version: str, state: str = "firing") -> dict[str, Any]:
        return {"fingerprint": f"{name}{at}{version}", "alertname": name, "severity": "warning",
                "labels": {"model_version": version, "action_type": "kyc_approve"},
                "annotations": {"summary": f"{name} on {version}"}, "state": state, "threshold": 0.0,
                "active_at": at, "starts_at": at, "ends_at": None if state == "firing" else at + hour,
                "fired_value": 1.0, "resolved_value": None, "last_value": 1.0, "worst_value": 1.0,
                "evaluated_at": at, "notified_state": None}

    try:
        with engine.begin() as conn:
            insert_episode(conn, episode("HitlCalibrationChange", 150 * hour, "kyc-v2.4"))
            insert_episode(conn, episode("HitlConfidencePsi", 120 * hour, "refund-v3.2", "resolved"))
            insert_episode(conn, episode("HitlCalibrationDrift", 50 * hour, "kyc-v2.4"))  # began before the window
            insert_episode(conn, episode("HitlBacklogAge", 160 * hour, "kyc-v2.4"))  # not a drift alert
        markers = dd.drift_markers(engine, load_config(), start, end)
        only_kyc = dd.drift_markers(engine, load_config(), start, end, {"model_version": "kyc-v2.4"})
    finally:
        engine.dispose()
    assert [(m["alertname"], m["at_us"]) for m in markers] == [("HitlConfidencePsi", 120 * hour),
                                                               ("HitlCalibrationChange", 150 * hour)]
    assert markers[1]["label"] == "CalibrationChange: kyc-v2.4 / kyc_approve"
    assert [m["alertname"] for m in only_kyc] == ["HitlCalibrationChange"]


def test_model_versions_are_every_version_of_the_store_oldest_first(tmp_path: Path) -> None:
    """One order whatever the window: a version's chart colour comes from its place in it, and a new
    version comes last, so the older ones keep theirs."""
    from tests.engine_helpers import DAY, T0, decision, load

    url = f"sqlite:///{tmp_path / 'versions.db'}"
    engine = load(url, [decision("a", T0, model_version="v2"), decision("b", T0 + DAY, model_version="v10"),
                        decision("c", T0 + DAY, model_version="v1"), decision("d", T0 + 2 * DAY, model_version="v2")])
    try:
        assert dd.model_versions(engine) == ["v2", "v1", "v10"]  # first hour, then name
    finally:
        engine.dispose()
    engine = load(url, [decision("e", T0 - DAY, model_version="v0")])
    try:
        assert dd.model_versions(engine) == ["v0", "v2", "v1", "v10"]
    finally:
        engine.dispose()
    empty = load(f"sqlite:///{tmp_path / 'empty.db'}", [])
    try:
        assert dd.model_versions(empty) == []
    finally:
        empty.dispose()


def test_outcome_coverage_is_comparable_only_near_the_reference() -> None:
    settled = {"decisions": 200, "outcomes": 100}
    assert dd.outcome_coverage({"decisions": 100, "outcomes": 46}, settled) == {
        "window": 0.46, "reference": 0.5, "baseline": 0.5, "comparable": True}
    arriving = dd.outcome_coverage({"decisions": 100, "outcomes": 30}, settled)
    assert arriving["window"] == 0.3 and not arriving["comparable"]
    alone = dd.outcome_coverage({"decisions": 100, "outcomes": 30}, None)  # no reference: nothing to compare
    assert alone["comparable"] and alone["baseline"] == 0.3
    assert dd.outcome_coverage(None, None)["window"] is None
    assert {"ece", "brier", "ece_drift", "override_count", "harmful_override_rate", "cost_avoided",
            "override_error_delta"} == set(dd.OUTCOME_KPIS)


def test_the_last_buckets_below_the_baseline_are_the_ones_whose_outcomes_are_arriving() -> None:
    import pandas as pd

    days = pd.date_range("2026-11-01", periods=6, freq="D", tz="UTC")
    series = pd.DataFrame({"bucket": days, "n_decisions": [100] * 6, "n_outcomes": [50, 20, 52, 49, 30, 5]})
    # the dip on day 2 is history, not arrival: only the last run below 90% of 0.5 counts
    assert dd.outcomes_arriving_since(series, 0.5) == days[4]
    assert dd.outcomes_arriving_since(series.iloc[:4], 0.5) is None
    assert dd.outcomes_arriving_since(series, None) is None
    by_version = pd.DataFrame({"bucket": [days[0], days[0], days[1], days[1]], "n_decisions": [50, 50, 50, 50],
                               "n_outcomes": [40, 10, 20, 2]})  # a bucket's rows count together
    assert dd.outcomes_arriving_since(by_version, 0.5) == days[1]


def test_a_summary_says_whether_its_outcome_coverage_compares(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, _start, end = store
    newest = end - 1
    day_start, day_end = dd.window_bounds(newest, "last 24h")
    cover = dd.kpi_summary(engine, cfg, day_start, day_end)["outcome_coverage"]
    # the last day's outcomes mostly arrive in the days after: far fewer than the day before holds
    assert cover["window"] < 0.9 * cover["reference"] and not cover["comparable"]


def test_psi_and_ece_drift_below_the_alerting_gates_are_withheld() -> None:
    cfg = load_config()
    gate, outcomes = cfg.alerts.psi_min_decisions, cfg.alerts.min_outcomes
    big = {"decisions": gate, "reference_decisions": gate, "outcomes": outcomes, "reference_outcomes": outcomes}
    assert dd.sample_gates(cfg, big) == {}
    tiny_reference = dict(big, reference_decisions=36, reference_outcomes=outcomes - 1)
    reasons = dd.sample_gates(cfg, tiny_reference)
    assert set(reasons) == {"psi", "ece_drift"}
    assert reasons["psi"].startswith(f"n too small: {gate:,} decisions in the window and 36 in the reference")
    assert "alerts.psi_min_decisions" in reasons["psi"] and "alerts.min_outcomes" in reasons["ece_drift"]
    assert set(dd.sample_gates(cfg, dict(big, decisions=gate - 1))) == {"psi"}  # the window's side counts too


def test_a_summary_withholds_psi_on_too_few_decisions_and_gives_it_no_delta(store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, _start, end = store  # 150 decisions a day: under 1,000 a day, in any 24h window
    day_start, day_end = dd.window_bounds(end - 1, "last 24h")
    summary = dd.kpi_summary(engine, cfg, day_start, day_end)
    assert summary["kpis"]["psi"] is not None, "the engine computes it on any sample"
    assert "psi" in summary["withheld"] and summary["deltas"]["psi"] is None
    assert summary["deltas"]["decisions"] is not None


def test_pending_counts_have_no_delta_their_reference_had_a_window_longer_to_clear(
        store: tuple[Any, Any, int, int]) -> None:
    engine, cfg, _start, end = store
    week_start, week_end = dd.window_bounds(end - 1, "last 7d")
    summary = dd.kpi_summary(engine, cfg, week_start, week_end, now_us=end)
    current, before = summary["kpis"], summary["reference_kpis"]
    assert current["pending"] > before["pending"], "the premise: the older window has cleared more"
    assert summary["deltas"]["pending"] is None and summary["deltas"]["pending_oldest_age_seconds"] is None
    assert summary["deltas"]["decisions"] is not None and summary["deltas"]["intervention_rate"] is not None


def _old_pending_store(folder: Path) -> tuple[str, int]:
    """A kyc decision pending for 5 days, a payments one pending for 2 hours and a reviewed kyc one an hour
    old; its URL and the now of the ages."""
    import time

    from tests.engine_helpers import DAY, HOUR, decision, load, review

    now = int(time.time() * 1_000_000)
    events = [decision("old", now - 5 * DAY, queue="kyc"), decision("new", now - 2 * HOUR, queue="payments"),
              decision("done", now - HOUR, queue="kyc"), review("r1", "done", now - HOUR + 60_000_000)]
    url = f"sqlite:///{folder / 'pending.db'}"
    load(url, events).dispose()
    return url, now


def test_the_backlog_is_every_pending_decision_whatever_the_window(tmp_path: Path) -> None:
    """A window's oldest pending age counts only the decisions proposed in it: the 24h window said 2 h while
    a kyc decision had waited 5 days."""
    from collectors.store.db import open_store

    url, now = _old_pending_store(tmp_path)
    engine = open_store(url, create=False)
    try:
        cfg = load_config()
        start, end = dd.window_bounds(now - 3_600_000_000, "last 24h")
        day = dd.kpi_summary(engine, cfg, start, end, now_us=now)["kpis"]
        assert day["pending"] == 1 and day["pending_oldest_age_seconds"] == 2 * 3600
        backlog = dd.backlog(engine, cfg, now_us=now)
        assert backlog["total"] == {"pending": 2, "pending_oldest_age_seconds": 5 * 86_400}
        assert backlog["by_queue"].to_dict("records") == [
            {"queue": "kyc", "pending": 1, "pending_oldest_age_seconds": 5 * 86_400},
            {"queue": "payments", "pending": 1, "pending_oldest_age_seconds": 2 * 3600}]
        assert dd.backlog(engine, cfg, {"queue": "payments"}, now_us=now)["total"]["pending_oldest_age_seconds"] == 7200
        assert dd.backlog(engine, cfg, {"queue": "nowhere"}, now_us=now)["total"] is None
    finally:
        engine.dispose()


@pytest.mark.usefixtures("fresh_caches")
def test_operations_shows_the_oldest_pending_decision_of_any_window_per_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.app_helpers import run_view

    url, _ = _old_pending_store(tmp_path)
    at = run_view(url, "operations.py", monkeypatch, "last 24h")
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["pending now"] == "2" and tiles["oldest pending"] == "5.0 d", tiles
    table = next(t.value for t in at.dataframe if "pending_oldest_age_seconds" in t.value.columns)
    assert table["queue"].tolist() == ["kyc", "payments"]
    assert any("whatever the window" in c.value for c in at.caption)


@pytest.mark.usefixtures("fresh_caches")
def test_overview_shows_the_oldest_pending_decision_of_any_window_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Overview's tile read the 24h window's oldest pending age (2 h) while Operations said 5 days."""
    from tests.app_helpers import run_view

    url, _ = _old_pending_store(tmp_path)
    at = run_view(url, "overview.py", monkeypatch, "last 24h")
    tiles = {m.label: m for m in at.metric}
    assert tiles["oldest pending now"].value == "5.0 d", {k: m.value for k, m in tiles.items()}
    assert "whatever the window" in tiles["oldest pending now"].proto.help
    assert not tiles["oldest pending now"].proto.delta  # a delta against the reference window would be the window's
    assert "pending oldest age" not in tiles  # no second, window-only oldest age beside it
    assert tiles["pending"].value == "1" and "of the window" in tiles["pending"].proto.help
    assert any(c.value == "whole store: 2 pending now" for c in at.caption)


def test_whole_buckets_leave_out_the_part_bucket_the_window_starts_inside(store: tuple[Any, Any, int, int]) -> None:
    import pandas as pd

    engine, cfg, start, end = store
    assert dd.first_whole_bucket(5 * dd.DAY_US, dd.DAY_US) == 5 * dd.DAY_US
    assert dd.first_whole_bucket(5 * dd.DAY_US + 1, dd.DAY_US) == 6 * dd.DAY_US
    every = dd.timeseries(engine, cfg, start, end, dd.DAY_US, ["decisions"])
    whole = dd.timeseries(engine, cfg, start, end, dd.DAY_US, ["decisions"], whole_buckets=True)
    assert every["bucket"].iloc[0] < pd.Timestamp(start, unit="us", tz="UTC")  # the window starts mid-day
    assert whole["bucket"].iloc[0] == pd.Timestamp(dd.first_whole_bucket(start, dd.DAY_US), unit="us", tz="UTC")
    assert whole["bucket"].tolist() == every["bucket"].tolist()[1:]  # the day going on now stays
