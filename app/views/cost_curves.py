"""Cost curves: expected cost and error rate per auto-approve threshold, the advised threshold, and a
slider that shows what another threshold would have done to the last window."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import common
from app.chart_marks import threshold_markers

st.title("Cost curves")
ctx = common.context()
st.caption(common.filters_caption(ctx) + ". Scopes: risk class x action type, resolved decisions of the window.")

data = common.advice_for(ctx, "thresholds", "threshold_advice")
rank = {r: i for i, r in enumerate(common.risk_order({s["risk_class"] for s in data["scopes"]}))}
# the picker lists the risk classes in SLA order (critical first), as every page does
scopes: list[dict[str, Any]] = sorted(data["scopes"], key=lambda s: (rank[s["risk_class"]], str(s["action_type"])))
if not scopes:
    st.info("No resolved decisions match these filters in this window.")
    st.stop()


def _label(scope: dict[str, Any]) -> str:
    rec = scope["recommended_threshold"]
    tail = f"recommend {rec:.2f}" if rec is not None else "no advice"
    return f"{scope['risk_class']} / {scope['action_type']} ({tail})"


def _default(items: list[dict[str, Any]]) -> int:
    """The biggest scope with a recommendation and a known current threshold, else the biggest one."""
    ranked = sorted(range(len(items)), key=lambda i: (items[i]["recommended_threshold"] is not None,
                                                      items[i]["current_threshold"] is not None,
                                                      items[i]["decisions"]), reverse=True)
    return ranked[0]


labels = [_label(s) for s in scopes]
chosen = st.selectbox("Scope", labels, index=_default(scopes), key="cost_scope")
scope = scopes[labels.index(chosen)]
current, rec, cap = scope["current_threshold"], scope["recommended_threshold"], scope["max_error_rate"]

# ---- headline


def _rate(value: float, cap: float) -> str:
    """An error rate in % with one decimal, as every rate on the dashboard; two only where one would read the
    same as the cap's it differs from ("5.03% against a cap of 5.00%", not "5.0% against 5.0%")."""
    text = f"{value:.1%}"
    return f"{value:.2%}" if text == f"{cap:.1%}" and value != cap else text


def _breach(scope: dict[str, Any]) -> str | None:
    """Why the current threshold is no option, or None: it broke the error cap in this window. That
    leads (red), before any saving: a cheaper current threshold is cheap because it lets errors through."""
    at_current = scope["at_current"]
    if at_current is None or at_current.get("error_rate") is None or at_current["error_rate"] <= scope["max_error_rate"]:
        return None
    return (f"The current threshold **{scope['current_threshold']:.2f}** breaks the error cap: its error rate in "
            f"this window was **{_rate(at_current['error_rate'], scope['max_error_rate'])}** against a cap of "
            f"{scope['max_error_rate']:.1%}.")


def _versus(scope: dict[str, Any], breach: str | None) -> str:
    """The recommendation against the current threshold, in words."""
    current, saving = scope["current_threshold"], scope["saving_per_1000"]
    if current is None:
        return "No current threshold is known (no matching threshold change event)."
    if saving is not None and saving > 0:
        return f"Against the current **{current:.2f}** it saves **{saving:,.2f} per 1,000 decisions**."
    if breach and saving is not None and not common.shows_as_zero(f"{-saving:,.2f}"):
        return (f"Keeping within the cap costs **{-saving:,.2f} more per 1,000 decisions** than the current "
                f"**{current:.2f}**.")
    return f"The current **{current:.2f}** is already as cheap."


if scope["refused"]:
    st.warning(f"No advice for {scope['risk_class']} / {scope['action_type']}: {scope['refused']}.")
else:
    interval = scope["interval"]
    within = f" ({data['interval_level']:.0%} bootstrap interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else ""
    breach = _breach(scope)
    advice = (f"Recommended auto-approve threshold **{rec:.2f}**{within}: expected cost "
              f"{scope['cost_at_recommended']:,.2f} per 1,000 decisions at an error rate of "
              f"{_rate(scope['at_recommended']['error_rate'], cap)} (cap {cap:.1%}). {_versus(scope, breach)}")
    if breach:
        st.error(breach, icon=":material/error:")
        st.info(advice)
    else:
        st.success(advice)
cols = common.tile_columns(4)
cols[0].metric("Recommended", "-" if rec is None else f"{rec:.2f}", border=True)
cols[1].metric("Current", "-" if current is None else f"{current:.2f}", border=True,
               help=None if scope["current_change"] is None else
               f"{'set by' if scope['current_change']['from'] == 'after' else 'replaced by'} threshold change "
               f"{scope['current_change']['id']} at {scope['current_change']['changed_at']}")
cols[2].metric("Saving per 1,000", "-" if scope["saving_per_1000"] is None else f"{scope['saving_per_1000']:,.2f}",
               border=True)
cols[3].metric("Outcomes used", f"{scope['outcomes']:,} of {scope['decisions']:,}", border=True,
               help=f"at least {data['min_outcomes']} needed for advice")
