"""Changes: each threshold, policy or model change with its KPIs in equal windows before and after."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import common

# under the plot, in a row: at its right the legend's longer names took a third of a chart at 1024 px
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0}
UNITS = {"decisions_per_day": "per day", "ece": "score", "brier": "score", "latency_p90_seconds": "seconds",
         "cost_per_decision": "currency"}

st.title("Changes")
ctx = common.context()
st.caption(f"{common.filters_caption(ctx)}. Changes made in this window, each judged on equal windows "
           "before and after it, in its scope.")

data = common.advice_for(ctx, "changes", "compare_changes")
changes = data["changes"]
if not changes:
    st.info("No change events in this window (or none in the filtered scope). Widen the time window, or record "
            "changes with `type: change` events.")
    st.stop()


def _value(kpi: dict, field: str) -> str:
    """A KPI's before, after or delta in its own unit (the rows mix rates, scores, hours and money, so
    the column holds text)."""
    value = kpi[field]
    if value is None:
        return common.MISSING
    if kpi["rate"]:
        return f"{value * 100:+.1f} pp" if field == "delta" else f"{value:.1%}"
    unit = UNITS[kpi["kpi"]]
    sign = "+" if field == "delta" and value > 0 else ""
    if unit == "seconds":  # a shorter latency keeps its unit: "-4.0 min"
        return sign + common._duration(float(value))
    return f"{sign}{value:.4f}" if unit == "score" else f"{sign}{value:,.2f}"


def _bucket(points: pd.DataFrame) -> str:
    """The series' bucket in a word, from its usual step: whole days or hours, anchored at the change."""
    step = points["bucket_us"].drop_duplicates().sort_values().diff().mode()
    return "day" if not step.empty and step.iloc[0] >= 86_400 * 10**6 else "hour"


def _shown(value: object) -> str:
    return common.MISSING if value is None else value if isinstance(value, str) else json.dumps(value)


moved = [c for c in changes if any(k["significant"] for k in c["kpis"])]
st.markdown(f"**{common.plural(len(changes), 'change')}** in this window; **{len(moved)}** moved a rate significantly "
            f"(p < {data['significance']:g}, equal windows of up to {data['window_seconds'] / 86400:g} days).")
ids = [c["id"] for c in changes]
by_id = {c["id"]: c for c in changes}
default = data["featured"]  # the change that moved its headline KPI most significantly, else the latest
choice = st.selectbox("Change", ids, index=default, key="change",
                      format_func=lambda i: f"{common.when(by_id[i]['changed_at'])} · {by_id[i]['label']}")
change = by_id[choice]
main = next((k for k in change["kpis"] if k["kpi"] == change["headline_kpi"]), None)
(st.success if main is not None and main["significant"] else st.info)(change["headline"])
scope = ", ".join(f"{k}={v}" for k, v in change["scope"].items()) or "everywhere"
st.caption(f"{common.when(change['changed_at'])} by **{change['actor']}** ({change['kind']}, scope {scope}): "
           f"{_shown(change['before'])} → {_shown(change['after'])}. Why: {change['reason'] or common.MISSING}")
if change["caveats"]:
    st.warning("\n".join(f"- {caveat}" for caveat in change["caveats"]), icon=":material/info:")
if change["pre"] is None:
    st.stop()
st.caption(f"Before: {common.when(change['pre']['start'])} to {common.when(change['pre']['end'])}; after: "
           f"{common.when(change['post']['start'])} to {common.when(change['post']['end'])}; "
           f"{common._duration(change['equal_window_seconds'])} each.")  # the caveats' unit ("33 h", not 1.4 days)

rates = [k for k in change["kpis"] if k["rate"] and k["pre"] is not None and k["post"] is not None]
if rates:
    fig = go.Figure()
    names = [f"{common.kpi_name(k['kpi'])}{' *' if k['significant'] else ''}" for k in rates]
    for k, name in zip(rates, names):
        fig.add_trace(go.Scatter(x=[k["pre"], k["post"]], y=[name, name], mode="lines", showlegend=False,
                                 line={"color": "#d62728" if k["significant"] else "#c7c7c7", "width": 4}))
    fig.add_trace(go.Scatter(x=[k["pre"] for k in rates], y=names, mode="markers", name="before",
                             marker={"size": 12, "color": "#1f77b4"},
                             text=[f"n={k['pre_n']:,}" for k in rates]))
    fig.add_trace(go.Scatter(x=[k["post"] for k in rates], y=names, mode="markers", name="after",
                             marker={"size": 12, "color": "#ff7f0e"},
                             text=[f"n={k['post_n']:,}, p={common.p_text(k['p_value'])}" if k["p_value"] is not None
                                   else f"n={k['post_n']:,}" for k in rates]))
    for color, meaning in (("#d62728", f"significant change (p < {data['significance']:g})"),
                           ("#c7c7c7", "change not significant")):  # the lines' colours, named in the legend
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=meaning, line={"color": color, "width": 4}))
    fig.update_layout(title="Rates before → after (* in the name: significant)", height=360,
                      xaxis_tickformat=".0%", legend=LEGEND_BELOW)
    st.plotly_chart(fig, width="stretch")

