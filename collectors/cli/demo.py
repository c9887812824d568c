"""`hitl-tower demo`: the one-command demo on an embedded SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, fail, load_config_or_exit, open_store_or_exit

DEMO_DB = Path("hitl-demo.db")
_DAY_US = 86_400 * 1_000_000


@app.command("demo")
def demo_command(
    db: Annotated[Optional[str], typer.Option(
        "--db", help="Use this existing store instead of generating one (SQLAlchemy URL).",
        show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Generate the demo traffic with this seed instead of loading the shipped "
        "sample (which is seed 7).", show_default=False)] = None,
    config: ConfigOption = None,
) -> None:
    """Build ./hitl-demo.db from realistic synthetic traffic and print its KPI report.

    The traffic (4 agents, 5 queues, 20+ reviewers, all risk classes and routes) carries
    planted incidents: a calibration drift, a backlog spike, a dissenting reviewer and a
    subgroup with more interventions. The store is rebuilt on every run unless --db is given.
    """
    cfg = load_config_or_exit(config)
    url = db or _fresh_demo_store()
    engine = open_store_or_exit(url, cfg, create=db is None)
    try:
        if db is None:
            _load_demo_events(engine, seed)
        _print_report(engine, cfg)
    finally:
        engine.dispose()
    typer.echo(f"\nExplore it: hitl-tower report --db {url} --start ... --end ... --by queue --format json"
               f"\n            hitl-tower verify --db {url}")


def _fresh_demo_store() -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
    typer.echo(f"demo store: {DEMO_DB.resolve()}")
    return f"sqlite:///{DEMO_DB}"


def _load_demo_events(engine, seed: int | None) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    from collectors import synth
    from collectors.ingest import ingest

    with tempfile.TemporaryDirectory() as folder:
        if seed is None:
            path = str(synth.SAMPLE_PATH)
            typer.echo(f"loading the shipped sample {synth.SAMPLE_PATH.name} ...")
        else:
            path = str(Path(folder) / "demo.jsonl")
            synth.write_jsonl(path, synth.generate(seed=seed, days=3, decisions_per_day=300))
            typer.echo(f"loading synthetic traffic, seed {seed} ...")
        summary = ingest(engine, [path])
    if summary.errors or summary.rejected:
        fail(f"the demo data did not load cleanly: {summary.rejected} rejected, {summary.errors}")
    typer.echo(f"{summary.stored} events stored ({summary.duplicates} duplicate)")


def _print_report(engine, cfg) -> None:  # type: ignore[no-untyped-def]
    from collectors.cli.report import render_table
    from collectors.engine.report import compute_report, report_to_dict
    from collectors.store.db import decision_time_range
    from collectors.validate import format_timestamp

    span = decision_time_range(engine)
    if span is None:
        fail("the store holds no decisions yet: load some with hitl-tower ingest")
    end = (span[1] // _DAY_US + 1) * _DAY_US  # the last day with data, midnight to midnight UTC
    start = end - _DAY_US
    report = compute_report(engine, cfg, start, end, by=["risk_class"], now_us=end)
    typer.echo(f"\nKPIs of {format_timestamp(start)} to {format_timestamp(end)} by risk class "
               f"(reference: the day before; pending ages as of the window's end)\n")
    typer.echo(render_table(report_to_dict(report), shutil.get_terminal_size((120, 24)).columns))
