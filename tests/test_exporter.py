"""The Prometheus exporter: its samples equal `compute_report`, nulls have no sample, labels are capped,
a store outage is served stale and recovers, the HTTP server serves cached bytes, promtool accepts it.

Every collector test reads a fresh `CollectorRegistry()` with `get_sample_value`, never the global one.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from collectors import synth
from collectors.cli import app
from collectors.config import ConfigError, TowerConfig, load_config
from collectors.engine.report import compute_report
from collectors.exporter import names
from collectors.exporter.collector import SnapshotCollector
from collectors.exporter.counters import CounterTotals
from collectors.exporter.counters_query import CounterDelta, LatencyRow
from collectors.exporter.names import NULL_VALUE
from collectors.exporter.server import MetricsServer
from collectors.exporter.snapshot import Exposition, MetricsRefresher
from collectors.kpis.spec import KPI_IDS
from collectors.validate import parse_timestamp
from tests.engine_helpers import DAY, HOUR, decision, load, outcome, review

NOW = parse_timestamp("2026-11-20T12:34:56Z")
SECOND = 1_000_000
WINDOWS = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY}


def _synth_events(**kw: Any) -> list[dict[str, Any]]:
    start = datetime.fromtimestamp((NOW - 8 * DAY) / 1e6, UTC)
    return list(synth.generate(seed=11, start=start, days=8, decisions_per_day=300, **kw))


def _refresher(engine: Engine, config: TowerConfig | None = None) -> MetricsRefresher:
    return MetricsRefresher(engine, config or TowerConfig(), clock=lambda: NOW / 1e6)


def _registry(refresher: MetricsRefresher) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(refresher.snapshot))
    return registry


def _labels(window: str, label: str | None = None, value: str | None = None) -> dict[str, str]:
    return {"window": window, **{name: (value if name == label else "") for name in names.SLICE_LABELS}}


def _kpi(registry: CollectorRegistry, kpi_id: str, labels: dict[str, str]) -> float | None:
    return registry.get_sample_value(names.KPI_METRICS[kpi_id], labels)


def _assert_kpis(registry: CollectorRegistry, labels: dict[str, str], expected: dict[str, Any]) -> None:
    for kpi_id in KPI_IDS:
        got, want = _kpi(registry, kpi_id, labels), expected[kpi_id]
        if want is None:
            assert got is None, (kpi_id, labels, got)
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (kpi_id, labels, got, want)


def _assert_samples(registry: CollectorRegistry, labels: dict[str, str], expected: dict[str, int]) -> None:
    """The sample-size gauges (agreement units, primary reviews) equal the report's samples exactly."""
    for sample_id, metric in names.SAMPLE_METRICS.items():
        assert registry.get_sample_value(metric, labels) == expected[sample_id], (metric, labels)


@pytest.fixture
def synth_store(db_url: str) -> Engine:
    """Eight days of synthetic traffic ending at NOW, on SQLite and on PostgreSQL."""
    engine = load(db_url, _synth_events())
    yield engine
    engine.dispose()


# ---- values ---------------------------------------------------------------------------------------


def test_every_gauge_equals_compute_report(synth_store: Engine) -> None:
    config = TowerConfig()
    refresher = _refresher(synth_store, config)
    assert refresher.refresh()
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 1.0
    assert registry.get_sample_value(names.STALE) == 0.0
    assert registry.get_sample_value(names.LAST_SUCCESS) == NOW / 1e6
    for window, length in WINDOWS.items():
        for label in names.SLICE_LABELS:
            report = compute_report(synth_store, config, NOW - length, NOW, by=[label], now_us=NOW)
            _assert_kpis(registry, _labels(window), report.total.kpis)
            _assert_samples(registry, _labels(window), report.total.samples)
            assert report.rows, (window, label)
            for row in report.rows:
                value = NULL_VALUE if row.key[0] is None else row.key[0]
                _assert_kpis(registry, _labels(window, label, value), row.kpis)
                _assert_samples(registry, _labels(window, label, value), row.samples)
    assert registry.get_sample_value("hitl_window_decisions", _labels("7d")) > 1000
    assert registry.get_sample_value(names.SAMPLE_METRICS["agreement_units"], _labels("7d")) > 50


