"""Calibration: reliability diagram with Wilson intervals; ECE, Brier and PSI over time per model version, with
change markers and drift markers (the drift alerts that began firing)."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import common

LEGEND_ROW_PX = 22  # one row of a horizontal legend
LEGEND_PER_ROW = 4  # model versions of a legend row at the narrowest width the page is read at
FULL_WIDTH_PLOT_PX = 600  # a full-width chart's plot at a 1000 px viewport: fewer rows of change words


def legend_rows(entries: int) -> int:
    """Rows a horizontal legend of `entries` model versions takes (the chart grows by them, not the plot
    shrinks)."""
    return -(-entries // LEGEND_PER_ROW)


def legend_below(fig: go.Figure) -> go.Figure:
    """Lay the legend out in rows under the plot: a column at its right ran past the chart's foot once a
    30-day window held more model versions than fit in 320 px, and the last ones were cut off."""
    fig.update_layout(legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0,
                              "xanchor": "left", "title_text": "model version"}, xaxis_title="")
    return fig


st.title("Calibration")
ctx = common.context()
st.caption(common.filters_caption(ctx))

bins = common.load("reliability", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))
filled = bins[bins["count"] > 0]
if filled.empty:
    st.info("No decisions with an outcome in this window: nothing to calibrate against.")
else:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"dash": "dash", "color": "grey"}))
    fig.add_trace(go.Scatter(
        x=filled["mean_confidence"], y=filled["accuracy"], mode="markers+lines", name="observed accuracy",
        error_y={"type": "data", "symmetric": False, "array": filled["accuracy_high"] - filled["accuracy"],
                 "arrayminus": filled["accuracy"] - filled["accuracy_low"]},
        text=[f"n={n:,}" for n in filled["count"]],
        hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{text}<extra></extra>"))
    fig.update_layout(title="Reliability diagram (95% Wilson intervals)", xaxis_title="mean confidence",
                      yaxis_title="accuracy", height=420, xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    st.plotly_chart(fig, width="stretch")
    common.csv_download(bins, "reliability_bins")

st.subheader("Over time per model version")
series = common.bucket_series(ctx, ("ece", "brier", "psi"), "model_version")
arriving = common.outcomes_arriving_since(ctx, series)  # before dropping buckets with no outcome yet
series = series[series["n_outcomes"] > 0] if not series.empty else series
if series.empty:
    st.info("No outcomes in this window yet.")
else:
    alerts = common.get_config().alerts
    colors = common.version_colors(ctx)  # a version keeps its colour across the three charts (and pages)
    for kpi_id, note in (("ece", "expected calibration error (lower is better)"),
                         ("brier", "lower is better"),
                         ("psi", "population stability of confidence vs the previous bucket")):
        name = common.kpi_name(kpi_id)
        points = series
        if kpi_id == "psi":
            # the PSI tile's and alert's gate (alerts.psi_min_decisions in the bucket and the one before): smaller
            # buckets (a canary, a retiring version, an hour) would draw noise as shifts past the lines below
            points = series[common.dashboard_data.psi_drawn(common.get_config(), series)]
        fig = px.line(points, x="bucket", y=kpi_id, color="model_version", markers=True, color_discrete_map=colors,
                      category_orders={"model_version": list(colors)},
                      height=320 + LEGEND_ROW_PX * legend_rows(points["model_version"].nunique()),
                      hover_data=["n_outcomes", "n_decisions", *(["n_reference_decisions"] if kpi_id == "psi" else [])],
                      labels={kpi_id: name, "model_version": "model version"}, title=f"{name}: {note}")
        common.time_axis(legend_below(fig), ctx)
        if kpi_id != "psi":  # PSI needs no outcome
            common.mark_outcomes_arriving(fig, ctx, arriving)
        if kpi_id == "psi":
            fig.add_hline(y=alerts.psi_warn, line_dash="dot", annotation_text=f"{alerts.psi_warn:g}: warning")
            fig.add_hline(y=alerts.psi_alert, line_dash="dash", line_color="red",
                          annotation_text=f"{alerts.psi_alert:g}: critical")
        # the gate is explained once, in the caption under the PSI chart; the note in place of an empty chart
        # only says that none reached it (it repeated the whole gate right above the same words)
        common.plot(common.mark_drift(common.mark_changes(fig, ctx, FULL_WIDTH_PLOT_PX), ctx),
                    "PSI: no bucket of this window is large enough to draw (see below)." if kpi_id == "psi"
                    else f"{name}: no value in this window.")
        if kpi_id == "psi":
            st.caption(f"A PSI point is drawn only where there are {alerts.psi_min_decisions:,} decisions of a model "
                       "version in the bucket and in the bucket before (alerts.psi_min_decisions, the gate of the "
                       "PSI tile and the HitlConfidencePsi alert): on fewer, PSI is mostly noise (about 18/n from one "
                       "unchanged distribution, 0.09 at 200 decisions, near the warning line). Grey dotted lines: "
                       "changes; red dashed lines (⚠): drift alerts that began firing (hover for which).")
    st.caption(" ".join(filter(None, (
        common.outcome_note(ctx),
        f"Grey from {arriving:%Y-%m-%d %H:%M} UTC on (ECE, Brier): outcomes still arriving, so those buckets stand "
        "on fewer outcomes than older ones and are not yet comparable." if arriving is not None else "",
        common.whole_buckets_note(ctx)))))
    common.csv_download(series, "calibration_over_time")
