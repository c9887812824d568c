"""The short text section `hitl-tower report --extras` prints under the KPI table: reviewers and escalation."""

from __future__ import annotations

from typing import Any

_COLUMNS = ("reviewer", "reviews", "per active h", "median handle s", "override rate", "agreement", "dissent")
_GAP = "  "


def _share(share: dict[str, Any]) -> str:
    value = "-" if share["value"] is None else f"{share['value']:.3f}"
    return f"{value} ({share['count']}/{share['n']})"


def _cells(reviewer: dict[str, Any]) -> tuple[str, ...]:
    per_hour = reviewer["reviews_per_active_hour"]
    handle = reviewer["median_handle_seconds"]
    return (
        reviewer["reviewer_id"],
        str(reviewer["reviews"]),
        "-" if per_hour is None else f"{per_hour:.2f}",
        ("-" if handle["value"] is None else f"{handle['value']:.1f}") + f" (n={handle['n']})",
        _share(reviewer["override_rate"]),
        _share(reviewer["agreement"]),
        "yes" if reviewer["dissent"] else "",
    )


def render_extras(data: dict[str, Any]) -> str:
    """Escalation in one line, then one aligned line per reviewer (nulls as -, every rate with count/n)."""
    escalation = data["escalation"]["total"]
    depth = escalation["depth"]
    lines = [
        "",
        (f"escalation  rate {_share(escalation['escalation_rate'])}, depth mean "
         f"{'-' if depth['mean'] is None else format(depth['mean'], '.2f')}, max "
         f"{'-' if depth['max'] is None else depth['max']}"),
        "",
    ]
    rows = [_COLUMNS, *(_cells(r) for r in data["reviewers"]["by_reviewer"])]
    if len(rows) == 1:
        return "\n".join([*lines, "reviewers   none in the window"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]
        lines.append(_GAP.join(cells).rstrip())
    return "\n".join(lines)
