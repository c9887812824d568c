"""Fairness: KPIs per segment value with sample sizes; gaps are flagged only with enough samples."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from app import common

FIELDS = ("segment.region", "segment.customer_tier", "segment.language", "risk_class", "queue", "agent_id",
          "model_version")
KPI_CHOICES = ("intervention_rate", "auto_rate", "ece", "harmful_override_rate", "sla_breach_rate",
               "latency_p90_seconds")

st.title("Fairness")
ctx = common.context()
st.caption(common.filters_caption(ctx))
left, mid, right = st.columns(3)
field = left.selectbox("Segment", FIELDS)
kpi_id = mid.selectbox("KPI", KPI_CHOICES)
min_n = int(right.number_input("Minimum sample to flag a gap", min_value=1, value=100, step=10))

result = common.load("segment_gaps", ctx.url, ctx.start_us, ctx.end_us, field, kpi_id, min_n, dict(ctx.filters))
table, base = result["table"], result["overall"]
if table.empty:
    st.info("No decisions in this window for this segment.")
    st.stop()
share = common.dashboard_data.GAP_SHARE
fig = px.bar(table, x=field, y=kpi_id, color=table["flag"].map({True: "gap", False: "in line"}),
             color_discrete_map={"gap": "#d62728", "in line": "#1f77b4"}, hover_data=["n"], height=380,
             text=[f"n={n:,}" for n in table["n"]], labels={"color": ""},
             title=f"{kpi_id} by {field} (red: more than {share:.0%} away from all, with n ≥ {min_n})")
if base is not None:
    fig.add_hline(y=base, line_dash="dash", annotation_text=f"all: {common.fmt(kpi_id, base)}")
st.plotly_chart(fig, width="stretch")
flagged = table.loc[table["flag"].astype(bool), field].tolist()
if flagged:
    st.warning(f"{kpi_id} differs notably for **{', '.join(map(str, flagged))}** (sample ≥ {min_n}).")
small = table.loc[~table["enough_samples"], field].tolist()
if small:
    st.caption(f"Too few samples to judge (n < {min_n}): {', '.join(map(str, small))}.")
st.dataframe(table, hide_index=True, width="stretch")
common.csv_download(table, f"fairness_{field}")
