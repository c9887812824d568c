"""Alerts: what fires now and the alert history (from the alert engine's records)."""

from __future__ import annotations

import streamlit as st

from app import common

st.title("Alerts")
ctx = common.context()
data = common.load_alerts(ctx.url)
firing, history = data["firing"], data["history"]
if not (firing.empty and history.empty):
    st.caption("Thresholds and values in the unit of what each alert measures: shares in %, a backlog's age in "
               "h/min, an intervention spike in percentage points, a detector's alert as signalled or not.")

st.subheader("Firing now")
if firing.empty:
    st.success("No alert is firing.", icon=":material/check_circle:")
else:
    st.dataframe(common.alert_table(firing), hide_index=True, width="stretch", placeholder=common.MISSING,
                 column_config=common.ALERT_COLUMNS)
    common.csv_download(firing, "alerts_firing")

st.subheader("History")
if history.empty:
    st.info("No alert history yet. Alerts are evaluated by `hitl-tower alerts` (or Prometheus with the "
            "shipped rules).")
else:
    st.dataframe(common.alert_table(history), hide_index=True, width="stretch", placeholder=common.MISSING,
                 column_config=common.ALERT_COLUMNS)
    common.csv_download(history, "alerts_history")
