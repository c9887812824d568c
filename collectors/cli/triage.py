"""`hitl-tower triage`: which slices deserve more human attention now, ranked by cost avoided per review hour."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer

from collectors.cli._app import app
from collectors.cli.options import ConfigOption, DbOption, fail, load_config_or_exit, open_store_or_exit

DEFAULT_DAYS = 30
_DAY_US = 86_400 * 1_000_000


class TriageFormat(str, Enum):
    """Output formats of the triage report."""

    table = "table"
    json = "json"


@app.command("triage")
def triage_command(
    start: Annotated[str | None, typer.Option(
        "--start", metavar="T", help="Window start, RFC 3339 with a zone (inclusive). Default: --end minus "
        "30 days.", show_default=False)] = None,
    end: Annotated[str | None, typer.Option(
        "--end", metavar="T", help="Window end, RFC 3339 with a zone (exclusive). Default: just after the "
        "newest decision in the store.", show_default=False)] = None,
    top: Annotated[int | None, typer.Option(
        "--top", metavar="N", min=1, help="Rows to show. Default: triage.top of the config (20).",
        show_default=False)] = None,
    output: Annotated[TriageFormat, typer.Option(
        "--format", help="table (rank, score, slice, recommendation, reasons) or json.")] = TriageFormat.table,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Rank slices (risk class x action type x model version, and segment values inside them that fare
    worse) by the error cost one more review hour is expected to avoid there: auditing or reviewing the
    auto-approved items (error rate from audits x cost of an agent error x human catch rate) or a second
    look at decided items (residual error x its cost x the auditors' catch rate), per hour of review.
    Each row names its reasons: failed guardrails on auto-approved items, defect rate above overall,
    model-vs-rules disagreement, uncertainty, fairness gaps.

    The default window is the 30 days ending at the newest decision in the store. Exit 2 for a time
    without a zone, start not before end, an unreachable store, or an empty store without a window.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from collectors.advice.triage import triage
    from collectors.store.db import decision_time_range

    start_us = None if start is None else _instant("--start", start)
    end_us = None if end is None else _instant("--end", end)
    cfg = load_config_or_exit(config)
    if top is not None:
        cfg = cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"top": top})})
    engine = open_store_or_exit(db, cfg, create=False)
    try:
        if end_us is None:
            span = decision_time_range(engine)
            if span is not None:
                end_us = span[1] + 1
            elif start_us is not None:
                end_us = start_us + DEFAULT_DAYS * _DAY_US
            else:
                fail("the store holds no decisions, so there is no default window; give --start and --end")
        if start_us is None:
            start_us = end_us - DEFAULT_DAYS * _DAY_US
        if start_us >= end_us:
            fail("--start must be before --end")
        data = triage(engine, cfg, start_us, end_us)
    except SQLAlchemyError as exc:
        fail(f"reading the store failed: {(str(getattr(exc, 'orig', None) or exc).strip() or 'error').splitlines()[0]}")
    finally:
        engine.dispose()
    if output is TriageFormat.json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        typer.echo(render_table(data))


def _instant(flag: str, value: str) -> int:
    from collectors.validate import EventError, parse_timestamp

    try:
        return parse_timestamp(value)
    except EventError as exc:
        fail(f"{flag}: {exc}")


def slice_label(slice_: dict[str, str]) -> str:
    """A slice as one short string: risk / action / model [segment.KEY=value]."""
    base = f"{slice_['risk_class']} / {slice_['action_type']} / {slice_['model_version']}"
    extra = [f"{k}={v}" for k, v in slice_.items() if k.startswith("segment.")]
    return base + (f" [{', '.join(extra)}]" if extra else "")


def render_table(data: dict[str, Any]) -> str:
    """The ranking as text: a header line, then per row its score, slice, recommendation and reasons."""
    from collectors.validate import format_timestamp

    catch = data.get("second_look_catch")
    lines = [(f"window  [{format_timestamp(data['start'])}, {format_timestamp(data['end'])})   "
             f"{data['candidates']} slices scored   second-look catch rate "
             f"{'-' if catch is None else f'{catch:.0%}'}"),
             "score = expected error cost avoided per review hour (same currency as costs)"]
    if not data["rows"]:
        lines.append("no slice with enough decisions in the window")
        return "\n".join(lines)
    labels = [slice_label(r["slice"]) for r in data["rows"]]
    width = max(len(label) for label in labels)
    lines += ["", f"{'rank':>4}  {'score/h':>9}  {'n':>6}  {'slice':<{width}}  option"]
    for row, label in zip(data["rows"], labels):
        mark = "" if row["pays_off"] else "  (below the hourly rate)"
        lines.append(f"{row['rank']:>4}  {row['score']:>9,.1f}  {row['decisions']:>6}  {label:<{width}}  "
                     f"{row['option']}{mark}")
        lines.append(f"{'':>4}  -> {row['recommendation']}")
        lines += [f"{'':>4}     - {reason}" for reason in row["reasons"]]
    return "\n".join(lines)
