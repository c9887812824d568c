"""`hitl-tower alerts`: evaluate the alert rules once or on a loop, notify, and record history."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from collectors.cli._app import app
from collectors.cli.options import (
    ConfigOption,
    DbOption,
    OutputFormat,
    fail,
    load_config_or_exit,
    open_store_or_exit,
    optional_instant,
)
from collectors.wording import plural

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.alerts import Evaluation, Rule, Target
    from collectors.config import TowerConfig
    from collectors.drift import SequentialMonitor

_RESEND_FACTOR = 4  # firing alerts reach Alertmanager with endsAt = now + 4 x interval, like Prometheus


@app.command("alerts")
def alerts_command(
    once: Annotated[bool, typer.Option("--once", help="Evaluate once and exit (the default).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Evaluate every --interval seconds until stopped.")]
    = False,
    interval: Annotated[float, typer.Option(
        "--interval", metavar="S", min=1.0,
        help="Seconds between evaluations with --watch; with --once, how often your scheduler runs it. "
        "Firing alerts are sent to Alertmanager with endsAt = now + 4 x S.")] = 60.0,
    alertmanager: Annotated[str | None, typer.Option(
        "--alertmanager", metavar="URL",
        help="Alertmanager base URL, e.g. http://127.0.0.1:9093 (alerts go to /api/v2/alerts).",
        show_default=False)] = None,
    webhook: Annotated[str | None, typer.Option(
        "--webhook", metavar="URL",
        help="Any webhook: gets Alertmanager's webhook JSON, once per change of state.", show_default=False)]
    = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Evaluate and print what would be sent; record and send nothing.")] = False,
    now: Annotated[str | None, typer.Option(
        "--now", metavar="T", help="Evaluate as of this instant (RFC 3339; only with --once). "
        "Default: the current time.", show_default=False)] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = OutputFormat.table,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Evaluate the alert rules (calibration drift, PSI, ADWIN, agreement, SLA breaches, backlog age,
    intervention spikes) with hysteresis and minimum samples; record firing and resolved alerts in
    the store; post them to Alertmanager or a webhook.

    Exit 0 after a clean evaluation (firing alerts included), 1 when a delivery failed (it is
    retried at the next evaluation), 2 on usage, config or store errors.
    """
    from collectors.alerts import Target
    from collectors.drift import SequentialMonitor

    if once and watch:
        fail("--once and --watch exclude each other")
    if alertmanager and webhook:
        fail("give --alertmanager or --webhook, not both")
    if now is not None and watch:
        fail("--now only goes with --once")
    target = (Target("alertmanager", _http_url("--alertmanager", alertmanager)) if alertmanager else
              Target("webhook", _http_url("--webhook", webhook)) if webhook else None)
    now_us = optional_instant("--now", now)
    cfg = load_config_or_exit(config)
    # An existing store only: a mistyped --db would otherwise become a new, empty store that
    # reports "firing 0" for ever.
    engine = open_store_or_exit(db, cfg, create=False)
    if now_us is not None and not dry_run:
        _check_now_moves_forward(engine, now, now_us)
    monitor = SequentialMonitor.from_config(cfg.alerts)
    try:
        if not watch:
            raise typer.Exit(_run(engine, cfg, monitor, target, now_us, interval, dry_run, output))
        while True:
            started = time.monotonic()
            _run(engine, cfg, monitor, target, None, interval, dry_run, output)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        engine.dispose()


def _check_now_moves_forward(engine: Engine, now: str | None, now_us: int) -> None:
    """Exit 2 when --now is before the newest recorded evaluation: alerts move forward in time, and an
    earlier instant would resolve live alerts with an end before their start (and send that)."""
    from collectors.alerts.history import latest_evaluation
    from collectors.validate import format_timestamp

    with engine.connect() as conn:
        latest = latest_evaluation(conn)
    if latest is not None and now_us < latest:
        engine.dispose()
        fail(f"--now {now} is before the last recorded evaluation, {format_timestamp(latest)}: alerts only "
             "move forward in time; add --dry-run to evaluate an earlier instant without recording it")


