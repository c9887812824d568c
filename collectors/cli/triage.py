"""`hitl-tower triage`: which slices deserve more human attention now, ranked by cost avoided per review hour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from collectors.cli._app import app
from collectors.cli.options import (
    ConfigOption,
    DbOption,
    OutputFormat,
    WindowEndOption,
    WindowStartOption,
    compute_on_window,
    echo_result,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig


@app.command("triage")
def triage_command(
    start: WindowStartOption = None,
    end: WindowEndOption = None,
    top: Annotated[int | None, typer.Option(
        "--top", metavar="N", min=1, help="Rows to show. Default: triage.top of the config (20).",
        show_default=False)] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (rank, score, slice, recommendation, reasons) or json.")] = OutputFormat.table,
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
    from collectors.advice.triage import triage

    def ranked(engine: Engine, cfg: TowerConfig, start_us: int, end_us: int) -> dict[str, Any]:
        if top is not None:
            cfg = cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"top": top})})
        return triage(engine, cfg, start_us, end_us)

    data = compute_on_window(start, end, db, config, ranked)
    echo_result(output, data, render_table)


def slice_label(slice_: dict[str, str]) -> str:
    """A slice as one short string: risk / action / model [segment.KEY=value]."""
    base = f"{slice_['risk_class']} / {slice_['action_type']} / {slice_['model_version']}"
    extra = [f"{k}={v}" for k, v in slice_.items() if k.startswith("segment.")]
    return base + (f" [{', '.join(extra)}]" if extra else "")


def render_table(data: dict[str, Any]) -> str:
    """The ranking as text: a header line, then per row its score, slice, recommendation and reasons."""

    catch = data.get("second_look_catch")
    lines = [(f"window  [{data['start']}, {data['end']})   "
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
