"""The exporter's snapshot, refreshed in the background so that a scrape never waits on the database.

Every `interval_seconds` a `MetricsRefresher` computes, for each configured
window ending now, the total and one report per slice label
(`compute_report(by=[label])`, through `collectors.engine.live.LiveReport`,
which keeps latencies between refreshes), reads the increments of the
cumulative counters (`counters_query`), and renders the exposition text once
(`generate_latest` on a private registry, plus a gzipped copy). Scrapes are
served those bytes (`server.py`).

Label values: a slice whose value is null (a decision without a queue) is
exported as `names.NULL_VALUE`, because an empty label value means "all values";
real values go through `names.label_value`, so none can be taken for a sentinel.
Each window keeps, per label, the `label_cap` values with the most decisions
in that window; the others are folded into one `names.OVERFLOW_VALUE` row
whose KPIs and sample sizes (`names.SAMPLE_METRICS`: agreement units, primary
reviews) are computed exactly over the union of the folded values (their
statistics merged; psi and ece_drift against the same union in the
reference window, i.e. every value but the kept ones).

Fairness (`collectors.advice.fairness.judge`, over one query per window,
`segments_query.read_segment_frame`): every fairness rate of the whole window
(segment labels empty) and of each value of the configured
`fairness.segment_keys`, the `fairness.max_values` values with the most
decisions kept per key and the rest summed into one `names.OVERFLOW_VALUE`
group whose rates are recomputed over the summed counts; with its sample and
its gap flag.

Drift (`collectors.drift.check_drift` over the alert window `alerts.window`,
with one ADWIN monitor kept between refreshes) is exported per
(model_version, action_type): psi behind its `alerts.psi_min_decisions` gate,
ece_drift with the outcomes behind it, and the flags of the two sequential
detectors (ADWIN on calibration error, ADWIN on confidence).
Only the `label_cap` model versions and action types with the most decisions
get drift series; a folded slice has none (a drift figure of a mixture of
slices would alarm on nobody in particular).

On a failure (database down, schema dropped, SQLite file gone) the last good
KPI values and counters are served with `hitl_tower_up` 0 and
`hitl_tower_stale` 1; one line is logged when refreshes start failing (again
when the reason changes), one when they recover; the next interval retries.
A refresh that neither ends nor fails (a store that hangs: a lock held, a
network that drops packets) is flagged the same way once it has run for
`exporter.refresh_timeout_seconds`, until it ends.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from collectors.config import duration_seconds
from collectors.exporter.counters import Counters, CounterTotals
from collectors.exporter.names import OVERFLOW_VALUE, SLICE_LABELS, label_value

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig
    from collectors.drift import DriftReport, SequentialMonitor
    from collectors.engine.live import LiveReport
    from collectors.engine.report import Report, Value
    from collectors.exporter.counters_query import CounterDelta

log = logging.getLogger("collectors.exporter")

#: Latency histogram bounds in seconds; the SLAs of the config are added to them.
LATENCY_BUCKETS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
US = 1_000_000


@dataclass(frozen=True)
class SliceKpis:
    """The KPIs of one value of one slice label."""

    label: str
    value: str
    kpis: dict[str, Value]
    samples: Mapping[str, int] = field(default_factory=dict)  # the report's sample sizes behind them


@dataclass(frozen=True)
class SegmentRate:
    """A fairness rate of one segment value (key and value empty: the whole window)."""

    key: str  # bare segment key, e.g. "region"
    value: str  # NULL_VALUE for decisions without the key, names.OVERFLOW_VALUE for the folded values
    rate: str  # an id of collectors.advice.fairness.RATES
    ratio: float | None  # None when the rate's denominator is empty
    samples: int  # the rate's denominator
    flagged: bool | None  # the gap flag; None for the whole window


@dataclass(frozen=True)
class WindowKpis:
    """The KPIs of one window [start, end): the whole window and its (capped) slices."""

    window: str
    start_us: int
    end_us: int
    total: dict[str, Value]
    slices: tuple[SliceKpis, ...]
    segments: tuple[SegmentRate, ...] = ()
    total_samples: Mapping[str, int] = field(default_factory=dict)  # the sample sizes behind `total`


@dataclass(frozen=True)
class DriftSeries:
    """Drift of one (model_version, action_type) slice; None where a figure is unknown or gated."""

    model_version: str
    action_type: str
    psi: float | None  # null below alerts.psi_min_decisions decisions in either window
    ece_drift: float | None
    outcomes: int  # outcomes behind ece_drift: the smaller of the two windows
    detected: bool | None  # the ADWIN flag; None when the slice has no detector yet
    shift_detected: bool | None = None  # the confidence-shift flag; None when the slice has no detector yet


@dataclass(frozen=True)
class Health:
    """Self-health of the exporter at the last refresh attempt."""

    up: bool  # the last refresh succeeded
    stale: bool  # the KPI values served are from an earlier refresh, because the last one failed
    last_success_seconds: float | None  # Unix time of the last successful refresh
    collect_seconds: float | None  # how long the last refresh attempt took
    newest_event_age_seconds: float | None  # attempt time minus the newest event time known


@dataclass(frozen=True)
class Snapshot:
    """What one scrape shows: health, the KPIs of each window and the cumulative counters."""

    health: Health
    windows: tuple[WindowKpis, ...] = ()
    counters: Counters | None = None
    drift: tuple[DriftSeries, ...] = ()


@dataclass(frozen=True)
class Exposition:
    """A rendered snapshot: the text format and its gzip encoding."""

    text: bytes
    gzipped: bytes


def render(snapshot: Snapshot) -> Exposition:
    """The Prometheus text exposition of a snapshot (rendered on a private registry)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from collectors.exporter.collector import SnapshotCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    text = generate_latest(registry)
    return Exposition(text, gzip.compress(text, compresslevel=1))


