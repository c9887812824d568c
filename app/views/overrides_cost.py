"""Overrides and cost: override impact, verdict and reason-code breakdowns, cost per decision by queue
split into model and review cost."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import common

OVERRIDE_KPIS = ("override_count", "override_error_delta", "harmful_override_rate", "cost_avoided",
                 "cost_per_decision")

REASON_ROW_PX = 28  # one reason code's bar and label


def reason_bars(codes: pd.DataFrame) -> go.Figure:
    """Reason codes as horizontal bars, the most frequent on top: upright columns slanted the long codes'
    labels ("policy_exception_requested") until they were hard to read."""
    kinds = [c for c in ("edit", "reject") if c in codes]
    order = codes.assign(total=codes[kinds].sum(axis=1)).sort_values("total")["reason_code"].tolist()
    fig = px.bar(codes, y="reason_code", x=kinds, orientation="h", height=max(320, 120 + REASON_ROW_PX * len(codes)),
                 labels={"reason_code": "reason code", "value": "edits and rejects", "variable": "verdict"})
    fig.update_yaxes(categoryorder="array", categoryarray=order, title=None)  # the codes name themselves
    return fig


st.title("Overrides & cost")
ctx = common.context()
st.caption(common.filters_caption(ctx))
filters = dict(ctx.filters)

summary = common.load("kpi_summary", ctx.url, ctx.start_us, ctx.end_us, filters)
if summary["kpis"] is None:
    st.info("No decisions match these filters in this window.")
    st.stop()
deltas, about_deltas = common.tile_deltas(ctx, summary, OVERRIDE_KPIS)
for column, kpi_id in zip(common.tile_columns(len(OVERRIDE_KPIS)), OVERRIDE_KPIS, strict=True):
    column.metric(common.kpi_name(kpi_id), common.fmt(kpi_id, summary["kpis"][kpi_id]),
                  **common.delta_args(kpi_id, deltas), help=common.SPECS[kpi_id].help, border=True)
st.caption(f"n = {summary['samples']['overrides']:,} overrides with an outcome, "
           f"{summary['samples']['decisions']:,} decisions. {about_deltas}")

COST_PARTS = common.dashboard_data.COST_PARTS
by_queue = common.load("segment_table", ctx.url, ctx.start_us, ctx.end_us, "queue", (*OVERRIDE_KPIS, *COST_PARTS),
                       filters)
if not by_queue.empty:
    left, right = st.columns(2)
    parts = by_queue.melt(id_vars=["queue", "n_decisions"], value_vars=list(COST_PARTS), var_name="part",
                          value_name="per decision")
    parts["part"] = parts["part"].str.removesuffix("_cost_per_decision")  # model, review
    common.plot(px.bar(parts, x="queue", y="per decision", color="part", hover_data=["n_decisions"],
                       title=common.title("Cost per decision by queue: model + review",
                                         common.HALF_WIDTH_TITLE_CHARS), height=340,
                       labels={"per decision": common.money_title("per decision")}),
                "No cost recorded in this window.", left)
    delta = px.bar(by_queue, x="queue", y="override_error_delta", hover_data=["n_overrides"],
                   title=common.title("Override error delta by queue (> 0: humans fixed more)",
                                      common.HALF_WIDTH_TITLE_CHARS), height=340,
                   labels={"override_error_delta": common.kpi_name("override_error_delta")})
    # in % as on the tile and in the table below (its axis read 0 to 1 under a tile of 82.1%)
    delta.update_layout(yaxis_tickformat=".0%").update_traces(
        hovertemplate="%{x}: %{y:.1%}<br>n = %{customdata[0]:,} overrides with an outcome<extra></extra>")
    common.plot(delta, "No override with an outcome in this window: no override error delta yet.", right)
    table = by_queue[["queue", *OVERRIDE_KPIS, "n_decisions", "n_overrides", *COST_PARTS]]
    # two tables of short headers, overrides apart from cost, as the two charts above: one of all ten columns was
    # 1,141 px wide in 562 px at 1024 px (sidebar open), everything after the harmful override rate out of sight.
    # Rates with one decimal as on every page (the grid's "percent" format printed "93.75%" next to "100%"); a
    # model cost of a fraction of a cent keeps its 3 significant digits
    st.markdown("**Overrides by queue**")
    common.show_table(table[["queue", "override_count", "override_error_delta", "harmful_override_rate",
                             "cost_avoided"]],  # n_overrides, the sample of the others, is the override count
                      {"override_error_delta": "rate", "harmful_override_rate": "rate", "cost_avoided": "money",
                       "override_count": "count"}, column_config={
                          "override_count": st.column_config.Column(
                              "overrides", help=common.SPECS["override_count"].help + " The sample of the "
                                                "columns after it."),
                          "override_error_delta": st.column_config.Column(
                              "error delta", help=common.SPECS["override_error_delta"].help),
                          "harmful_override_rate": st.column_config.Column(
                              "harmful", help=common.SPECS["harmful_override_rate"].help),
                          "cost_avoided": st.column_config.Column(
                              "cost avoided", help=common.SPECS["cost_avoided"].help)})
    st.markdown("**Cost per decision by queue**")
    common.show_table(table[["queue", "n_decisions", "cost_per_decision", *COST_PARTS]],
                      {"cost_per_decision": "money", "review_cost_per_decision": "money", "n_decisions": "count"},
                      column_config={
                          "n_decisions": "decisions",
                          "cost_per_decision": st.column_config.Column(
                              "per decision", help=common.SPECS["cost_per_decision"].help),
                          "model_cost_per_decision": st.column_config.Column(
                              "model", help="Model cost per decision."),
                          "review_cost_per_decision": st.column_config.Column(
                              "review", help="Review cost per decision (review time at the queue's hourly "
                                             "rate).")})
    common.csv_download(table, "overrides_cost_by_queue")

bd = common.load("breakdowns", ctx.url, ctx.start_us, ctx.end_us, filters)
left, right = st.columns(2)
with left:
    st.subheader("Primary verdicts")
    if bd["verdicts"].empty:
        st.info("No primary reviews in this window.")
    else:
        # one decimal, as every other share on the dashboard (plotly's default prints 3 significant digits:
        # "61.6%" next to "5.23%")
        pie = px.pie(bd["verdicts"], names="verdict", values="count", height=320).update_traces(
            texttemplate="%{percent:.1%}", hovertemplate="%{label}: %{value:,} (%{percent:.1%})<extra></extra>")
        st.plotly_chart(pie, width="stretch")
        common.csv_download(bd["verdicts"], "verdicts")
with right:
    st.subheader("Reason codes of edits and rejects")
    if bd["reason_codes"].empty:
        st.info("No edits or rejects in this window.")
    else:
        st.plotly_chart(reason_bars(bd["reason_codes"]), width="stretch")
        common.csv_download(bd["reason_codes"], "reason_codes")
