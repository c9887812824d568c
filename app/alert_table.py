"""The Alerts page's tables: three columns that fit a 1024 px viewport with the sidebar open (about 560 px),
with nothing of the alert history left out.

Eleven columns (name, severity, state, labels, threshold, three values, start, end, summary) were 1,740 px
wide: the values and the summary were scrolled out of sight. Now each row wraps its text over a few lines:
"what" (the alert, its severity and on-call summary, and any label the summary does not name), "values"
(threshold, fired at, worst, last, in the unit of what the alert measures) and "when" (state and times).
The CSV download keeps the raw columns and numbers.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from app.common import CELL_TEXT, MISSING, when

VALUE_LINES = 4  # threshold, fired, worst, last: one line each
LINE_PX = 19  # a line of the grid's 14 px font
PAD_PX = 12  # a row's padding above and below its lines
WHAT_PX = 290
WHAT_CHARS_PER_LINE = 38  # in the "what" column's 274 px of text (a drift alert's 205 characters took 6 lines)
ROWS_SHOWN = 6  # rows in view before the table scrolls (its default 400 px held two or three rows this tall)
HEADER_PX = 38
COLUMNS = {
    "what": st.column_config.TextColumn("what", width=WHAT_PX, help="The alert (severity): its summary, and any of "
                                        "its labels the summary does not name."),
    "values": st.column_config.TextColumn("values", width=110, help="Threshold, value it fired at, worst and "
                                          "last value, in the unit of what the alert measures."),
    "when": st.column_config.TextColumn("when (UTC)", width=150, help="State, since when, and until when."),
}
VALUES = {"threshold": "threshold", "fired_value": "fired", "worst_value": "worst", "last_value": "last"}
NBSP = "\u00a0"  # the grid wraps at spaces and ignores newlines: an item ("fired 7.8 h", a time) never breaks


def _signal_text(value: float) -> str:
    return "signalled" if value >= 1 else "no signal"


def _value_text(kind: str, field: str, value: Any) -> str:
    """A threshold or value in the unit of what its alert measures (`kind`, dashboard_data.alerts'); a
    detector's threshold reads "signal" (it fires on one; "any signal" broke inside the column)."""
    if value is None or pd.isna(value):
        return MISSING
    if kind == "signal":
        return "signal" if field == "threshold" else _signal_text(float(value))
    return CELL_TEXT[kind](value)


def _unnamed(labels: str, summary: str) -> list[str]:
    """The labels ("queue=kyc, window=24h") whose value the summary does not name as a word of its own:
    "window=24h" (a queue "kyc" is not named by "kyc-v2.4")."""
    items = [item for item in labels.split(", ") if item]
    return [item for item in items
            if not re.search(rf"(?<![\w.-]){re.escape(item.partition('=')[2])}(?![\w-]|\.\w)", summary)]


def _what(row: Any) -> str:
    rest = _unnamed(row.labels, row.summary)
    return f"{row.alertname} ({row.severity}): {row.summary}" + (f" [{', '.join(rest)}]" if rest else "")


def _time(value: Any) -> str | None:
    """A start or end as "2026-11-27 22:00" (the column's header says UTC), unbreakable."""
    return when(value).removesuffix(" UTC").replace(" ", NBSP) if isinstance(value, str) else None


def _when(row: Any) -> str:
    start, end = _time(row.starts_at), _time(row.ends_at)
    if start is None:
        return str(row.state)
    if end is None:
        return f"{row.state} since {start}"
    return f"{row.state} {start} →{NBSP}{end}"


def _values(row: Any) -> str:
    """Threshold, fired, worst and last, each unbreakable. A detector's alert fires on its signal, so its
    threshold, fired and worst say the same thing: "signalled" once, and its last value only when that
    differs (the cell read "threshold signal fired signalled worst signalled last signalled")."""
    if row.kind == "signal":
        last = row.last_value
        ended = last is not None and not pd.isna(last) and float(last) < 1
        return "signalled" + (" " + f"last {_signal_text(float(last))}".replace(" ", NBSP) if ended else "")
    return " ".join(f"{name}{NBSP}{_value_text(str(row.kind), field, getattr(row, field))}".replace(" ", NBSP)
                    for field, name in VALUES.items())


def alert_table(alerts: pd.DataFrame) -> pd.DataFrame:
    """An alert table (`dashboard_data.alerts`') as shown: "what", "values" and "when" (see the module)."""
    rows = [{"what": _what(row), "values": _values(row), "when": _when(row)} for row in alerts.itertuples()]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def row_px(table: pd.DataFrame) -> int:
    """One height for every row (the grid has no other): the longest "what" whole, the values' four lines at
    least (Streamlit wraps a cell's text only in rows taller than 4 rem, 64 px)."""
    longest = max((len(text) for text in table["what"]), default=0)
    return max(VALUE_LINES, -(-longest // WHAT_CHARS_PER_LINE)) * LINE_PX + PAD_PX


def show(alerts: pd.DataFrame) -> None:
    """The alert table at full width, its rows tall enough for their wrapped text."""
    table = alert_table(alerts)
    row = row_px(table)
    st.dataframe(table, hide_index=True, width="stretch", column_config=COLUMNS, row_height=row,
                 height=HEADER_PX + row * min(len(table), ROWS_SHOWN))
