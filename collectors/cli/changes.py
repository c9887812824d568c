"""`hitl-tower changes`: each threshold, policy or model change with its KPIs before and after."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer

from collectors.cli._app import app
from collectors.cli.options import (
    ConfigOption,
    DbOption,
    OutputFormat,
    echo_result,
    fail,
    load_config_or_exit,
    open_store_or_exit,
    optional_instant,
    reading_store,
    resolve_window,
)
from collectors.wording import plural


class ChangeKind(str, Enum):
    """The contract's change kinds."""

    threshold = "threshold"
    policy = "policy"
    model = "model"
    other = "other"


@app.command("changes")
def changes_command(
    start: Annotated[str | None, typer.Option(
        "--start", metavar="T", help="List changes from T (RFC 3339 with a zone, inclusive). Default: --end "
        "minus 30 days.", show_default=False)] = None,
    end: Annotated[str | None, typer.Option(
        "--end", metavar="T", help="List changes before T (exclusive). Default: the whole second just "
        "after the newest decision in the store.", show_default=False)] = None,
    window: Annotated[str | None, typer.Option(
        "--window", metavar="DURATION", help="Length of each of the equal pre and post windows, e.g. 7d "
        "or 36h. Default: changes.window of the config (7d).", show_default=False)] = None,
    kind: Annotated[list[ChangeKind] | None, typer.Option(
        "--kind", help="Only changes of this kind; repeat for several.", show_default=False)] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (readable) or json (one object).")] = OutputFormat.table,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare KPIs in equal windows before and after each change event, in the change's scope.

    Rates (auto, intervention, SLA breach, harmful override, agent accuracy) get a two-proportion
    z-test; '*' marks p below changes.significance. Without --start/--end: the 30 days ending at the
    newest decision. Exit 2 for a bad time, window or store.
    """
    from collectors.advice.changes import compare_changes
    from collectors.config import duration_seconds
    from collectors.store.db import decision_time_range

    cfg = load_config_or_exit(config)
    try:
        window_seconds = duration_seconds(window) if window is not None else None
    except ValueError as exc:
        fail(f"--window: {exc}")
    engine = open_store_or_exit(db, cfg, create=False)
    with reading_store(engine):
        span = decision_time_range(engine)
        if end is None and span is None:
            typer.echo("no decisions in the store: nothing to compare")
            return
        start_us, end_us = resolve_window(optional_instant("--start", start), optional_instant("--end", end),
                                          span[1] if span else None)
        data = compare_changes(engine, cfg, start_us, end_us, kinds=[k.value for k in kind or []],
                               window_seconds=window_seconds)
    echo_result(output, data, render_changes)


def render_changes(data: dict[str, Any]) -> str:
    """The comparison as text: a header per change, its KPI table and its caveats."""
    if not data["changes"]:
        return "no change events in this window"
    title = (f"{plural(len(data['changes']), 'change')}; equal windows of up to {_span(data['window_seconds'])} "
             f"either side; * = p < {data['significance']:g}")
    blocks = [title]
    blocks += [_render_one(change) for change in data["changes"]]
    return "\n\n".join(blocks)


def _render_one(change: dict[str, Any]) -> str:
    scope = ", ".join(f"{k}={v}" for k, v in change["scope"].items()) or "everywhere"
    header = (f"{change['changed_at']}  {change['id']}  {change['kind']} by {change['actor']}: "
              f"{_value(change['before'])} -> {_value(change['after'])}  (scope: {scope})")
    lines = [
        header,
        f"  why: {change['reason'] or '-'}",
        f"  {change['headline']}",
    ]
    if change["pre"] is not None:
        lines.append(f"  pre [{change['pre']['start']}, {change['pre']['end']})  post [{change['post']['start']}, "
                     f"{change['post']['end']})  {_span(change['equal_window_seconds'])} each")
        rows = [("kpi", "pre", "post", "delta", "n pre", "n post", "p-value")]
        for k in change["kpis"]:
            mark = " *" if k["significant"] else ""
            rows.append((k["kpi"] + mark, _fmt(k, "pre"), _fmt(k, "post"), _fmt(k, "delta"), f"{k['pre_n']:,}",
                         f"{k['post_n']:,}", _p(k["p_value"]) if k["rate"] else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            cells = [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]
            lines.append(("  " + "  ".join(cells)).rstrip())
    lines += [f"  ! {caveat}" for caveat in change["caveats"]]
    return "\n".join(lines)


def _fmt(kpi: dict[str, Any], field: str) -> str:
    value = kpi[field]
    if value is None:
        return "-"
    sign = "+" if field == "delta" and value > 0 else ""
    if kpi["rate"]:
        return f"{sign}{value * 100:.1f} pp" if field == "delta" else f"{value:.1%}"
    if kpi["kpi"] == "latency_p90_seconds":
        return f"{sign}{value / 3600:.2f} h"
    if kpi["kpi"] in ("ece", "brier"):
        return f"{sign}{value:.4f}"
    return f"{sign}{value:,.2f}"


def _p(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _span(seconds: int) -> str:
    return f"{seconds / 86400:g} d" if seconds % 86400 == 0 else f"{seconds / 3600:g} h"