def _http_url(flag: str, url: str) -> str:
    """The URL, or exit 2 unless it is http(s) with a host: found at start, not at the first alert."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        fail(f"{flag} {url!r} is not a URL: {exc}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{flag} must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:9093; got {url!r}")
    return url


def _run(engine: Engine, cfg: TowerConfig, monitor: SequentialMonitor, target: Target | None,
         now_us: int | None, interval: float, dry_run: bool, output: str) -> int:
    """One evaluation and delivery; returns the exit code it deserves."""
    from sqlalchemy.exc import SQLAlchemyError

    from collectors.alerts import DeliveryError, deliver, evaluate

    wall_us = time.time_ns() // 1000
    resend_us = int(_RESEND_FACTOR * interval * 1_000_000)
    try:
        at = now_us if now_us is not None else wall_us
        evaluation = evaluate(engine, cfg, at, monitor, dry_run=dry_run)
    except SQLAlchemyError as exc:
        from collectors.store.db import error_line

        typer.echo(f"error: reading the store failed: {error_line(exc)}", err=True)
        return 2
    preview = _preview(engine, evaluation, target, wall_us, resend_us) if dry_run else None
    _print(evaluation, output, preview)
    if dry_run or target is None:
        return 0
    try:
        sent = deliver(engine, target, wall_us, resend_us)
    except DeliveryError as exc:
        typer.echo(f"error: delivery failed, will retry: {exc}", err=True)
        return 1
    if output == "table" and sent:
        typer.echo(f"sent {plural(sent, 'alert')} to {target.endpoint}")
    return 0


def _preview(engine: Engine, evaluation: Evaluation, target: Target | None, wall_us: int, resend_us: int) -> Any:
    """What a real run would post now: this evaluation's changes, plus what an earlier failed
    delivery left due (the store as it was, since a dry run records nothing)."""
    from collectors.alerts import Target
    from collectors.alerts.notify import payload, pending_delivery

    target = target or Target("alertmanager", "")
    if target.kind == "alertmanager":
        episodes = [s.episode for s in evaluation.statuses
                    if s.episode is not None and (s.state == "firing" or s.transition == "resolved")]
    else:
        episodes = [s.episode for s in evaluation.statuses
                    if s.episode is not None and s.transition in ("fired", "resolved")]
    changed = {e.id for e in episodes}
    due = [e for e in pending_delivery(engine, target) if e.id not in changed]
    return payload(target, due + episodes, wall_us, resend_us)


def _print(evaluation: Evaluation, output: str, preview: Any) -> None:
    from collectors.validate import format_timestamp

    rows = [{"state": s.state, "transition": s.transition, **s.labels, "value": s.value,
             "threshold": s.rule.threshold,
             "summary": s.episode.annotations.get("summary") if s.episode else None}
            for s in evaluation.statuses]
    if output == "json":
        data: dict[str, Any] = {"now": format_timestamp(evaluation.now_us), "alerts": rows}
        if preview is not None:
            data["would_send"] = preview
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    firing = len(evaluation.in_state("firing"))
    pending = len(evaluation.in_state("pending"))
    typer.echo(f"{format_timestamp(evaluation.now_us)}  firing {firing}  pending {pending}")
    for s in evaluation.statuses:
        slice_labels = " ".join(f"{k}={v}" for k, v in s.labels.items() if k not in ("alertname", "severity"))
        change = f" ({s.transition})" if s.transition else ""
        typer.echo(f"  {s.state.upper():8} {s.rule.alertname} [{s.rule.severity}] {slice_labels}  "
                   f"{_reading(s.rule, s.value)}{change}")
    if preview is not None:
        typer.echo("would send:")
        typer.echo(json.dumps(preview, indent=2, ensure_ascii=False))


def _reading(rule: Rule, value: float | None) -> str:
    """The value against the threshold, in the rule's unit (a detector only signals)."""
    if rule.signal_only:
        return "signalled" if value else "no signal"
    from collectors.alerts.rules import humanize_duration  # here: the alerts package pulls SQLAlchemy in

    if rule.kind == "duration":  # ages as the summaries print them ("18h 22m"), not 66,149 s
        shown = "-" if value is None else humanize_duration(value)
        return f"value {shown} threshold {humanize_duration(rule.threshold)}"
    return f"value {'-' if value is None else f'{value:.4g}'} threshold {rule.threshold:g}"
