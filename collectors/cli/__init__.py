"""Command-line interface `hitl-tower`: each command lives in its own module."""

from __future__ import annotations

# Importing a command module registers its command on `app`.
from collectors.cli import (  # noqa: F401
    alerts,
    autonomy,
    changes,
    db,
    demo,
    export,
    ingest,
    report,
    rollups,
    schema,
    serve_metrics,
    thresholds,
    triage,
    verify,
)
from collectors.cli._app import Listing, app, arrange_commands, reflow_command_help

_WATCH, _LOAD, _STEER = "Watch the loop", "Load and keep the audit log", "Steer the loop (decision support)"
# How `hitl-tower --help` lists the commands: in the order a new user meets them, in three panels, each
# on a line or two (a command's own --help has the whole story).
LISTING = (
    Listing("demo", _WATCH),
    Listing("report", _WATCH),
    Listing("serve-metrics", _WATCH),
    Listing("alerts", _WATCH, "Evaluate the alert rules (calibration drift, PSI, ADWIN, agreement, SLA breaches, "
            "backlog, intervention spikes) with hysteresis and minimum samples; record and notify."),
    Listing("ingest", _LOAD),
    Listing("verify", _LOAD),
    Listing("export", _LOAD),
    Listing("schema", _LOAD),
    Listing("init-db", _LOAD),
    Listing("rebuild-rollups", _LOAD),
    Listing("thresholds", _STEER, "Cost curves per (risk class, action type) and the cheapest auto-approve "
            "threshold within the error cap, with its saving against the current one."),
    Listing("autonomy", _STEER, "Staged autonomy readiness per action type and model version: the current "
            "stage, agreement and accuracy against the bars, READY or what is missing."),
    Listing("triage", _STEER, "Rank slices by the error cost one more review hour is expected to avoid there, "
            "with the reasons."),
    Listing("changes", _STEER),
)

reflow_command_help(app)
arrange_commands(app, LISTING)


def main() -> None:
    """Entry point of the `hitl-tower` console script."""
    app()


__all__ = ["app", "main"]