def test_null_kpi_has_no_sample_and_null_key_is_named(sqlite_url: str) -> None:
    engine = load(sqlite_url, [
        decision("d1", NOW - 2 * HOUR, route="auto", confidence=0.9, queue=None),
        decision("d2", NOW - 3 * HOUR, route="review", queue="kyc"),
    ])
    refresher = _refresher(engine)
    assert refresher.refresh()
    registry = _registry(refresher)
    total = _labels("24h")
    assert _kpi(registry, "decisions", total) == 2
    assert _kpi(registry, "auto_rate", total) == 1.0
    assert _kpi(registry, "pending", total) == 1
    assert _kpi(registry, "pending_oldest_age_seconds", total) == 3 * 3600
    for kpi_id in ("ece", "brier", "psi", "ece_drift", "cost_avoided", "agreement_alpha",
                   "latency_p50_seconds", "sla_breach_rate", "override_error_delta"):
        assert _kpi(registry, kpi_id, total) is None, kpi_id
    assert _kpi(registry, "decisions", _labels("24h", "queue", NULL_VALUE)) == 1
    assert _kpi(registry, "decisions", _labels("24h", "queue", "kyc")) == 1
    # An empty window is 0 decisions and null rates, not an absent window.
    assert _kpi(registry, "decisions", _labels("1h")) == 0
    assert _kpi(registry, "intervention_rate", _labels("1h")) is None
    assert not re.search(r'^hitl_calibration_ece_ratio\{', refresher.exposition.text.decode(), re.MULTILINE)
    engine.dispose()


def test_label_values_that_look_like_sentinels_get_series_of_their_own(sqlite_url: str) -> None:
    """A queue named "", "__none__" or "__other__" is not the whole window, the missing queue or the cap."""
    engine = load(sqlite_url, [
        decision("d1", NOW - 2 * HOUR, queue=""), decision("d2", NOW - 2 * HOUR, queue="__none__"),
        decision("d3", NOW - 2 * HOUR, queue=None), decision("d4", NOW - 2 * HOUR, queue="__other__"),
        decision("d5", NOW - 2 * HOUR, queue="__other__", risk_class="__x"),
    ])
    refresher = _refresher(engine)
    assert refresher.refresh()
    text_lines = refresher.exposition.text.decode().splitlines()
    series = [line.rsplit(" ", 1)[0] for line in text_lines if line.startswith("hitl_window_decisions{")]
    assert len(series) == len(set(series))  # one sample per series: Prometheus would drop the others
    registry = _registry(refresher)
    assert _kpi(registry, "decisions", _labels("24h")) == 5
    assert _kpi(registry, "decisions", _labels("24h", "queue", names.EMPTY_VALUE)) == 1
    assert _kpi(registry, "decisions", _labels("24h", "queue", "___none__")) == 1
    assert _kpi(registry, "decisions", _labels("24h", "queue", NULL_VALUE)) == 1
    assert _kpi(registry, "decisions", _labels("24h", "queue", "___other__")) == 2
    assert _kpi(registry, "decisions", _labels("24h", "risk_class", "___x")) == 1
    assert registry.get_sample_value(names.DECISIONS_TOTAL, {
        "risk_class": "___x", "route": "review", "model_version": "m1", "action_type": "refund"}) == 1
    engine.dispose()


@pytest.mark.parametrize(("raw", "label"), [("", "__empty__"), ("__none__", "___none__"), ("kyc", "kyc"),
                                            ("_a", "_a"), ("___", "____"), ("__empty__", "___empty__")])
def test_label_value_is_one_to_one_and_never_a_sentinel(raw: str, label: str) -> None:
    assert names.label_value(raw) == label
    assert label not in ("", names.NULL_VALUE, names.OVERFLOW_VALUE, names.EMPTY_VALUE) or raw == ""


def test_drift_series_equal_check_drift(synth_store: Engine) -> None:
    from collectors.drift import SequentialMonitor, check_drift

    config = TowerConfig()
    refresher = _refresher(synth_store, config)
    assert refresher.refresh()
    registry = _registry(refresher)
    drift = check_drift(synth_store, config, NOW, SequentialMonitor.from_config(config.alerts))
    assert drift.slices
    for s in drift.slices:
        labels = s.labels
        assert registry.get_sample_value(names.DRIFT_PSI, labels) == s.gated_psi
        assert registry.get_sample_value(names.DRIFT_ECE, labels) == s.ece_drift
        assert registry.get_sample_value(names.DRIFT_OUTCOMES, labels) == s.gate_outcomes
        assert registry.get_sample_value(names.DRIFT_DETECTED, labels) == (
            None if s.sequential is None else float(s.detected))
        assert registry.get_sample_value(names.DRIFT_SHIFT_DETECTED, labels) == (
            None if s.shift is None else float(s.shift_detected))
    assert any(s.ece_drift is not None for s in drift.slices)


