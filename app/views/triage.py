"""Triage: the slices that deserve more human attention now, ranked by expected error cost avoided per
review hour, with their reasons."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from app import common

st.title("Triage")
ctx = common.context()
st.caption(common.filters_caption(ctx))
data = common.advice_for(ctx, "triage", "triage")
rows: list[dict[str, Any]] = data["rows"]
if not rows:
    st.info("No slice has enough decisions in this window to rank.")
    st.stop()


# The advice's option ids in words, as the legend and the table read them ("second_review" stood in both)
OPTION_WORDS = {"audit_auto": "review auto-approved items", "second_review": "second review of decided items"}


def _label(s: dict[str, str]) -> str:
    extra = [f"{k.removeprefix('segment.')}={v}" for k, v in s.items() if k.startswith("segment.")]
    return f"{s['risk_class']} · {s['action_type']} · {s['model_version']}" + (f" · {', '.join(extra)}" if extra else "")


top = rows[0]
paying = [r for r in rows if r["pays_off"]]
if top["pays_off"]:
    st.warning(f"Most urgent: **{_label(top['slice'])}**: {top['recommendation']} "
               f"(about {top['score']:,.0f} of error cost avoided per review hour).")
else:
    st.info("No slice's extra review hour avoids more error cost than it costs.")
st.caption(f"{len(paying)} of the top {common.plural(len(rows), 'slice')} (of {data['candidates']} scored) "
           f"{'pays' if len(paying) == 1 else 'pay'} for an extra review "
           "hour. Score = estimated error rate of the items (auto-approved: from audits; decided: residual) x "
           "cost of such an error x catch rate of a review / review hours per item.")

table = pd.DataFrame([{
    "rank": r["rank"], "slice": _label(r["slice"]), "score_per_hour": r["score"], "decisions": r["decisions"],
    "option": OPTION_WORDS.get(r["option"], str(r["option"]).replace("_", " ")), "pays_off": r["pays_off"],
    "hourly_rate": r["hourly_rate"],
    "value_per_item": r["value_per_item"], "review_cost_per_item": r["review_cost_per_item"],
    "recommendation": r["recommendation"], "reasons": "; ".join(r["reasons"])} for r in rows])
fig = px.bar(table, x="score_per_hour", y="slice", color="option", orientation="h",
             height=max(320, 28 * len(table)), hover_data=["rank", "decisions", "recommendation"],
             title="Expected error cost avoided per review hour",
             color_discrete_map={OPTION_WORDS["audit_auto"]: "#d62728", OPTION_WORDS["second_review"]: "#1f77b4"},
             labels={"option": "extra review", "score_per_hour": "cost avoided per review hour"})
# Rank order top down whatever the option: plotly orders the categories of a coloured bar chart trace by
# trace (all of one option first), which put the auto-approved items' bars on top out of rank.
fig.update_yaxes(categoryorder="array", categoryarray=list(table["slice"])[::-1])
fig.add_vline(x=float(top["hourly_rate"]), line_dash="dash")
# Above the plot, not at the line's top inside it, where it ran over the first bar.
fig.add_annotation(x=float(top["hourly_rate"]), y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                   text=f"hourly rate {float(top['hourly_rate']):,.0f}", name="hourly rate")
# the legend under the plot: at its right, the options' words took the bars' room at 1024 px
fig.update_layout(yaxis_title="", xaxis_title=f"{common.money_unit()} per review hour",
                  legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
                  margin_b=110)
st.plotly_chart(fig, width="stretch")
common.show_table(table, {**dict.fromkeys(("score_per_hour", "hourly_rate", "value_per_item", "review_cost_per_item"),
                                          "money"), "decisions": "count"},
                  column_config={"score_per_hour": "cost avoided per review hour", "option": "extra review"})
common.csv_download(table, "triage")