def _interrupt(connection: Any) -> None:
    """Make a blocked call on a DBAPI connection fail, from another thread."""
    import socket

    pgconn = getattr(connection, "pgconn", None)
    if pgconn is not None:  # psycopg: shut the socket down; the blocked read gets end-of-file
        try:
            with socket.socket(fileno=os.dup(pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError) as exc:  # already closed
            log.info("could not shut down a connection's socket: %s", exc)
        return
    interrupt = getattr(connection, "interrupt", None)  # sqlite3: abort the running statement
    if interrupt is not None:
        interrupt()


class MetricsRefresher:
    """Keeps the last snapshot and its exposition; `refresh()` once, or `start()` a background thread."""

    def __init__(self, engine: Engine, config: TowerConfig, *, interval_seconds: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        exporter = config.exporter
        self.engine = engine
        self.config = config
        self.windows = tuple((w, duration_seconds(w) * US) for w in exporter.windows)
        self.label_cap = exporter.label_cap
        self.interval_seconds = interval_seconds or exporter.interval_seconds
        self.refresh_timeout_seconds = exporter.refresh_timeout_seconds
        self.refresh_abort_seconds = exporter.refresh_abort_seconds
        # The DBAPI connections a refresh holds, so that an abort can close them from another thread.
        self._checked_out: dict[int, Any] = {}
        event.listen(engine, "checkout", lambda dbapi, _record, _proxy: self._checked_out.__setitem__(id(dbapi), dbapi))
        event.listen(engine, "checkin", lambda dbapi, _record: self._checked_out.pop(id(dbapi), None))
        self._clock = clock
        self._reference = _fixed_reference(config)
        self._totals = CounterTotals(exporter.label_cap,
                                     (*LATENCY_BUCKETS, *config.sla.risk_classes.values(), config.sla.default_seconds))
        self._live: dict[str, LiveReport] = {}
        self._monitor: SequentialMonitor | None = None
        self._drift_unavailable = False
        self._good: Snapshot | None = None
        self._failing: str | None = None
        self._lock = threading.Lock()
        # Guards publishing against the overdue watchdog; the token of the refresh in flight, or None.
        self._publish_lock = threading.Lock()
        self._in_flight: object | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.snapshot = Snapshot(Health(False, False, None, None, None))
        self.exposition = render(self.snapshot)

    # ---- one refresh ------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Recompute the snapshot and its exposition; False (last values kept, stale) on failure."""
        with self._lock:
            now = float(self._clock())
            started = time.perf_counter()
            watchdogs = self._watch(now, started)
            try:
                windows, drift, delta = self._compute(int(now * US))
            except Exception as exc:  # noqa: BLE001 - any failure: keep serving the last good values
                self._failed(exc, now, time.perf_counter() - started)
                return False
            finally:
                for watchdog in watchdogs:
                    watchdog.cancel()
            self._totals.apply(delta)
            elapsed = time.perf_counter() - started
            health = Health(True, False, now, elapsed, self._age(now))
            self._good = Snapshot(health, windows, self._totals.counters(), drift)
            self._publish(self._good)
            if self._failing is not None:
                log.warning("metrics refresh recovered: serving fresh values again")
                self._failing = None
            return True

    def _compute(self, now_us: int) -> tuple[tuple[WindowKpis, ...], tuple[DriftSeries, ...], CounterDelta]:
        from collectors.drift import SequentialMonitor, check_drift
        from collectors.exporter.counters_query import check_reachable, read_counter_delta

        check_reachable(self.engine)
        windows = tuple(self._window(name, length, now_us) for name, length in self.windows)
        if self._monitor is None:
            self._monitor = SequentialMonitor.from_config(self.config.alerts)
        try:
            drift = self._drift(check_drift(self.engine, self.config, now_us, self._monitor))
        except ImportError as exc:  # river missing: the KPIs are still worth serving
            if not self._drift_unavailable:
                log.warning("drift metrics unavailable: %s", exc)
                self._drift_unavailable = True
            drift = ()
        delta = read_counter_delta(self.engine, self._totals.since, self._totals.since_hash,
                                   self._totals.bounds_us)
        return windows, drift, delta

    def _drift(self, report: DriftReport) -> tuple[DriftSeries, ...]:
        """The drift series of the `label_cap` model versions and action types with the most decisions."""
        kept = []
        for at in ("model_version", "action_type"):
            decisions: dict[str, int] = {}
            for s in report.slices:
                decisions[getattr(s, at)] = decisions.get(getattr(s, at), 0) + s.decisions
            kept.append(set(sorted(decisions, key=lambda v: (-decisions[v], v))[:self.label_cap]))
        return tuple(DriftSeries(label_value(s.model_version), label_value(s.action_type), s.gated_psi,
                                 s.ece_drift, s.gate_outcomes,
                                 None if s.sequential is None else s.detected,
                                 None if s.shift is None else s.shift_detected)
                     for s in report.slices if s.model_version in kept[0] and s.action_type in kept[1])

    def _window(self, name: str, length_us: int, now_us: int) -> WindowKpis:
        from collectors.engine.live import LiveReport

        live = self._live.setdefault(name, LiveReport(self.engine, self.config))
        start_us = now_us - length_us
        total: dict[str, Value] | None = None
        total_samples: dict[str, int] = {}
        slices: list[SliceKpis] = []
        for label in SLICE_LABELS:
            report = live.report(start_us, now_us, [label], self._reference, now_us)
            if total is None:
                total, total_samples = dict(report.total.kpis), dict(report.total.samples)
            slices.extend(self._capped(report, label))
        return WindowKpis(name, start_us, now_us, total or {}, tuple(slices), self._segments(start_us, now_us),
                          total_samples)

    def _segments(self, start_us: int, end_us: int) -> tuple[SegmentRate, ...]:
        """The fairness rates of the window, overall and per (capped) value of each configured key."""
        from collectors.advice.fairness import judge, segment_key_columns
        from collectors.advice.frame import SEGMENT_PREFIX
        from collectors.exporter.segments_query import read_segment_frame

        settings = self.config.fairness
        columns = segment_key_columns(settings.segment_keys)
        if not columns:
            return ()
        bare = [c.removeprefix(SEGMENT_PREFIX) for c in columns]
        result = judge(read_segment_frame(self.engine, start_us, end_us, bare), columns, settings)
        overall = [SegmentRate("", "", rate, s["value"], s["n"], None) for rate, s in result["overall"].items()]
        return (*overall, *(SegmentRate(s["key"].removeprefix(SEGMENT_PREFIX),
                                         _segment_label(s), s["rate"],
                                         s["value"], s["n"], s["flagged"]) for s in result["segments"]))

    def _capped(self, report: Report, label: str) -> list[SliceKpis]:
        from collectors.engine.report import row_order

        ranked = sorted(report.rows, key=lambda r: (-(r.kpis["decisions"] or 0), row_order(r.key)))
        kept, folded = ranked[:self.label_cap], ranked[self.label_cap:]
        out = [SliceKpis(label, label_value(r.key[0]), dict(r.kpis), dict(r.samples))
               for r in sorted(kept, key=lambda r: row_order(r.key))]
        if folded:
            out.append(self._folded(report, label, {r.key for r in kept}))
        return out

    def _folded(self, report: Report, label: str, kept: set[tuple[str | None, ...]]) -> SliceKpis:
        """Exact KPIs and sample sizes of every value of `label` but the kept ones, in the window and its
        reference (the samples of the union: e.g. its agreement units, as many as the folded values')."""
        from collectors.engine.aggregates import merge_all
        from collectors.engine.report import compute_report, slice_kpis, slice_samples

        current = merge_all([r.stats for r in report.rows if r.key not in kept])
        ref = compute_report(self.engine, self.config, report.reference_start_us, report.reference_end_us,
                             [label], now_us=report.now_us)
        reference = merge_all([r.stats for r in ref.rows if r.key not in kept])
        return SliceKpis(label, OVERFLOW_VALUE,
                         slice_kpis(current, reference, report.now_us, self.config.hourly_rate.for_queue),
                         slice_samples(current, reference))

    def _age(self, now: float) -> float | None:
        newest = self._totals.newest_us
        return None if newest is None else now - newest / US

    def _failed(self, exc: Exception, now: float, elapsed: float) -> None:
        self._live = {}  # a half-read LiveReport or monitor cannot be trusted: start afresh
        self._monitor = None
        self.engine.dispose()  # reconnect next time (the server may have restarted)
        self._publish(self._stale(now, elapsed))
        self._warn_once("failed", _reason(exc))

    def _stale(self, now: float, elapsed: float) -> Snapshot:
        """The last good values (if any), flagged: up 0, stale 1."""
        good = self._good
        health = Health(False, good is not None, good.health.last_success_seconds if good else None,
                        elapsed, self._age(now))
        return Snapshot(health, good.windows, good.counters, good.drift) if good else Snapshot(health)

    def _warn_once(self, what: str, reason: str) -> None:
        """Log a refresh problem when it starts, and again only when its reason changes."""
        if reason != self._failing:
            serving = "serving the last good values as stale" if self._good else "no values to serve yet"
            log.warning("metrics refresh %s, %s: %s", what, serving, reason)
            self._failing = reason

    def _watch(self, now: float, started: float) -> list[threading.Timer]:
        """Timers that flag this refresh as overdue if it is still running after the timeout, and
        abort it after `refresh_abort_seconds`."""
        token = object()
        with self._publish_lock:
            self._in_flight = token
        timers = [threading.Timer(self.refresh_timeout_seconds, self._overdue, (token, now, started)),
                  threading.Timer(self.refresh_abort_seconds, self._abort, (token,))]
        for timer in timers:
            timer.daemon = True
            timer.start()
        return timers

    def _abort(self, token: object) -> None:
        """Make the hung refresh of `token` fail, so the next one reconnects: close its connections'
        sockets (PostgreSQL: a read on a dead path may never return) or interrupt them (SQLite)."""
        with self._publish_lock:
            if self._in_flight is not token:
                return
        log.warning("metrics refresh aborted after %g s (exporter.refresh_abort_seconds): closing its database "
                    "connections; the next refresh reconnects", self.refresh_abort_seconds)
        for connection in list(self._checked_out.values()):
            _interrupt(connection)

    def _overdue(self, token: object, now: float, started: float) -> None:
        """Serve the last good values as stale while the refresh of `token` hangs (it may never fail)."""
        snapshot = self._stale(now, time.perf_counter() - started)
        with self._publish_lock:
            if self._in_flight is not token:
                return  # it ended meanwhile, and published
            # Logged before the flag shows, so whoever sees stale 1 finds its reason in the log already.
            self._warn_once("overdue", f"still running after {self.refresh_timeout_seconds:g} s (store hung or too slow)")
            self._show(snapshot)

    def _publish(self, snapshot: Snapshot) -> None:
        """Show the outcome of the refresh in flight (which is then no longer overdue)."""
        with self._publish_lock:
            self._in_flight = None
            self._show(snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        exposition = render(snapshot)
        self.snapshot, self.exposition = snapshot, exposition  # scrapes read either old or new, whole

    # ---- background thread ------------------------------------------------------------------

    def start(self) -> None:
        """Refresh now and then every interval, in a daemon thread, until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hitl-metrics-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for the refresh in progress, at most `timeout` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # pragma: no cover - refresh() catches; never let the thread die
                log.exception("metrics refresh crashed")
            self._stop.wait(max(0.0, self.interval_seconds - (time.monotonic() - started)))


def _fixed_reference(config: TowerConfig) -> tuple[int, int] | None:
    """The configured fixed reference window, if any (else each window's preceding window)."""
    if config.reference_window is None:
        return None
    from collectors.validate import parse_timestamp

    return parse_timestamp(config.reference_window.start), parse_timestamp(config.reference_window.end)


def _reason(exc: Exception) -> str:
    """The first line of an error (the driver's message for a database error)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return f"{type(orig).__name__}: {text.splitlines()[0]}" if text else type(orig).__name__


def _segment_label(segment: Mapping[str, Any]) -> str:
    """The segment_value label of one fairness row: the folded values, null, or the value itself."""
    return OVERFLOW_VALUE if segment["folded"] else label_value(segment["group"])