# ---- cardinality cap ------------------------------------------------------------------------------


def test_cap_folds_the_rest_into_overflow_with_exact_kpis(tmp_path: Path) -> None:
    events = _synth_events()
    engine = load(f"sqlite:///{tmp_path / 'a.db'}", events)
    config = TowerConfig(exporter={"label_cap": 2})
    refresher = _refresher(engine, config)
    assert refresher.refresh()
    registry = _registry(refresher)
    full = compute_report(engine, config, NOW - 7 * DAY, NOW, by=["model_version"], now_us=NOW)
    ranked = sorted(full.rows, key=lambda r: (-r.kpis["decisions"], r.key))
    kept = {r.key[0] for r in ranked[:2]}
    exported = {s.value for w in refresher.snapshot.windows if w.window == "7d"
                for s in w.slices if s.label == "model_version"}
    assert exported == kept | {names.OVERFLOW_VALUE}
    for part in ranked[:2]:
        _assert_kpis(registry, _labels("7d", "model_version", part.key[0]), part.kpis)
    # The folded row equals a report on a store where the folded versions really are one value.
    relabelled = [{**e, "model_version": names.OVERFLOW_VALUE}
                  if e["type"] == "decision" and e["model_version"] not in kept else e for e in events]
    other = load(f"sqlite:///{tmp_path / 'b.db'}", relabelled)
    folded = compute_report(other, config, NOW - 7 * DAY, NOW, by=["model_version"], now_us=NOW)
    (row,) = [r for r in folded.rows if r.key == (names.OVERFLOW_VALUE,)]
    assert row.kpis["psi"] is not None and row.kpis["latency_p90_seconds"] is not None
    for kpi_id in KPI_IDS:
        got = _kpi(registry, kpi_id, _labels("7d", "model_version", names.OVERFLOW_VALUE))
        assert got == pytest.approx(row.kpis[kpi_id], rel=1e-9, abs=1e-12), kpi_id
    # ... and so do its sample sizes: the agreement units of the union, not of one folded value.
    assert row.samples["agreement_units"] > max(r.samples["agreement_units"] for r in ranked[2:])
    _assert_samples(registry, _labels("7d", "model_version", names.OVERFLOW_VALUE), row.samples)
    # Every label's values, the folded one included, split the window's units and reviews exactly.
    for window in refresher.snapshot.windows:
        for label in names.SLICE_LABELS:
            for sample_id in names.SAMPLE_METRICS:
                assert sum(p.samples[sample_id] for p in window.slices if p.label == label) \
                    == window.total_samples[sample_id], (window.window, label, sample_id)
    assert sum(len(w.slices) for w in refresher.snapshot.windows) <= 3 * 4 * 3
    engine.dispose()
    other.dispose()


def test_counter_cap_is_sticky_so_counters_only_grow() -> None:
    totals = CounterTotals(2, [60.0])
    totals.apply(CounterDelta(3, "h3", False, decisions=[
        ("low", "auto", "m1", "a", 5), ("low", "auto", "m2", "a", 3), ("low", "auto", "m3", "a", 1)]))
    assert totals.counters().decisions == {("low", "auto", "m1", "a"): 5, ("low", "auto", "m2", "a"): 3,
                                           ("low", "auto", names.OVERFLOW_VALUE, "a"): 1}
    totals.apply(CounterDelta(4, "h4", False, decisions=[("low", "auto", "m4", "a", 100)],
                              outcomes=[(True, "m4", 2), (False, "m1", 1)],
                              latency=[LatencyRow("low", 2, 90_000_000, (1,))]))
    counters = totals.counters()
    assert counters.decisions[("low", "auto", names.OVERFLOW_VALUE, "a")] == 101
    assert counters.outcomes == {("true", names.OVERFLOW_VALUE): 2, ("false", "m1"): 1}
    assert counters.latency["low"].cumulative == (1,) and counters.latency["low"].sum_seconds == 90.0
    totals.apply(CounterDelta(2, "other", True, decisions=[("high", "review", "m9", "b", 1)]))
    assert totals.counters().decisions == {("high", "review", "m9", "b"): 1}


