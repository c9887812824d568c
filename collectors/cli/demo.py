"""`hitl-tower demo`: the one-command demo on an embedded SQLite store."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from collectors.cli._app import app
from collectors.cli.options import DEMO_DB, ConfigOption, fail, load_config_or_exit, open_store_or_exit

if TYPE_CHECKING:
    from collectors.live_traffic import LiveTraffic

_HOUR_US = 3_600 * 1_000_000
_DAY_US = 24 * _HOUR_US


@app.command("demo")
def demo_command(
    db: Annotated[str | None, typer.Option(
        "--db", metavar="URL", help="Use this existing store instead of generating one (SQLAlchemy URL).",
        show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the synthetic traffic (default 7; with --no-serve and no --seed, the "
        "shipped sample, which is seed 7, is loaded instead). Not with --db.", show_default=False)] = None,
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Only build the store and print the KPI report: no servers, no live stream. "
        "Its traffic starts on 2026-11-02, as the shipped sample's does, so the same options always "
        "build the same store (the live demo's traffic ends now).")]
    = False,
    days: Annotated[float | None, typer.Option(
        "--days", min=0.01, help="Days of traffic to generate. Default: 30; with --no-serve, 3.",
        show_default=False)] = None,
    per_day: Annotated[int | None, typer.Option(
        "--per-day", min=1, help="Decisions per day to generate. Default: 2000; with --no-serve, 300.",
        show_default=False)] = None,
    metrics_port: Annotated[int, typer.Option("--metrics-port", min=1, max=65535,
                                              help="Port of the Prometheus metrics.")] = 9464,
    dashboard_port: Annotated[int, typer.Option("--dashboard-port", min=1, max=65535,
                                                help="Port of the dashboard.")] = 8501,
    stream_interval: Annotated[float, typer.Option(
        "--stream-interval", min=0.5, help="Seconds between looks for live events that are due (they "
        "come at the generated history's rate, with reviews and outcomes after their decisions).")] = 5.0,
    host: Annotated[str, typer.Option(
        "--host", help="Address both servers listen on (0.0.0.0 in a container).")] = "127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """Build ./hitl-demo.db from realistic synthetic traffic, then serve the metrics and the dashboard.

    By default: 30 days of traffic ending now (4 agents, 5 queues, 20+ reviewers, all risk
    classes and routes) with planted incidents (a calibration drift on kyc-v2.4, a backlog spike
    in payments-l1, a dissenting reviewer, a subgroup with more interventions), then
    `hitl-tower serve-metrics` on :9464 and the Streamlit dashboard on :8501, while new events
    keep arriving every few seconds. Ctrl-C stops everything. The store is rebuilt on every run
    unless --db is given. With --no-serve: build the store and print the KPI report only.
    """
    cfg = load_config_or_exit(config)
    if db is not None and not db.strip():
        fail("--db is empty: give the URL of an existing store, or leave --db out for a fresh demo store")
    if db is not None and (days is not None or per_day is not None):
        fail("--days and --per-day size the generated store; with --db the demo uses that store as it is")
    if db is not None and seed is not None:
        fail("--seed chooses the generated traffic; with --db the demo uses that store as it is and streams "
             "no new events")
    if not no_serve:
        # Before minutes of generating: a taken port would otherwise show up only at the end.
        if metrics_port == dashboard_port:
            fail(f"--metrics-port and --dashboard-port are both {metrics_port}: the two servers need "
                 "different ports")
        _check_ports_free(host, {"--metrics-port": metrics_port, "--dashboard-port": dashboard_port})
    url = db or _fresh_demo_store()
    engine = open_store_or_exit(url, cfg, create=db is None)
    seed = 7 if seed is None and not no_serve else seed
    traffic = None
    try:
        if db is None:
            if no_serve:
                _load_demo_events(engine, seed, days, per_day)
            else:
                traffic = _generate_live_store(engine, seed or 0, 30 if days is None else days,
                                               2000 if per_day is None else per_day)
        if no_serve:
            window = _print_report(engine, cfg)
        else:
            from collectors.demo_run import ChildExited, LiveSettings, run_live

            settings = LiveSettings(seed=seed or 0, metrics_port=metrics_port, dashboard_port=dashboard_port,
                                    host=host, stream_interval_seconds=stream_interval, stream=db is None)
            try:
                run_live(engine, cfg, _absolute(url), settings, typer.echo, str(config) if config else None,
                         traffic=traffic)
            except ChildExited as exc:
                raise typer.Exit(exc.code) from None
    finally:
        engine.dispose()
    if no_serve:
        typer.echo(f"\nExplore it: hitl-tower report --db {url} --start {window[0]} --end {window[1]} --by queue "
                   "--format json --extras"
                   f"\n            hitl-tower verify --db {url}")


def _absolute(url: str) -> str:
    """A relative SQLite path made absolute, so child processes find the same file."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    return url


