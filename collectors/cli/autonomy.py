"""`hitl-tower autonomy`: where each (action type, model version) stands on the autonomy ladder."""

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


@app.command("autonomy")
def autonomy_command(
    start: WindowStartOption = None,
    end: WindowEndOption = None,
    action_type: Annotated[str | None, typer.Option(
        "--action-type", metavar="X", help="Only this action type.", show_default=False)] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (one line per action type and model version) or json.")]
    = OutputFormat.table,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Staged autonomy readiness: per action type and model version, the current stage (shadow, assisted,
    auto), agreement with humans and accuracy from outcomes (Wilson intervals, n), ECE, the streak of days
    meeting the bars, and READY or what is missing for the next stage (config `autonomy`).

    The default window is the 30 days ending at the newest decision in the store.

    Exit 2 for a time without a zone, start not before end, an unreachable store, or an empty store.
    """
    from collectors.advice.autonomy import autonomy_ladder

    filters = {"action_type": action_type} if action_type else None
    data = compute_on_window(start, end, db, config,
                             lambda engine, cfg, start_us, end_us: autonomy_ladder(engine, cfg, start_us, end_us,
                                                                                   filters))
    echo_result(output, data, render_table)


def _share(s: dict[str, Any]) -> str:
    if s["value"] is None:
        return "-"
    return f"{s['value']:.3f} [{s['low']:.3f}, {s['high']:.3f}] n={s['n']}"


def _verdict(row: dict[str, Any]) -> str:
    if row["verdict"] == "ready":
        return f"READY for {row['next_stage']}"
    if row["verdict"] == "holds":
        return "holds auto"
    label = {"not ready": "missing", "demotion warning": "DEMOTION WARNING", "inactive": "inactive"}[row["verdict"]]
    return f"{label}: " + "; ".join(row["missing"])


def render_table(data: dict[str, Any]) -> str:
    """The ladder as aligned text, one line per (action type, model version), judged over each row's
    evaluation period (the last stable_days days of the window)."""
    lines = [f"window  [{data['start']}, {data['end']})"]
    for name in ("shadow_exit", "assisted_exit"):
        c = data["criteria"][name]
        lines.append(f"{name:<14}samples >= {c['min_samples']}, agreement >= {c['min_agreement']:.2f}, accuracy >= "
                     f"{c['min_accuracy']:.2f} (Wilson lower bound), ECE <= {c['max_ece']:.2f}, stable "
                     f"{c['stable_days']} days")
    if not data["rows"]:
        lines.append("no decisions in this window")
        return "\n".join(lines)
    header = ("action_type", "model_version", "stage", "eval", "agreement", "accuracy", "ECE", "streak",
              "verdict")
    cells = [header]
    for row in data["rows"]:
        cells.append((str(row["action_type"]), str(row["model_version"]), row["current_stage"],
                      f"{row['evaluation']['days']}d", _share(row["agreement"]), _share(row["accuracy"]),
                      "-" if row["ece"] is None else f"{row['ece']:.3f}", f"{row['streak_days']}d",
                      _verdict(row)))
    widths = [max(len(r[i]) for r in cells) for i in range(len(header) - 1)]
    lines.append("")
    for r in cells:
        lines.append("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip())
    return "\n".join(lines)