# ---- counters and histogram -----------------------------------------------------------------------


def _sql_counts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        def q(sql: str) -> list[Any]:
            return conn.execute(text(sql)).all()
        return {
            "decisions": dict(q("SELECT risk_class, count(*) FROM decisions GROUP BY risk_class")),
            "reviews": {(k, v): n for k, v, n in q("SELECT kind, verdict, count(*) FROM reviews GROUP BY kind, verdict")},
            "outcomes": {bool(c): n for c, n in q("SELECT agent_correct, count(*) FROM outcomes GROUP BY agent_correct")},
            "latencies": [(rc, lat) for rc, lat in q(
                "SELECT d.risk_class, r.decided_at - r.enqueued_at FROM reviews r JOIN decisions d "
                "ON d.id = r.decision_id WHERE r.kind = 'primary'")],
        }


def _counter_sums(registry: CollectorRegistry) -> dict[str, Any]:
    decisions: Counter[str] = Counter()
    reviews: Counter[tuple[str, str]] = Counter()
    outcomes: Counter[bool] = Counter()
    for family in registry.collect():
        for s in family.samples:
            if s.name == names.DECISIONS_TOTAL:
                decisions[s.labels["risk_class"]] += int(s.value)
            elif s.name == names.REVIEWS_TOTAL:
                reviews[(s.labels["kind"], s.labels["verdict"])] += int(s.value)
            elif s.name == names.OUTCOMES_TOTAL:
                outcomes[s.labels["agent_correct"] == "true"] += int(s.value)
    return {"decisions": dict(decisions), "reviews": dict(reviews), "outcomes": dict(outcomes)}


def test_counters_and_histogram_count_the_store_incrementally(synth_store: Engine) -> None:
    refresher = _refresher(synth_store)
    assert refresher.refresh()
    for step in range(2):
        registry = _registry(refresher)
        sql = _sql_counts(synth_store)
        assert _counter_sums(registry) == {k: sql[k] for k in ("decisions", "reviews", "outcomes")}
        for risk_class in ("low", "medium", "high", "critical"):
            seconds = [lat / 1e6 for rc, lat in sql["latencies"] if rc == risk_class]
            base = f"{names.REVIEW_LATENCY_HISTOGRAM}"
            assert registry.get_sample_value(f"{base}_count", {"risk_class": risk_class}) == len(seconds)
            assert registry.get_sample_value(f"{base}_sum", {"risk_class": risk_class}) == pytest.approx(sum(seconds))
            for le in (900.0, 3600.0, 14400.0, 86400.0):
                assert registry.get_sample_value(f"{base}_bucket", {"risk_class": risk_class, "le": str(le)}) == \
                    sum(1 for s in seconds if s <= le), (risk_class, le)
        assert registry.get_sample_value(names.NEWEST_EVENT_AGE) >= 0
        if step == 0:  # new events arrive; the next refresh reads only them
            load(synth_store.url.render_as_string(hide_password=False), [
                decision("late-1", NOW - HOUR, risk_class="critical", model_version="m-new"),
                review("late-r1", "late-1", NOW - 1000 * SECOND, "reject", enqueued=NOW - 3000 * SECOND),
                outcome("late-1", NOW - 10 * SECOND, agent_correct=False)]).dispose()
            since = refresher._totals.since
            assert refresher.refresh()
            assert refresher._totals.since > since
    assert registry.get_sample_value(names.NEWEST_EVENT_AGE) == pytest.approx(10.0, abs=1e-3)


def test_a_replaced_store_restarts_the_counters(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = load(f"sqlite:///{path}", _synth_events())
    refresher = _refresher(engine)
    assert refresher.refresh()
    other = load(f"sqlite:///{tmp_path / 'other.db'}", [decision("x1", NOW - HOUR), decision("x2", NOW - HOUR)])
    other.dispose()
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"other.db{suffix}").exists():
            os.replace(tmp_path / f"other.db{suffix}", tmp_path / f"store.db{suffix}")
    assert refresher.refresh()
    assert _counter_sums(_registry(refresher))["decisions"] == {"low": 2}
    engine.dispose()


