"""`hitl-tower report`: the KPIs of a window, in total and per slice (contract sections 3 and 5)."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import typer

from collectors.cli._app import app
from collectors.cli.options import (
    ConfigOption,
    DbOption,
    OutputFormat,
    echo_json,
    fail,
    load_config_or_exit,
    open_store_or_exit,
    optional_instant,
    parse_instant,
    reading_store,
)


def _time_option(flag: str, help: str) -> Any:
    return typer.Option(flag, metavar="T", help=help, show_default=False)


@app.command("report")
def report_command(
    start: Annotated[str | None, _time_option(
        "--start", "Window start, RFC 3339 with a zone (inclusive). Give --start and --end, or --last.")] = None,
    end: Annotated[str | None, _time_option("--end", "Window end, RFC 3339 with a zone (exclusive).")] = None,
    last: Annotated[str | None, typer.Option(
        "--last", metavar="DURATION", help="Instead of --start/--end: the window of this length ending now "
        "(or at --now), on a whole second, e.g. 1h, 24h, 7d.", show_default=False)] = None,
    by: Annotated[list[str] | None, typer.Option(
        "--by", metavar="FIELD",
        help="Slice the rows by risk_class, queue, model_version, agent_id, action_type, route or "
        "segment.KEY; repeat for several.", show_default=False)] = None,
    reference_start: Annotated[str | None, _time_option(
        "--reference-start", "Reference window start for psi and ece_drift. Default: the reference "
        "end minus the window's length.")] = None,
    reference_end: Annotated[str | None, _time_option(
        "--reference-end", "Reference window end. Default: --start (the previous window of equal "
        "length), or the config's reference_window when set.")] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (readable, nulls as -) or json (the contract's object).")]
    = OutputFormat.table,
    now: Annotated[str | None, _time_option(
        "--now", "The instant pending ages are measured at. Default: the current time.")] = None,
    extras: Annotated[bool, typer.Option(
        "--extras/--no-extras", help="Also report what the contract does not define: with json, the "
        "reference window, now, sample sizes, reliability bins, reviewers, verdict and reason "
        "breakdowns and escalation after the contract's keys; with table, an escalation line and a "
        "reviewer section. Default: off (json prints exactly the contract's object).",
        show_default=False)] = False,
    advice: Annotated[list[str] | None, typer.Option(
        "--advice", metavar="PART",
        help="With --format json, also report decision-support figures under \"advice\": thresholds, "
        "autonomy, changes, quality, fairness, triage, or all; repeat for several. Tables of each "
        "have their own commands (hitl-tower thresholds, autonomy, changes, triage).",
        show_default=False)] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Report every KPI of [start, end): rates, calibration, overrides, agreement, latency and cost.

    The window is --start and --end, or --last 24h (the last 24 hours). Exit 2 with one error line
    for a time without a zone, start not before end, an unknown --by field or an unreachable store.
    """
    from collectors.engine.extras import compute_extras
    from collectors.engine.query import SliceFieldError, check_slice_fields
    from collectors.engine.report import compute_report, contract_object, reference_window, report_to_dict
    from collectors.validate import EARLIEST_US

    now_us = optional_instant("--now", now)
    start_us, end_us = _window(start, end, last, now_us)
    cfg = load_config_or_exit(config)
    ref_start_us = optional_instant("--reference-start", reference_start)
    ref_end_us = optional_instant("--reference-end", reference_end)
    if ref_start_us is None and ref_end_us is None and cfg.reference_window is not None:
        ref_start_us = parse_instant("reference_window.start", cfg.reference_window.start)
        ref_end_us = parse_instant("reference_window.end", cfg.reference_window.end)
    ref = reference_window(start_us, end_us, ref_start_us, ref_end_us)
    if ref[0] >= ref[1] and (ref_start_us is not None or ref[1] > EARLIEST_US):
        # (a window that starts at the earliest instant has nothing before it: its default reference
        # is empty, which only leaves psi and ece_drift null)
        fail("the reference window is empty: its start must be before its end")
    by_fields = list(by or [])
    try:
        check_slice_fields(by_fields)
    except SliceFieldError as exc:
        fail(str(exc))
    advice_parts = _advice_parts(advice, output)
    engine = open_store_or_exit(db, cfg, create=False)
    with reading_store(engine):
        report = compute_report(engine, cfg, start_us, end_us, by=by_fields, reference=ref, now_us=now_us)
        extra = compute_extras(engine, cfg, start_us, end_us, by_fields) if extras else None
        advised = None
        if advice_parts:
            from collectors.advice.combined import compute_advice

            advised = compute_advice(engine, cfg, start_us, end_us, advice_parts)
    data = report_to_dict(report, extra)
    _warn_absent_segment_keys(data, by_fields)
    if output is OutputFormat.json:
        printed = data if extras else contract_object(data)
        if advised is not None:
            printed["advice"] = advised
        echo_json(printed)
    else:
        typer.echo(render_table(data, shutil.get_terminal_size((120, 24)).columns, cfg.currency))
        if extra is not None:
            from collectors.cli.extras_table import render_extras

            typer.echo(render_extras(data))