levels = [k for k in change["kpis"] if not k["rate"]]
for column, k in zip(common.tile_columns(len(levels)), levels, strict=True):
    column.metric(common.kpi_name(k["kpi"]), _value(k, "post"),
                  None if k["delta"] is None else _value(k, "delta"), border=True,
                  delta_color=common.delta_color(k["kpi"]) if k["kpi"] in common.SPECS else "off",
                  help=f"before: {_value(k, 'pre')} (n={k['pre_n']:,}), after n={k['post_n']:,}")

kpi_ids = [k["kpi"] for k in change["kpis"]]
series_kpi = st.selectbox("Over time", kpi_ids, index=kpi_ids.index(change["headline_kpi"]), key="change_kpi",
                          format_func=common.kpi_name)
points = pd.DataFrame(common.load_advice("changes", "change_series", ctx.url, change["id"], series_kpi,
                                         dict(ctx.filters)))
if not points.empty:
    points["bucket"] = pd.to_datetime(points["bucket_us"], unit="us", utc=True)
    fig = go.Figure()
    for side, name, color in (("pre", "before the change", "#1f77b4"), ("post", "after the change", "#ff7f0e")):
        part = points[points["side"] == side]
        fig.add_trace(go.Scatter(x=part["bucket"], y=part["value"], mode="lines+markers", name=name,
                                 line={"color": color}, text=[f"n={n:,}" for n in part["n"]]))
    at = pd.Timestamp(change["changed_at"])
    fig.add_vline(x=at, line_dash="dot", line_color="#7f7f7f", name=f"change {change['id']}")
    # a vline has no legend entry: an empty trace in its style names it
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"the change, {common.when(change['changed_at'])}",
                             line={"dash": "dot", "color": "#7f7f7f"}))
    fig.add_annotation(x=at, y=1, yref="paper", text=change["label"], showarrow=False, xanchor="left",
                       name=f"change {change['id']}")
    fig.update_layout(title=f"{common.kpi_name(series_kpi)} around the change (per bucket, in its scope)", height=360,
                      xaxis_title=f"{_bucket(points)} (UTC)", legend={**LEGEND_BELOW, "y": -0.4})
    if series_kpi in [k["kpi"] for k in rates] or series_kpi == "agent_accuracy":
        fig.update_yaxes(tickformat=".0%")
    common.plot(fig, f"No value of {common.kpi_name(series_kpi)} around this change.")

table = pd.DataFrame([{"kpi": common.kpi_name(k["kpi"]), "kpi_id": k["kpi"], "before": _value(k, "pre"),
                       "after": _value(k, "post"), "delta": _value(k, "delta"), "n before": k["pre_n"], "n after": k["post_n"],
                       "p-value": k["p_value"], "significant": k["significant"]} for k in change["kpis"]])
common.show_table(table, {"n before": "count", "n after": "count", "p-value": "p"}, column_config={
    "kpi_id": None,  # the CSV's, for a script re-reading it
    "p-value": st.column_config.NumberColumn(help="Two-proportion z-test, rates only (<0.001: smaller)."),
    "significant": st.column_config.CheckboxColumn(help=f"p < {data['significance']:g}; empty where not tested.")})
common.csv_download(table, f"change_{change['id']}")

st.subheader("All changes in this window")
# when, what and what it did first: after id, actor, kind and reason, the effect began 887 px into the 980 px
# table at 1440 px, its words cut at the edge
listing = pd.DataFrame([{"changed_at": c["changed_at"], "change": c["label"], "effect": c["headline"],
                         "actor": c["actor"], "reason": c["reason"], "kind": c["kind"], "caveats": len(c["caveats"]),
                         "id": c["id"]} for c in changes])
common.show_table(listing, {"changed_at": "time"})
common.csv_download(listing, "changes")
