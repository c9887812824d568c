"""Alerts: what fires now and the alert history (from the alert engine's records)."""

from __future__ import annotations

import streamlit as st

from app import alert_table, common

st.title("Alerts")
ctx = common.context()
# The sidebar's window and filters are drawn on every page; said here, or a reader filtering on one queue
# takes another queue's alert for theirs.
st.caption("The sidebar's time window and filters do not apply to alerts: each rule watches the whole store "
           "over its own window, and every alert it raised is listed.")
data = common.load_alerts(ctx.url)
firing, history = data["firing"], data["history"]
if not (firing.empty and history.empty):
    st.caption("Each row: what fired (the alert, its severity, its summary and any label the summary does not "
               "name), its threshold and values, and when. Thresholds and values in the unit of what each alert "
               "measures: shares in %, a backlog's age in h/min, an intervention spike in percentage points, a "
               "detector's alert as signalled or not. The CSV has one raw column per field.")

st.subheader("Firing now")
if firing.empty and history.empty:
    # Nothing recorded: no alert ever fired, or no evaluator ever ran; a green "no alert is firing" vouched
    # for rules nobody had evaluated (the demo store built with --no-serve)
    st.info("No alert has been recorded on this store: either none has ever fired, or no evaluator has run. "
            "Alerts are evaluated by `hitl-tower alerts --watch` (or Prometheus with the shipped rules); "
            "until one runs, this page cannot say that nothing fires.", icon=":material/help:")
elif firing.empty:
    st.success("No alert is firing.", icon=":material/check_circle:")
else:
    looked = common.alert_evaluation(ctx.url)
    if looked:
        at, age = common._ts(looked["at_us"]), common._duration(max(looked["age_seconds"], 0.0))
        if looked["stale"]:
            st.warning(f"The alert rules last looked at these alerts {age} ago ({at}): no evaluator seems to "
                       "run, so they were firing then and may have resolved since. Keep one running with "
                       "`hitl-tower alerts --watch`.", icon=":material/schedule:")
        else:
            st.caption(f"Rules last evaluated {at} ({age} ago).")
    alert_table.show(firing)
    common.csv_download(firing, "alerts_firing")

st.subheader("History")
if history.empty:
    st.caption("No alert history yet.")
else:
    alert_table.show(history)
    common.csv_download(history, "alerts_history")