def _window(start: str | None, end: str | None, last: str | None, now_us: int | None) -> tuple[int, int]:
    """[start, end) in epoch microseconds from --start/--end or --last; exit 2 naming what is wrong."""
    if last is not None:
        if start is not None or end is not None:
            fail("--last replaces --start and --end: give one or the other")
        from collectors.config import duration_seconds

        try:
            length_us = duration_seconds(last) * 1_000_000
        except ValueError as exc:
            fail(f"--last: {exc}")
        if now_us is None:
            import time

            now_us = time.time_ns() // 1000
        end_us = now_us // 1_000_000 * 1_000_000
        return end_us - length_us, end_us
    if start is None or end is None:
        fail("give the window: --start and --end (RFC 3339 with a zone), or --last such as 24h")
    start_us, end_us = parse_instant("--start", start), parse_instant("--end", end)
    if start_us >= end_us:
        fail(f"--start {start} must be before --end {end}")
    return start_us, end_us


def _warn_absent_segment_keys(data: dict[str, Any], by_fields: list[str]) -> None:
    """A note on stderr for a `--by segment.KEY` that no decision of the window carries (a typo
    gives one row of nulls, exit 0: correct, and easy to misread)."""
    if not data["rows"]:
        return
    for field in by_fields:
        if field.startswith("segment.") and all(row.get(field) is None for row in data["rows"]):
            typer.echo(f"note: no decision in the window has segment key {field.removeprefix('segment.')!r}; "
                       "all fall in its null row", err=True)


def _advice_parts(advice: list[str] | None, output: OutputFormat) -> list[str]:
    """The --advice parts in registry order ("all" for every one); exit 2 on a bad name or a table."""
    from collectors.advice.combined import PARTS

    if not advice:
        return []
    if output is not OutputFormat.json:
        fail("--advice needs --format json; for tables use hitl-tower thresholds, autonomy, changes or triage")
    names = set(PARTS) if "all" in advice else set(advice)
    unknown = sorted(names - set(PARTS))
    if unknown:
        fail(f"unknown --advice part {', '.join(unknown)} (choose from {', '.join(PARTS)} or all)")
    return [name for name in PARTS if name in names]


# ---- table ------------------------------------------------------------------------------------

_SAMPLE_LABELS = {
    "resolved": "n resolved",
    "outcomes": "n with outcome",
    "reference_decisions": "n reference decisions",
    "overrides": "n overrides",
    "agreement_units": "n agreement items",
    "primary_reviews": "n primary reviews",
}
_GAP = 2


def format_value(kpi_id: str, value: Any) -> str:
    """A KPI value as shown in the table: nulls as '-', precision by unit."""
    from collectors.kpis.spec import kpi_spec

    if value is None:
        return "-"
    unit = kpi_spec(kpi_id).unit
    if unit == "count":
        return str(value)
    if unit == "seconds":
        return f"{value:.1f}"
    if unit == "currency":
        return f"{value:.2f}"
    if unit == "coefficient":
        return f"{value:.3f}"
    return f"{value:+.4f}" if kpi_id == "ece_drift" else f"{value:.4f}"


def render_table(data: dict[str, Any], width: int = 120, currency: str = "") -> str:
    """The report as aligned text: one line per KPI, one column for the total and one per row.

    The configured currency is named once in the heading, not on each amount, so columns stay narrow.
    """
    from collectors.kpis.spec import KPIS

    by = data["by"]
    lines = [
        f"window     [{data['start']}, {data['end']})",
        f"reference  [{data['reference']['start']}, {data['reference']['end']})",
        f"now        {data['now']}",
    ]
    if by:
        lines.append(f"by         {', '.join(by)}")
    if currency:
        money = ", ".join(spec.id for spec in KPIS if spec.unit == "currency")
        lines.append(f"money      in {currency} ({money})")
    columns = [("total", data["total"], data["samples"]["total"])]
    columns += [("", row, samples) for row, samples in zip(data["rows"], data["samples"]["rows"])]
    labels = [*by, *(spec.id for spec in KPIS), *_SAMPLE_LABELS.values()]
    label_width = max(len(label) for label in labels)
    cells = [_column_cells(title, kpis, samples, by) for title, kpis, samples in columns]
    widths = [max(len(c) for c in column) for column in cells]
    for chunk in _chunks(widths, width - label_width):
        lines.append("")
        names = ["", *by, *(spec.id for spec in KPIS), "", *_SAMPLE_LABELS.values()]
        for i, name in enumerate(names):
            parts = [name.ljust(label_width)]
            parts += [cells[c][i].rjust(widths[c]) for c in chunk]
            lines.append((" " * _GAP).join(parts).rstrip())
    return "\n".join(lines)


def _column_cells(title: str, kpis: dict[str, Any], samples: dict[str, int], by: list[str]) -> list[str]:
    from collectors.kpis.spec import KPIS

    keys = ["-" if kpis.get(f) is None else str(kpis[f]) for f in by] if title == "" else [""] * len(by)
    return [title, *keys, *(format_value(spec.id, kpis[spec.id]) for spec in KPIS), "",
            *(str(samples[s]) for s in _SAMPLE_LABELS)]


def _chunks(widths: list[int], room: int) -> list[list[int]]:
    """Split columns into groups that fit the terminal width (at least one column per group)."""
    chunks: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if chunks[-1] and used + _GAP + w > room:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += _GAP + w
    return chunks
