"""Exporter benchmark: scrape latency p50/p99 at 1k, 10k and 50k series, beside prometheus_client's own server.

    python bench/exporter.py
    python bench/exporter.py --series 1000 --series 50000 --requests 500

For each size a synthetic snapshot (every KPI per window and slice value,
plus counters and the latency histogram) is built with the exporter's own
types, so the exposition is what `hitl-tower serve-metrics` would print for
a store with that many label values. Then, with real HTTP requests on
loopback (a new connection per request, in a bounded loop):

- ours: `collectors.exporter.server.MetricsServer` sending the bytes rendered
  once per refresh (`snapshot.render`), plain and gzipped (Prometheus asks
  for gzip);
- peer: `prometheus_client.start_http_server` on a registry holding the same
  Collector, which runs `generate_latest` (and gzip) on every scrape.

It also prints the once-per-refresh render cost (generate_latest + gzip),
and ours (gzip) again while another thread renders without pause: the worst
case, a scrape landing during a refresh (they share the GIL). The process
uses the GIL switch interval `hitl-tower serve-metrics` sets
(`server.prefer_responsiveness`, 1 ms; `--switch-interval` to compare).
Figures are noisy (PERFORMANCE.md): read the ratios of one run. Not a test.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from collectors.exporter import names
from collectors.exporter.counters import Counters, Histogram
from collectors.exporter.snapshot import Health, SliceKpis, Snapshot, WindowKpis, render
from collectors.kpis.spec import KPI_IDS

WINDOWS = ("1h", "24h", "7d")


def build_snapshot(series: int, seed: int = 1) -> Snapshot:
    """A snapshot of about `series` samples: KPI gauges over windows x label values, and counters."""
    rng = np.random.default_rng(seed)
    per_row = len(WINDOWS) * len(KPI_IDS)
    rows = max(1, round(series * 0.9 / per_row))  # ~90% KPI gauges, the rest counters and histogram
    per_label = max(1, rows // len(names.SLICE_LABELS))

    def kpis() -> dict[str, float | int | None]:
        values = rng.random(len(KPI_IDS))
        return {k: (int(v * 1000) if k in ("decisions", "pending", "override_count") else float(v))
                for k, v in zip(KPI_IDS, values)}

    windows = tuple(WindowKpis(w, 0, 1, kpis(), tuple(SliceKpis(label, f"{label}-{i:05d}", kpis())
                                                      for label in names.SLICE_LABELS for i in range(per_label)))
                    for w in WINDOWS)
    used = len(WINDOWS) * len(KPI_IDS) * (1 + per_label * len(names.SLICE_LABELS))
    counter_series = max(0, series - used)
    bounds = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
    histograms = {f"rc-{i}": Histogram(bounds, tuple(range(1, len(bounds) + 1)), 20, 1234.5)
                  for i in range(max(1, counter_series // 10 // (len(bounds) + 3)))}
    decisions = {("low", "auto", f"m-{i}", f"a-{i % 7}"): int(i) for i in range(counter_series // 2)}
    reviews = {("primary", "approve", f"rc-{i}"): int(i) for i in range(counter_series // 4)}
    outcomes = {("true", f"m-{i}"): int(i) for i in range(counter_series // 8)}
    health = Health(True, False, time.time(), 0.5, 12.0)
    return Snapshot(health, windows, Counters(decisions, reviews, outcomes, histograms))


def count_series(text: bytes) -> int:
    """Sample lines of an exposition."""
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def scrape_times(port: int, requests: int, gzip: bool, budget_seconds: float) -> list[float]:
    """Seconds per GET /metrics (connect, request, read the whole body), a new connection each time."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    times: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    for i in range(requests + 3):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        elapsed = time.perf_counter() - started
        assert response.status == 200 and body, response.status
        if i >= 3:  # warm-up
            times.append(elapsed)
        if time.perf_counter() > deadline and len(times) >= 10:
            break
    return times


def percentiles(times: list[float]) -> str:
    p50, p99 = np.percentile(np.asarray(times) * 1000, [50, 99])
    return f"{p50:8.2f} {p99:8.2f}"


def while_rendering(snapshot: Snapshot, measure: Callable[[], list[float]]) -> list[float]:
    """Run `measure` while a thread keeps rendering the snapshot, as a refresh would."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            render(snapshot)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        return measure()
    finally:
        stop.set()
        thread.join()


def serve_ours(snapshot: Snapshot) -> tuple[int, Callable[[], None]]:
    from collectors.exporter.server import MetricsServer

    exposition = render(snapshot)
    server = MetricsServer(lambda: exposition, "127.0.0.1", 0)
    server.start()
    return server.port, server.stop


def serve_peer(snapshot: Snapshot) -> tuple[int, Callable[[], None]]:
    from prometheus_client import CollectorRegistry, start_http_server

    from collectors.exporter.collector import SnapshotCollector

    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return int(server.server_port), stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, action="append", help="series counts (default 1000 10000 50000)")
    parser.add_argument("--requests", type=int, default=300, help="scrapes per measurement (default 300)")
    parser.add_argument("--peer-requests", type=int, default=100, help="scrapes of the peer (default 100)")
    parser.add_argument("--budget", type=float, default=60.0, help="max seconds per measurement (default 60)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="GIL switch interval in seconds (default: serve-metrics' 0.001)")
    args = parser.parse_args(argv)
    from collectors.exporter.server import prefer_responsiveness

    prefer_responsiveness()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms")
    print("scrape latency in ms over loopback HTTP, new connection per scrape; "
          "render = generate_latest + gzip, once per refresh")
    print(f"{'series':>8} {'bytes':>10} {'render':>8} | {'ours p50':>8} {'p99':>8} | {'ours gz p50':>11} {'p99':>8} | "
          f"{'rendering gz p50':>16} {'p99':>8} | {'peer p50':>8} {'p99':>8} | {'peer gz p50':>11} {'p99':>8}")
    for target in args.series or [1000, 10000, 50000]:
        snapshot = build_snapshot(target)
        renders = []
        for _ in range(3):
            started = time.perf_counter()
            exposition = render(snapshot)
            renders.append(time.perf_counter() - started)
        series = count_series(exposition.text)
        cells = []
        for serve, requests in ((serve_ours, args.requests), (serve_peer, args.peer_requests)):
            port, stop = serve(snapshot)
            try:
                for gz in (False, True):
                    cells.append(percentiles(scrape_times(port, requests, gz, args.budget)))
                if serve is serve_ours:
                    cells.append(percentiles(while_rendering(
                        snapshot, lambda p=port, n=requests: scrape_times(p, n, True, args.budget))))
            finally:
                stop()
        print(f"{series:>8} {len(exposition.text):>10} {statistics.median(renders) * 1000:8.1f} | {cells[0]} | "
              f"   {cells[1]} |         {cells[2]} | {cells[3]} |    {cells[4]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