for caveat in scope["caveats"]:
    st.caption(f"Note: {caveat}")

curve = pd.DataFrame(scope["curve"])
if curve.empty:
    st.stop()

# ---- chart (drawn after the slider is read, above it)
chart = st.container()
grid = [float(t) for t in curve["threshold"]]
start = current if current in grid else rec if rec is not None else 0.8
pick = float(st.select_slider("What if the threshold had been ...", options=grid, value=start,
                              format_func=lambda t: f"{t:.2f}", key="cost_slider"))
row = curve.loc[curve["threshold"] == pick].iloc[0]
base = scope["at_current"]


def _what_if(key: str, color: str, scale: float = 1.0, spec: str = ",.2f", unit: str = "") -> dict[str, Any]:
    """st.metric's delta arguments of the slider's threshold against the current one; a change that shows as
    zero (the slider on the current threshold) reads a neutral "±0", without colour or arrow."""
    if base is None or base.get(key) is None or pd.isna(row[key]):
        return {"delta": None}
    text = format((row[key] - base[key]) * scale, "+" + spec)
    if common.shows_as_zero(text):
        return {"delta": "±0", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text + unit, "delta_color": color}


st.markdown(f"At **t = {pick:.2f}** the last window would have had (change vs the current threshold):")
m = common.tile_columns(4)
m[0].metric("Auto rate", f"{row['auto_rate']:.1%}", **_what_if("auto_rate", "off", 100, ".1f", " pp"), border=True)
m[1].metric("Error rate", _rate(row["error_rate"], cap), **_what_if("error_rate", "inverse", 100, ".1f", " pp"),
            border=True)
m[2].metric("Cost per 1,000", f"{row['cost_per_1000']:,.2f}", **_what_if("cost_per_1000", "inverse"), border=True)
m[3].metric("Review hours per 1,000", f"{row['review_hours_per_1000']:,.2f}",
            **_what_if("review_hours_per_1000", "inverse"), border=True)

fig = go.Figure()
fig.add_trace(go.Scatter(x=curve["threshold"], y=curve["cost_per_1000"], name="cost per 1,000", mode="lines"))
fig.add_trace(go.Scatter(x=curve["threshold"], y=curve["error_rate"], name="error rate", mode="lines",
                         yaxis="y2", line={"dash": "dot"}))
fig.add_trace(go.Scatter(x=[grid[0], grid[-1]], y=[cap, cap], name=f"error cap {cap:.1%}", mode="lines",
                         yaxis="y2", line={"dash": "dash", "color": "#d62728"}))
for value, color, dash, label, position in threshold_markers(
        [(current, "current", "#7f7f7f"), (rec, "recommended", "#2ca02c"), (pick, "slider", "#9467bd")]):
    fig.add_vline(x=value, line_dash=dash, line_color=color, annotation_text=label,
                  annotation_position=position, annotation_font_color=color)
fig.update_layout(height=420, xaxis_title="auto-approve threshold",
                  yaxis_title=common.money_title("expected cost per 1,000 decisions"),
                  yaxis2={"title": "error rate", "overlaying": "y", "side": "right", "tickformat": ".1~%",
                          "rangemode": "tozero", "tickmode": "auto", "showgrid": False},
                  legend={"orientation": "h", "y": -0.2}, margin={"t": 40},
                  title=f"{scope['risk_class']} / {scope['action_type']}: cost and error rate by threshold")
chart.plotly_chart(fig, width="stretch")

# ---- table
# short headers, each with its help: "cost per 1000", "reviews per 1000", "review hours per 1000" and "within the
# error cap" made the table 696 px wide in 562 px at 1024 px (sidebar open), the cap scrolled out of sight
common.show_table(curve, {"cost_per_1000": "money", "auto_rate": "rate", "error_rate": "rate"}, column_config={
    "cost_per_1000": st.column_config.Column("cost", help="Expected cost per 1,000 decisions (errors and reviews)."),
    "auto_rate": st.column_config.Column("auto", help="Share of decisions auto-approved at this threshold."),
    "error_rate": st.column_config.Column("errors", help="Expected share of decisions whose final action is wrong "
                                                         "(auto-approved errors and errors a review misses)."),
    "reviews_per_1000": st.column_config.NumberColumn("reviews", help="Reviews per 1,000 decisions."),
    "review_hours_per_1000": st.column_config.NumberColumn("review h", help="Review hours per 1,000 decisions."),
    "within_cap": st.column_config.CheckboxColumn("in cap", help=f"Error rate within the cap of {cap:.1%}.")})
st.caption("Per 1,000 decisions at each threshold: expected cost, reviews and review hours; auto: share "
           "auto-approved; errors: expected share of decisions whose final action is wrong; in cap: errors within "
           f"the cap of {cap:.1%}.")
common.csv_download(curve, f"cost_curve_{scope['risk_class']}_{scope['action_type']}")