def _check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Exit 2 naming the option when a port cannot be listened on."""
    import errno
    import socket

    for option, port in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}): stop what holds it, or "
                         f"pick another port with {option}")
                # No port problem: the address itself (an unknown name, or one of another machine).
                fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host, an address of "
                     "this machine such as 127.0.0.1 or 0.0.0.0")


def _generate_live_store(engine, seed: int, days: float, per_day: int) -> LiveTraffic:  # type: ignore[no-untyped-def]
    """Generate and store the history; the live traffic that continues it (with the history's
    reviews and outcomes that fall after now)."""
    import sys
    from datetime import UTC, datetime

    from collectors.demo_run import generate_and_ingest
    from collectors.live_traffic import LiveTraffic

    typer.echo(f"generating {days:g} days of synthetic traffic ending now (seed {seed}, {per_day} decisions/day) ...")
    progress = None
    if sys.stderr.isatty():
        from collectors.cli.ingest import _TerminalProgress

        progress = _TerminalProgress()
    end = datetime.now(UTC)
    later: list[dict[str, object]] = []
    try:
        summary = generate_and_ingest(engine, seed=seed, days=days, decisions_per_day=per_day, end=end,
                                      progress=progress, later=later)
    finally:
        if progress is not None:
            progress.stop()
    if summary.errors or summary.rejected:
        fail(f"the demo data did not load cleanly: {summary.rejected} rejected, {summary.errors}")
    typer.echo(f"{summary.stored} events stored ({summary.duplicates} duplicate)")
    return LiveTraffic(seed=seed, per_day=per_day, start=end, held=later)


def _fresh_demo_store() -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
    typer.echo(f"demo store: {DEMO_DB.resolve()}")
    return f"sqlite:///{DEMO_DB}"


def _load_demo_events(engine, seed: int | None, days: float | None,  # type: ignore[no-untyped-def]
                      per_day: int | None) -> None:
    """The shipped sample (seed 7, 3 days of 300 decisions), or traffic generated as asked."""
    import tempfile

    from collectors import synth
    from collectors.ingest import ingest

    with tempfile.TemporaryDirectory() as folder:
        if seed is None and days is None and per_day is None:
            path = str(synth.SAMPLE_PATH)
            typer.echo(f"loading the shipped sample {synth.SAMPLE_PATH.name} ...")
        else:
            seed = 7 if seed is None else seed
            path = str(Path(folder) / "demo.jsonl")
            sample = synth.SAMPLE_PARAMS
            synth.write_jsonl(path, synth.generate(
                seed=seed, days=sample["days"] if days is None else days,
                decisions_per_day=sample["decisions_per_day"] if per_day is None else per_day))
            typer.echo(f"loading synthetic traffic, seed {seed} ...")
        summary = ingest(engine, [path])
    if summary.errors or summary.rejected:
        fail(f"the demo data did not load cleanly: {summary.rejected} rejected, {summary.errors}")
    typer.echo(f"{summary.stored} events stored ({summary.duplicates} duplicate)")


def _print_report(engine, cfg) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Print the KPIs of the 24 hours up to the whole hour after the newest decision; that window as
    RFC 3339 (start, end). Not the calendar day: a store that ends minutes after midnight would show minutes."""
    from collectors.cli.report import render_table
    from collectors.engine.report import compute_report, report_to_dict
    from collectors.store.db import decision_time_range
    from collectors.validate import format_timestamp

    span = decision_time_range(engine)
    if span is None:
        fail("the store holds no decisions yet: load some with hitl-tower ingest")
    end = (span[1] // _HOUR_US + 1) * _HOUR_US
    start = end - _DAY_US
    report = compute_report(engine, cfg, start, end, by=["risk_class"], now_us=end)
    typer.echo(f"\nKPIs of {format_timestamp(start)} to {format_timestamp(end)} by risk class "
               f"(reference: the day before; pending ages as of the window's end)\n")
    typer.echo(render_table(report_to_dict(report), shutil.get_terminal_size((120, 24)).columns, cfg.currency))
    now_us = time.time_ns() // 1000
    if span[1] > now_us:
        typer.echo(f"\nnote: the newest decision, {format_timestamp(span[1])}, is after this machine's clock "
                   f"({format_timestamp(now_us // 1_000_000 * 1_000_000)}); the dashboard and a report without --now count pending ages "
                   "from now, so they read negative")
    return format_timestamp(start), format_timestamp(end)
