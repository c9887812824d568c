"""`hitl-tower demo`: builds the demo store from the shipped sample and prints the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.cli import app
from tests.process_helpers import free_port


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_builds_a_fresh_store_and_reports(in_tmp: Path) -> None:
    sample_lines = sum(1 for line in (Path(__file__).parent.parent / "collectors/data/sample.jsonl").open())
    for _ in range(2):  # the second run rebuilds, so nothing is a duplicate
        result = CliRunner().invoke(app, ["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        assert f"{sample_lines} events stored (0 duplicate)" in result.output
    assert (in_tmp / "hitl-demo.db").is_file()
    assert "intervention_rate" in result.output and "critical" in result.output


def test_demo_on_an_existing_store_does_not_regenerate(in_tmp: Path) -> None:
    assert CliRunner().invoke(app, ["demo", "--no-serve"]).exit_code == 0
    (in_tmp / "hitl-demo.db").rename(in_tmp / "mine.db")
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", f"sqlite:///{in_tmp / 'mine.db'}"])
    assert result.exit_code == 0, result.output
    assert "stored" not in result.output and "intervention_rate" in result.output
    assert not (in_tmp / "hitl-demo.db").exists()


def test_demo_without_serving_generates_the_days_and_rate_asked_for(in_tmp: Path) -> None:
    from sqlalchemy import text

    from collectors.store.db import open_store

    result = CliRunner().invoke(app, ["demo", "--no-serve", "--days", "2", "--per-day", "40"])
    assert result.exit_code == 0, result.output
    assert "seed 7" in result.output  # generated (the shipped sample is 3 days of 300)
    engine = open_store(f"sqlite:///{in_tmp / 'hitl-demo.db'}", create=False)
    with engine.connect() as conn:
        decisions, first, last = conn.execute(text("SELECT count(*), min(proposed_at), max(proposed_at) "
                                                   "FROM decisions")).one()
    engine.dispose()
    assert 40 <= decisions <= 120 and (last - first) / 86_400e6 <= 2
    # as --help says: it starts where the shipped sample starts, whatever the day it is run
    from collectors.synth import DEFAULT_START

    start_us = int(DEFAULT_START.timestamp()) * 1_000_000
    assert start_us <= first < start_us + 86_400_000_000
    help_text = " ".join(CliRunner().invoke(app, ["demo", "--help"]).output.replace("│", " ").split())
    assert f"starts on {DEFAULT_START.date().isoformat()}" in help_text
    mixed = CliRunner().invoke(app, ["demo", "--no-serve", "--db", f"sqlite:///{in_tmp / 'hitl-demo.db'}",
                                     "--days", "2"])
    assert mixed.exit_code == 2 and "--days and --per-day size the generated store" in mixed.output


@pytest.mark.parametrize("serve", [[], ["--no-serve"]])
def test_demo_refuses_a_seed_it_would_ignore(in_tmp: Path, serve: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With --db the demo generates nothing and streams nothing, so --seed changed nothing; --days and
    --per-day were refused there, --seed passed silently and the run looked seeded."""
    import collectors.demo_run

    def serving(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo started its servers with a --seed it ignores")

    monkeypatch.setattr(collectors.demo_run, "run_live", serving)
    store = in_tmp / "own.db"
    assert CliRunner().invoke(app, ["init-db", "--db", f"sqlite:///{store}"]).exit_code == 0
    result = CliRunner().invoke(app, ["demo", *serve, "--db", f"sqlite:///{store}", "--seed", "3",
                                      "--metrics-port", str(free_port()), "--dashboard-port", str(free_port())])
    assert result.exit_code == 2, result.output
    assert "--seed chooses the generated traffic; with --db" in result.stderr


def test_demo_reports_the_last_24_hours_of_a_store_that_ends_after_midnight(in_tmp: Path) -> None:
    """Not the calendar day of the newest decision: that held only 30 minutes of this store."""
    from datetime import UTC, datetime

    from tests.app_helpers import build_synth_store

    url = build_synth_store(in_tmp, days=2, decisions_per_day=200, end=datetime(2026, 11, 20, 0, 30, tzinfo=UTC))
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", url])
    assert result.exit_code == 0, result.output
    assert "KPIs of 2026-11-19T01:00:00Z to 2026-11-20T01:00:00Z" in result.output
    assert "--start 2026-11-19T01:00:00Z --end 2026-11-20T01:00:00Z" in result.output


def test_demo_says_when_the_store_runs_past_the_clock(in_tmp: Path) -> None:
    """`demo --no-serve --days 30` starts on 2026-11-02 whatever the date, so it can end after now: the
    dashboard's pending ages (from now) then read negative, and the report says why."""
    from datetime import UTC, datetime, timedelta

    from tests.app_helpers import build_synth_store

    ahead = build_synth_store(in_tmp, days=2, decisions_per_day=50, end=datetime.now(UTC) + timedelta(days=2))
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", ahead])
    assert result.exit_code == 0, result.output
    assert "is after this machine's clock" in result.output
    result = CliRunner().invoke(app, ["demo", "--no-serve"])  # the shipped sample: November 2026
    assert result.exit_code == 0 and "machine's clock" not in result.output


def test_demo_on_an_empty_store_says_so(in_tmp: Path) -> None:
    assert CliRunner().invoke(app, ["init-db", "--db", f"sqlite:///{in_tmp / 'empty.db'}"]).exit_code == 0
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--db", f"sqlite:///{in_tmp / 'empty.db'}"])
    assert result.exit_code == 2
    assert "holds no decisions" in result.output


def _get(url: str) -> tuple[int, bytes]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_demo_serves_metrics_and_dashboard_streams_and_stops_on_sigterm(in_tmp: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from collectors.store.db import decision_time_range, open_store

    metrics, dashboard = free_port(), free_port()
    proc = subprocess.Popen(
        # Live events come at the history's rate: 50,000 a day is a new decision every ~2 s.
        [sys.executable, "-c", "from collectors.cli import main; main()", "demo", "--days", "0.2", "--per-day",
         "50000", "--metrics-port", str(metrics), "--dashboard-port", str(dashboard), "--stream-interval", "1"],
        cwd=in_tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("streaming new events"):
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{metrics}/metrics" in output and f"http://127.0.0.1:{dashboard}" in output, output
        engine = open_store(f"sqlite:///{in_tmp / 'hitl-demo.db'}", create=False)
        try:
            first = decision_time_range(engine)
            deadline = time.monotonic() + 60
            up = set()
            while time.monotonic() < deadline and len(up) < 3:
                for name, url in (("metrics", f"http://127.0.0.1:{metrics}/metrics"),
                                  ("dashboard", f"http://127.0.0.1:{dashboard}/_stcore/health")):
                    try:
                        status, body = _get(url)
                        if status == 200 and (name != "metrics" or b"hitl_" in body):
                            up.add(name)
                    except OSError:
                        pass
                latest = decision_time_range(engine)
                if first and latest and latest[1] > first[1]:
                    up.add("stream")
                time.sleep(0.5)
            assert up == {"metrics", "dashboard", "stream"}, (up, output)
        finally:
            engine.dispose()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output + rest
        assert "stopping" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for port in (metrics, dashboard):  # both children are gone with the demo
        try:
            _get(f"http://127.0.0.1:{port}/")
        except OSError:
            continue
        raise AssertionError(f"port {port} still answers after the demo stopped")


def test_the_alert_replay_lets_the_detectors_see_the_history_as_it_was(tmp_path: Path) -> None:
    """The replay walks the sequential detectors through time: the planted kyc-v2.4 drift (day 20 of
    30) raises HitlCalibrationChange during the replay and it is still firing at the end (it persists)."""
    import threading

    from collectors.alerts.history import list_alerts
    from collectors.config import TowerConfig
    from collectors.demo_run import LiveSettings, replay_alerts
    from collectors.drift import SequentialMonitor
    from collectors.store.db import open_store
    from tests.app_helpers import build_synth_store

    url = build_synth_store(tmp_path, days=30, decisions_per_day=600)
    engine = open_store(url, create=False)
    config = TowerConfig()
    try:
        monitor = SequentialMonitor.from_config(config.alerts)
        # 6 h steps (the demo uses 3 h): 48 evaluations are enough to see the drift fire and persist
        replay_alerts(engine, config, monitor, LiveSettings(replay_days=12, replay_step_seconds=6 * 3600),
                      lambda _line: None, threading.Event())
        episodes = [a for a in list_alerts(engine, alertname="HitlCalibrationChange")]
    finally:
        engine.dispose()
    assert episodes and {a.labels["model_version"] for a in episodes} == {"kyc-v2.4"}
    assert any(a.state == "firing" for a in episodes)


def test_the_demo_raises_the_agreement_alert_for_the_erratic_reviewer_only(tmp_path: Path) -> None:
    """At the demo's 2,000 decisions a day, payments-l1 (where gus.w gives random verdicts) has enough
    double-reviewed items every day for HitlAgreementCollapse's 30 (alerts.agreement_min_units) and fires;
    support, whose alpha once raised it from 7 such items, is never judged."""
    from collectors.alerts import build_rules, evaluate, list_alerts
    from collectors.alerts.observe import queue_observations
    from collectors.config import TowerConfig
    from collectors.engine.report import compute_report
    from collectors.store.db import decision_time_range, open_store
    from tests.app_helpers import build_synth_store

    url = build_synth_store(tmp_path, days=30, decisions_per_day=2000)
    engine = open_store(url, create=False)
    config = TowerConfig()
    rules = [r for r in build_rules(config) if r.alertname == "HitlAgreementCollapse"]
    units: dict[str | None, list[int]] = {}
    try:
        end = decision_time_range(engine)[1]
        step, day = 3 * 3600 * 1_000_000, 86_400 * 1_000_000
        for now in range(end - 5 * day, end + 1, step):  # the demo replays the rules every 3 h
            report = compute_report(engine, config, now - day, now, by=("queue",), now_us=now)
            for row in report.rows:
                units.setdefault(row.key[0], []).append(row.samples["agreement_units"])
            evaluate(engine, config, now, rules=rules, observations=queue_observations(report, report, {"window": "24h"}))
        episodes = list_alerts(engine, alertname="HitlAgreementCollapse")
    finally:
        engine.dispose()
    # 40-70 items a day (~35 on a weekend day), against 6-15 when it double-reviewed 5% like the others
    assert sorted(units["payments-l1"])[len(units["payments-l1"]) // 10] >= config.alerts.agreement_min_units
    assert max(units["support"]) < config.alerts.agreement_min_units, units["support"]
    assert {a.labels["queue"] for a in episodes if a.state == "firing"} >= {"payments-l1"}
    assert not [a for a in episodes if a.labels["queue"] == "support"]


def test_the_demo_checks_its_ports_before_generating(in_tmp: Path) -> None:
    """A taken port used to surface only after minutes of generating, and the demo then exited 0."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--metrics-port", str(port), "--dashboard-port", str(free_port())])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--metrics-port" in result.output
    assert not (in_tmp / "hitl-demo.db").exists()  # nothing generated


def test_the_demo_refuses_one_port_for_both_servers(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--metrics-port N --dashboard-port N passed the port check (each port alone was free), the demo
    generated its 30 days, the metrics server took the port and the dashboard never started: the demo
    kept running, printing 'dashboard: http://127.0.0.1:N', which served the metrics."""
    import collectors.cli.demo as demo_cli

    def generating(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo generated its store before refusing the ports")

    monkeypatch.setattr(demo_cli, "_generate_live_store", generating)
    port = free_port()
    result = CliRunner().invoke(app, ["demo", "--metrics-port", str(port), "--dashboard-port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"--metrics-port and --dashboard-port are both {port}" in result.stderr
    assert not (in_tmp / "hitl-demo.db").exists()


def test_a_bad_host_is_named_as_the_host_not_as_a_taken_port(in_tmp: Path) -> None:
    """`demo --host nosuch.invalid` said 'stop what holds it, or pick another port with --metrics-port':
    no port was taken, the address was wrong."""
    result = CliRunner().invoke(app, ["demo", "--host", "nosuch.invalid", "--metrics-port", str(free_port()),
                                      "--dashboard-port", str(free_port())])
    assert result.exit_code == 2, result.output
    assert "cannot listen on nosuch.invalid:" in result.stderr
    assert "--host" in result.stderr and "pick another port" not in result.stderr
    assert not (in_tmp / "hitl-demo.db").exists()


def test_live_traffic_continues_the_history_at_its_rate() -> None:
    """Reviews and outcomes of the history that fall after its end arrive later; new traffic keeps the
    history's rate (a fixed batch every few seconds ran ~86x faster, and its held decisions stayed
    pending for ever)."""
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from collectors import synth
    from collectors.live_traffic import LiveTraffic, event_time_us, until

    end = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday
    later: list[dict[str, object]] = []
    history = list(until(synth.generate(seed=3, days=2, decisions_per_day=2000, start=end - timedelta(days=2),
                                        horizon=end + timedelta(days=60)), end, later))
    assert later and all(event_time_us(e) > end.timestamp() * 1e6 for e in later)
    assert {e["type"] for e in later} <= {"review", "outcome"}
    traffic = LiveTraffic(seed=3, per_day=2000, start=end, held=later)
    now, seen, times = end, Counter[str](), []
    for _ in range(24 * 12):  # one day, every 5 minutes
        now += timedelta(minutes=5)
        due = traffic.due(now)
        assert all(event_time_us(e) <= now.timestamp() * 1e6 for e in due)
        times += [event_time_us(e) for e in due]
        seen.update(e["type"] for e in due)
    assert times == sorted(times)
    per_day_history = sum(e["type"] == "decision" for e in history) / 2
    assert 0.6 * per_day_history < seen["decision"] < 1.4 * per_day_history
    held_decisions = {e["decision_id"] for e in later if e["type"] == "review"}
    assert held_decisions  # the history's pending decisions get their reviews
    live_ids = {e["id"] for e in history if e["type"] == "decision"}
    assert held_decisions <= live_ids
    assert seen["review"] > 0.5 * seen["decision"] and seen["outcome"] > 0
