"""`hitl-tower serve-metrics`: the Prometheus endpoint at /metrics (contract section 5)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, fail, load_config_or_exit, store_url

if TYPE_CHECKING:
    from collectors.exporter.snapshot import MetricsRefresher


@app.command("serve-metrics")
def serve_metrics(
    db: DbOption = None,
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=0, max=65535, help="TCP port (0: any free port, printed). Default: exporter.port "
        "of the config, 9464.", show_default=False)] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on. Default: exporter.host of the config, 127.0.0.1 (this machine "
        "only); 0.0.0.0 for every interface, e.g. in a container.", show_default=False)] = None,
    interval: Annotated[float | None, typer.Option(
        "--interval", min=0.1, help="Seconds between KPI refreshes. Default: exporter.interval_seconds "
        "of the config, 30.", show_default=False)] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Refresh once, print the exposition text on stdout and exit (1 if the store "
        "could not be read); e.g. for promtool check metrics.")] = False,
) -> None:
    """Serve the KPIs of each configured window (1h, 24h, 7d), cumulative counters and a review-latency
    histogram to Prometheus at /metrics.

    KPIs are recomputed in the background every --interval seconds and each scrape gets the last
    result, so a scrape never waits on the database. When the store cannot be read, the last good
    values are still served with hitl_tower_up 0 and hitl_tower_stale 1, and the next refresh retries.
    Stop with Ctrl-C or SIGTERM.
    """
    from collectors.exporter.snapshot import MetricsRefresher
    from collectors.store.db import StoreError, create_store_engine

    cfg = load_config_or_exit(config)
    try:
        engine = create_store_engine(store_url(db, cfg))
    except StoreError as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    refresher = MetricsRefresher(engine, cfg, interval_seconds=interval)
    if once:
        ok = refresher.refresh()
        engine.dispose()
        sys.stdout.buffer.write(refresher.exposition.text)
        sys.stdout.flush()
        raise typer.Exit(0 if ok else 1)
    _serve(refresher, host or cfg.exporter.host, cfg.exporter.port if port is None else port)


def _serve(refresher: MetricsRefresher, host: str, port: int) -> None:
    from collectors.exporter.server import MetricsServer, prefer_responsiveness

    prefer_responsiveness()
    try:
        server = MetricsServer(lambda: refresher.exposition, host, port)
    except OSError as exc:
        refresher.engine.dispose()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    store = refresher.engine.url.render_as_string(hide_password=True)
    shown = f"[{server.host}]" if ":" in server.host else server.host
    typer.echo(f"serving metrics on http://{shown}:{server.port}/metrics "
               f"(store {store}, windows {', '.join(w for w, _ in refresher.windows)}, "
               f"refresh every {refresher.interval_seconds:g} s)")
    try:
        server.start()
        refresher.start()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        refresher.stop()
        refresher.engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")
