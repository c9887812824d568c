"""Fairness: each rate per segment value with its Wilson interval against the overall rate; a gap is flagged
only when the interval excludes the overall rate and the sample is large enough. A second tab asks whether
reviewers intervene more for one group, and whether that holds on items where the agent was right."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import common

RED, BLUE, GREY = "#d62728", "#1f77b4", "#7f7f7f"
COLUMNS = ["key", "group", "rate", "rate_id", "population", "decisions", "value", "count", "n", "low", "high", "overall",
           "gap", "direction", "enough_samples", "flagged", "flagged_adjusted"]


def _label(group: Any) -> str:
    return "(none)" if group is None else str(group)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _finding(row: dict[str, Any], level: float) -> str:
    sign = "+" if row["gap"] > 0 else "-"
    adjusted = "; also after the Bonferroni adjustment" if row["flagged_adjusted"] else ""
    return (f"**{_label(row['group'])}**: {_pct(row['value'])} vs {_pct(row['overall'])} overall "
            f"({sign}{abs(row['gap']) * 100:.1f} pp, n = {row['n']:,}; {level:.0%} interval "
            f"{_pct(row['low'])} to {_pct(row['high'])}{adjusted})")


def _headline(rows: list[dict[str, Any]], rate: str, key: str, level: float, min_samples: int) -> None:
    flagged = sorted((r for r in rows if r["flagged"]), key=lambda r: -abs(r["gap"]))
    if flagged:
        # The overall includes every group: one group far above it pushes the others below it. Lead with the
        # side of the largest gap and name the other side apart.
        side = flagged[0]["direction"]
        lead = [r for r in flagged if r["direction"] == side]
        rest = [r for r in flagged if r["direction"] != side]
        st.warning(f"{common.kpi_name(rate)} by {key}: significant gap for " + "; ".join(_finding(r, level) for r in lead) + ".",
                   icon=":material/balance:")
        if rest:
            st.caption(f"Also flagged, {rest[0]['direction']} the overall rate: " + ", ".join(
                f"{_label(r['group'])} ({r['gap'] * 100:+.1f} pp, n = {r['n']:,})" for r in rest)
                + ". The overall rate includes every group, so a group far on one side moves the others to "
                  "the other side.")
    elif any(r["enough_samples"] for r in rows):
        st.success(f"{common.kpi_name(rate)} by {key}: no significant gap (every interval with n ≥ {min_samples:,} contains "
                   "the overall rate).")
    else:
        st.info(f"{common.kpi_name(rate)} by {key}: no value has n ≥ {min_samples:,}, too few to judge.")


def _bars(rows: list[dict[str, Any]], name: str, showlegend: bool = False) -> go.Bar:
    values = [r["value"] for r in rows]
    return go.Bar(
        x=[_label(r["group"]) for r in rows], y=values, name=common.kpi_name(name), showlegend=showlegend,
        marker_color=[RED if r["flagged"] else (BLUE if r["enough_samples"] else GREY) for r in rows],
        error_y={"type": "data", "symmetric": False,
                 "array": [None if r["value"] is None else r["high"] - r["value"] for r in rows],
                 "arrayminus": [None if r["value"] is None else r["value"] - r["low"] for r in rows]},
        customdata=[[r["n"], r["gap"] or 0.0] for r in rows],
        hovertemplate="%{x}: %{y:.1%}<br>n = %{customdata[0]:,}<br>gap %{customdata[1]:+.1%}<extra></extra>")


def _chart(rows: list[dict[str, Any]], rate: str, key: str, overall: float | None, level: float) -> go.Figure:
    fig = go.Figure(_bars(rows, rate))
    if overall is not None:
        fig.add_hline(y=overall, line_dash="dash", line_color="black", annotation_text=f"overall {_pct(overall)}")
    fig.update_layout(height=380, yaxis_tickformat=".0%", yaxis_title=common.kpi_name(rate), xaxis_title=key,
                      title=common.title(f"{common.kpi_name(rate)} by {key} with {level:.0%} Wilson intervals "
                                         "(red: flagged; grey: n too small)"))
    return fig


st.title("Fairness")
ctx = common.context()
st.caption(common.filters_caption(ctx))
report = common.advice_for(ctx, "fairness", "fairness_report")
if not report["decisions"]:
    st.info("No decisions in this window for these filters.")
    st.stop()
keys = report["available_keys"]
left, right = st.columns(2)
key = left.selectbox("Segment key", keys, index=keys.index("segment.region") if "segment.region" in keys else 0,
                     key="fairness_key")
judged = [r for r in report["rates"] if r not in ("reviewer_intervention_rate", "unnecessary_intervention_rate",
                                                   "missed_error_rate")]
rate = right.selectbox("Rate", judged, key="fairness_rate", format_func=common.kpi_name,
                       help="\n\n".join(f"**{common.kpi_name(r)}**: {report['rates'][r]['help']}" for r in judged))
if key not in report["keys"]:
    report = common.advice_for(ctx, "fairness", "fairness_report", [*report["keys"], key])
level, min_samples = report["level"], report["min_samples"]
mine = [r for r in report["segments"] if r["key"] == key]
if not mine:
    st.info(f"No decision of this window carries {key}.")
    st.stop()
st.caption(f"Flagged: the value's {level:.0%} Wilson interval excludes the overall rate and n ≥ {min_samples:,} "
           f"(config fairness). {report['comparisons']:,} comparisons in this report, so about "
           f"{(1 - level) * report['comparisons']:.0f} flags are expected by chance if no group differs; the "
           f"Bonferroni-adjusted level ({report['adjusted_level']:.4%}) controls that.")

rates_tab, reviewers_tab = st.tabs(["Rates", "Reviewers"])
with rates_tab:
    rows = [r for r in mine if r["rate"] == rate]
    _headline(rows, rate, key, level, min_samples)
    st.plotly_chart(_chart(rows, rate, key, report["overall"][rate]["value"], level), width="stretch")

with reviewers_tab:
    st.markdown("Do reviewers intervene more for one group? **reviewer intervention rate** is over decisions a "
                "human resolved; **unnecessary intervention rate** only over those where the agent was right "
                "(outcome known). A gap in the first but not the second means humans fix more because the agent "
                "is worse there; a gap in the second means humans treat the group differently.")
    for reviewer_rate in ("reviewer_intervention_rate", "unnecessary_intervention_rate"):
        _headline([r for r in mine if r["rate"] == reviewer_rate], reviewer_rate, key, level, min_samples)
    fig = go.Figure()
    for reviewer_rate in ("reviewer_intervention_rate", "unnecessary_intervention_rate", "missed_error_rate"):
        bars = _bars([r for r in mine if r["rate"] == reviewer_rate], reviewer_rate, showlegend=True)
        bars.marker.line = {"color": "black", "width": 1}
        bars.marker.pattern = {"shape": {"reviewer_intervention_rate": "", "unnecessary_intervention_rate": "/",
                                         "missed_error_rate": "."}[reviewer_rate]}
        fig.add_trace(bars)
    fig.update_layout(barmode="group", height=400, yaxis_tickformat=".0%", xaxis_title=key,
                      title=common.title(f"Reviewer rates by {key} (red: flagged against the overall rate of the "
                                         "same population)"))
    st.plotly_chart(fig, width="stretch")

# the rate in words; its id stays in the CSV (rate_id) for a script joining the file with the JSON report
table = pd.DataFrame([{**r, "rate": common.kpi_name(r["rate"]), "rate_id": r["rate"]} for r in mine], columns=COLUMNS)
common.show_table(table, {**dict.fromkeys(("value", "low", "high", "overall"), "rate"), "gap": "points",
                          **dict.fromkeys(("decisions", "count", "n"), "count")},
                  column_config={"rate_id": None, "flagged_adjusted": "flagged (Bonferroni)"})
common.csv_download(table, f"fairness_{key}")
