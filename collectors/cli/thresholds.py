"""`hitl-tower thresholds`: cost curves and the advised auto-approve threshold per risk class and action type."""

from __future__ import annotations

from typing import Annotated, Any

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

_STEP_ROWS = 5  # the compact table shows every 0.05 of the 0.01 grid



@app.command("thresholds")
def thresholds_command(
    start: WindowStartOption = None,
    end: WindowEndOption = None,
    risk_class: Annotated[str | None, typer.Option(
        "--risk-class", metavar="X", help="Only this risk class.", show_default=False)] = None,
    action_type: Annotated[str | None, typer.Option(
        "--action-type", metavar="Y", help="Only this action type.", show_default=False)] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (advice line and compact curve per scope) or json.")]
    = OutputFormat.table,
    full: Annotated[bool, typer.Option(
        "--full", help="Table: print all 50 thresholds, not only every 0.05 plus current and recommended.")]
    = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Cost curves and threshold advice per (risk class, action type): for each auto-approve threshold
    0.50 ... 0.99, the expected cost per 1,000 decisions (auto-approved errors + reviews + errors left
    after review, outcomes weighted for audit sampling), the auto rate and the error rate; the cheapest
    threshold within the risk class's error cap (config `thresholds`) with a bootstrap interval, and the
    saving against the current threshold (the latest matching `threshold` change event). Scopes with too
    few outcomes are refused ("not enough outcomes: n of m needed").

    The default window is the 30 days ending at the newest decision in the store. Exit 0 also when some
    scopes are refused; 2 for a time without a zone, start not before end, an unreachable store, or an
    empty store without a window.
    """
    from collectors.advice.thresholds import threshold_advice

    filters = {k: v for k, v in (("risk_class", risk_class), ("action_type", action_type)) if v}
    data = compute_on_window(start, end, db, config,
                             lambda engine, cfg, start_us, end_us: threshold_advice(engine, cfg, start_us, end_us,
                                                                                    filters))
    echo_result(output, data, lambda d: render_table(d, full))


# ---- table ------------------------------------------------------------------------------------

_HEADER = ("", "threshold", "cost/1000", "auto rate", "error rate", "reviews/1000", "review h/1000", "cap")


def render_table(data: dict[str, Any], full: bool = False) -> str:
    """The advice as text: a window line, then per scope an advice line and its curve table."""
    lines = [(f"window  [{data['start']}, {data['end']})   grid 0.50-0.99   min outcomes {data['min_outcomes']}"
              f"   interval {data['interval_level']:.0%} ({data['bootstrap_resamples']} resamples)")]
    if not data["scopes"]:
        lines.append("no resolved decisions in the window")
    for scope in data["scopes"]:
        lines += ["", f"{scope['risk_class']} / {scope['action_type']}: {advice_line(scope)}"]
        lines += [f"  note: {caveat}" for caveat in scope["caveats"]]
        if scope["curve"]:
            lines += ["  " + line for line in _curve_table(scope, full)]
    return "\n".join(lines)


def advice_line(scope: dict[str, Any]) -> str:
    """One line: the recommendation with its interval and saving, or the refusal."""
    sample = f"({scope['decisions']:,} decisions, {scope['outcomes']:,} outcomes used)"
    current = scope["current_threshold"]
    now = f"current {current:.2f}" if current is not None else "current unknown"
    if scope["refused"]:
        return f"{scope['refused']}; {now} {sample}"
    rec = scope["recommended_threshold"]
    interval = scope["interval"]
    within = f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
    saving = scope["saving_per_1000"]
    versus = (f", saves {saving:,.2f} per 1,000 decisions vs {now}" if saving is not None and saving > 0
              else f", no cheaper than {now}" if saving is not None else f"; {now}")
    return (f"recommend {rec:.2f}{within}: {scope['cost_at_recommended']:,.2f} per 1,000, error rate "
            f"{scope['at_recommended']['error_rate']:.2%} (cap {scope['max_error_rate']:.2%}){versus} {sample}")


def _curve_table(scope: dict[str, Any], full: bool) -> list[str]:
    marks = {}
    if scope["at_current"] is not None:
        marks[scope["at_current"]["threshold"]] = "current"
    if scope["recommended_threshold"] is not None:
        rec = scope["recommended_threshold"]
        marks[rec] = "current+rec" if rec in marks else "recommended"
    rows = {row["threshold"]: row for row in scope["curve"]}
    if scope["at_current"] is not None:
        rows.setdefault(scope["at_current"]["threshold"], scope["at_current"])
    shown = [t for i, t in enumerate(sorted(rows)) if full or t in marks or round(t * 100) % _STEP_ROWS == 0]
    cells = [list(_HEADER)] + [_cells(rows[t], marks.get(t, "")) for t in shown]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_HEADER))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in cells]


def _cells(row: dict[str, Any], mark: str) -> list[str]:
    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    cap = {True: "ok", False: "over", None: "-"}[row["within_cap"]]
    return [mark, f"{row['threshold']:.2f}", num(row["cost_per_1000"], ",.2f"), num(row["auto_rate"], ".1%"),
            num(row["error_rate"], ".2%"), num(row["reviews_per_1000"], ",.1f"),
            num(row["review_hours_per_1000"], ",.2f"), cap]