# ---- outage: stale values, then recovery ----------------------------------------------------------


def _make_unreachable(db_url: str, engine: Engine) -> None:
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{path}{suffix}.off")
    else:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
        engine.dispose()
        _pg_exec(db_url, f'DROP SCHEMA "{schema}" CASCADE')


def _restore(db_url: str, events: list[dict[str, Any]]) -> None:
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}.off").exists():
                os.replace(f"{path}{suffix}.off", f"{path}{suffix}")
    else:
        schema = re.search(r"search_path%3D(\w+)", db_url).group(1)
        _pg_exec(db_url, f'CREATE SCHEMA "{schema}"')
        load(db_url, events).dispose()  # the same events give the same chain, so the same values


def _pg_exec(db_url: str, sql: str) -> None:
    import psycopg

    url = make_url(db_url.split("?")[0]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql)


def _kpi_lines(exposition: bytes) -> list[str]:
    return [line for line in exposition.decode().splitlines() if line.startswith("hitl_")
            and not line.startswith("hitl_tower_")]


def test_store_outage_serves_last_values_stale_then_recovers(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    events = _synth_events()
    engine = load(db_url, events)
    refresher = _refresher(engine)
    assert refresher.refresh()
    good = _kpi_lines(refresher.exposition.text)
    assert len(good) > 500
    _make_unreachable(db_url, engine)
    caplog.set_level(logging.INFO, logger="collectors.exporter")
    assert not refresher.refresh()
    assert not refresher.refresh()  # a second failure is not logged again
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 0.0
    assert registry.get_sample_value(names.STALE) == 1.0
    assert registry.get_sample_value(names.LAST_SUCCESS) == NOW / 1e6
    assert _kpi_lines(refresher.exposition.text) == good
    failures = [r for r in caplog.records if "refresh failed" in r.getMessage()]
    assert len(failures) == 1 and "\n" not in failures[0].getMessage(), caplog.text
    if db_url.startswith("sqlite"):
        assert not Path(make_url(db_url).database).exists(), "a refresh must not create an empty store"
    _restore(db_url, events)
    assert refresher.refresh()
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 1.0
    assert registry.get_sample_value(names.STALE) == 0.0
    assert _kpi_lines(refresher.exposition.text) == good
    assert any("recovered" in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_a_hung_refresh_is_served_stale_until_it_ends(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A store that hangs (here: a lock held by another session) never fails a refresh; it is flagged."""
    import sqlite3

    import psycopg

    engine = load(db_url, [decision("d1", NOW - HOUR), decision("d2", NOW - 2 * HOUR)])
    config = TowerConfig(exporter={"refresh_timeout_seconds": 0.5})
    refresher = _refresher(engine, config)
    assert refresher.refresh()
    good = _kpi_lines(refresher.exposition.text)
    if db_url.startswith("sqlite"):  # an exclusive lock on the file: readers wait (busy_timeout) too
        engine.dispose()  # its pooled connections would keep the lock from being taken
        holder: Any = sqlite3.connect(make_url(db_url).database, isolation_level=None)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE chain_head SET seq = seq")
    else:
        url = make_url(db_url.split("?")[0]).set(drivername="postgresql")
        holder = psycopg.connect(url.render_as_string(hide_password=False), options="-c search_path="
                                 + re.search(r"search_path%3D(\w+)", db_url).group(1))
        holder.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
    caplog.set_level(logging.INFO, logger="collectors.exporter")
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(refresher.refresh()))
    thread.start()
    deadline = time.monotonic() + 20
    while refresher.snapshot.health.up and time.monotonic() < deadline:
        time.sleep(0.05)
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 0.0 and registry.get_sample_value(names.STALE) == 1.0
    assert _kpi_lines(refresher.exposition.text) == good
    assert any("overdue" in r.getMessage() for r in caplog.records), caplog.text
    holder.rollback() if not db_url.startswith("sqlite") else holder.execute("ROLLBACK")
    holder.close()
    thread.join(60)
    assert result == [True]
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 1.0 and registry.get_sample_value(names.STALE) == 0.0
    engine.dispose()


class _FreezingProxy:
    """A TCP forwarder whose open connections can be frozen (bytes stop, sockets stay open) while new
    ones still pass: a dead network path (a NAT entry dropped, a partition) as the client sees it."""

    def __init__(self, target_port: int) -> None:
        import socket

        self.target_port = target_port
        self.frozen_before = 0  # connections numbered below this are frozen
        self._count = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[Any] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.frozen_before = self._count

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            number, self._count = self._count, self._count + 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(number, source, sink), daemon=True).start()

    def _pump(self, number: int, source: Any, sink: Any) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            while number < self.frozen_before:
                time.sleep(0.05)  # frozen: hold the bytes, never close
            if not data:
                sink.close()
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.mark.postgres
def test_a_refresh_hung_on_a_dead_network_path_is_aborted_and_the_next_one_reconnects(
        pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    """No error ever comes back on a frozen path: only closing the connection ends the hung read."""
    import psycopg

    from collectors.store.db import create_store_engine

    schema = f"t_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    url = make_url(pg_database)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    direct = f"{pg_database}?options=-csearch_path%3D{schema}"
    load(direct, [decision("d1", NOW - HOUR)]).dispose()
    proxy = _FreezingProxy(url.port or 5432)
    engine = create_store_engine(url.set(port=proxy.port).render_as_string(hide_password=False)
                                 + f"?options=-csearch_path%3D{schema}")
    config = TowerConfig(exporter={"refresh_timeout_seconds": 0.5, "refresh_abort_seconds": 2})
    refresher = _refresher(engine, config)
    try:
        assert refresher.refresh()
        caplog.set_level(logging.INFO, logger="collectors.exporter")
        proxy.freeze()  # the pooled connection now hangs; new connections still get through
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(refresher.refresh()), daemon=True)
        thread.start()
        thread.join(30)
        assert result == [False], "the hung refresh was not aborted"
        assert any("aborted" in r.getMessage() for r in caplog.records), caplog.text
        assert refresher.refresh()  # a new connection: fresh values again
        assert _registry(refresher).get_sample_value(names.UP) == 1.0
    finally:
        engine.dispose()
        proxy.close()


def test_a_read_only_sqlite_store_is_served(tmp_path: Path) -> None:
    """A store the exporter may only read (a copy, a read-only mount) is served as it is; asking for
    WAL on it failed every refresh with 'attempt to write a readonly database'."""
    import sqlite3

    from collectors.store.db import create_store_engine

    path = tmp_path / "store.db"
    load(f"sqlite:///{path}", [decision("d1", NOW - HOUR)]).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    engine = create_store_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    refresher = _refresher(engine)
    try:
        assert refresher.refresh()
        assert _registry(refresher).get_sample_value(names.UP) == 1.0
    finally:
        engine.dispose()


def test_before_the_first_success_nothing_is_stale(tmp_path: Path) -> None:
    from collectors.store.db import create_store_engine

    engine = create_store_engine(f"sqlite:///{tmp_path / 'missing.db'}")
    refresher = _refresher(engine)
    assert not refresher.refresh()
    registry = _registry(refresher)
    assert registry.get_sample_value(names.UP) == 0.0
    assert registry.get_sample_value(names.STALE) == 0.0
    assert registry.get_sample_value(names.LAST_SUCCESS) is None
    assert _kpi(registry, "decisions", _labels("24h")) is None
    assert not (tmp_path / "missing.db").exists()


# ---- exposition, server, command ------------------------------------------------------------------


def _need_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (Debian package prometheus)")
        pytest.skip("promtool is not installed (Debian package prometheus); CI installs it")
    return path


def test_promtool_check_metrics_accepts_the_exposition(synth_store: Engine) -> None:
    promtool = _need_promtool()
    refresher = _refresher(synth_store, TowerConfig(exporter={"label_cap": 3}))
    assert refresher.refresh()
    body = refresher.exposition.text
    assert names.OVERFLOW_VALUE.encode() in body and b"_bucket{" in body
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60,
                            check=False)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_no_registration_on_the_global_registry(sqlite_url: str) -> None:
    before = set(REGISTRY._collector_to_names)  # type: ignore[attr-defined]
    refresher = _refresher(load(sqlite_url, [decision("d1", NOW - HOUR)]))
    assert refresher.refresh()
    assert set(REGISTRY._collector_to_names) == before  # type: ignore[attr-defined]
    refresher.engine.dispose()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class _BlockingRefresher(MetricsRefresher):
    """A refresher whose next computation waits until released: a database that hangs."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.entered, self.release = threading.Event(), threading.Event()

    def _compute(self, now_us: int) -> Any:
        self.entered.set()
        self.release.wait(30)
        return super()._compute(now_us)


def test_server_serves_cached_bytes_and_never_waits_on_the_store(sqlite_url: str) -> None:
    engine = load(sqlite_url, [decision("d1", NOW - HOUR)])
    refresher = _BlockingRefresher(engine, TowerConfig(), interval_seconds=0.1, clock=lambda: NOW / 1e6)
    refresher.release.set()
    assert refresher.refresh()
    refresher.release.clear()
    server = MetricsServer(lambda: refresher.exposition, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        refresher.start()
        assert refresher.entered.wait(10)  # a refresh is now stuck on the "database"
        started = time.perf_counter()
        status, headers, body = _get(f"{base}/metrics")
        assert time.perf_counter() - started < 2
        assert status == 200 and body == refresher.exposition.text
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        status, headers, zipped = _get(f"{base}/metrics", {"Accept-Encoding": "gzip"})
        assert headers.get("Content-Encoding") == "gzip" and gzip.decompress(zipped) == body
        status, headers, page = _get(base + "/")
        assert status == 200 and b'href="/metrics"' in page and headers["Content-Type"].startswith("text/html")
        assert _get(base + "/nope")[0] == 404
    finally:
        refresher.release.set()
        refresher.stop()
        server.stop()
        engine.dispose()


def test_a_client_that_resets_its_connection_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    import socket
    import struct

    server = MetricsServer(lambda: Exposition(b"x 1\n", gzip.compress(b"x 1\n")), "127.0.0.1", 0)
    server.start()
    try:
        assert server.httpd.request_queue_size >= 64  # bursts of scrapes queue, not retried after 1 s
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", server.port))
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no end of headers yet
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST
        time.sleep(0.5)
        assert _get(f"http://127.0.0.1:{server.port}/metrics")[2] == b"x 1\n"
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_serve_metrics_once(sqlite_url: str, tmp_path: Path) -> None:
    load(sqlite_url, [decision("d1", NOW - HOUR)]).dispose()
    runner = CliRunner()
    result = runner.invoke(app, ["serve-metrics", "--db", sqlite_url, "--once"])
    assert result.exit_code == 0, result.output
    assert "hitl_tower_up 1.0" in result.output and "hitl_decisions_total{" in result.output
    missing = tmp_path / "missing.db"
    result = runner.invoke(app, ["serve-metrics", "--db", f"sqlite:///{missing}", "--once"])
    assert result.exit_code == 1 and "hitl_tower_up 0.0" in result.output
    assert not missing.exists()
    result = runner.invoke(app, ["serve-metrics", "--db", "nonsense://", "--once"])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_metrics_serves_then_stops_cleanly_on_a_signal(sqlite_url: str, sig: int) -> None:
    load(sqlite_url, [decision("d1", NOW - HOUR)]).dispose()
    proc = subprocess.Popen([sys.executable, "-c", "from collectors.cli import main; main()", "serve-metrics",
                             "--db", sqlite_url, "--port", "0", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        url = f"http://127.0.0.1:{match.group(1)}/metrics"
        deadline = time.monotonic() + 20
        while b"hitl_tower_up 1.0" not in _get(url)[2]:
            assert time.monotonic() < deadline, "the first refresh never succeeded"
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# ---- config ---------------------------------------------------------------------------------------


def test_exporter_config_defaults_and_errors(tmp_path: Path) -> None:
    exporter = TowerConfig().exporter
    assert (exporter.windows, exporter.interval_seconds, exporter.label_cap, exporter.port) == (
        ["1h", "24h", "7d"], 30.0, 50, 9464)
    path = tmp_path / "tower.yaml"
    for bad, key in (("windows: [1h, 5x]", "exporter.windows"), ("windows: [1h, 1h]", "exporter.windows"),
                     ("label_cap: 0", "exporter.label_cap"), ("interval_seconds: 0", "exporter.interval_seconds"),
                     ("prot: 1", "exporter.prot")):
        path.write_text(f"exporter:\n  {bad}\n")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(path)
