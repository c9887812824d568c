"""Autonomy ladder: per action type and model version, the stage (shadow -> assisted -> auto), whether it is
ready for the next one or what is missing, the daily agreement and accuracy against the bars, and a table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import common

VERDICT_BADGE = {"ready": ("green", "ready for {next}"), "holds": ("green", "holds the auto stage"),
                 "not ready": ("orange", "not ready for {next}"), "demotion warning": ("red", "demotion warning"),
                 "inactive": ("gray", "inactive")}
BAND_COLORS = {"agreement": ("#1f77b4", "rgba(31,119,180,0.15)"), "accuracy": ("#2ca02c", "rgba(44,160,44,0.15)")}

st.title("Autonomy ladder")
ctx = common.context()
st.caption(common.filters_caption(ctx))
data = common.advice_for(ctx, "autonomy", "autonomy_ladder")
rows: list[dict[str, Any]] = data["rows"]
if not rows:
    st.info("No decisions in this window.")
    st.stop()


def _label(row: dict[str, Any]) -> str:
    return f"{row['action_type']} · {row['model_version']}"


def _pct(s: dict[str, Any]) -> str:
    return "-" if s["value"] is None else f"{s['value']:.1%} [{s['low']:.1%}, {s['high']:.1%}], n={s['n']:,}"


# ---- headline ----------------------------------------------------------------------------------
ready = [r for r in rows if r["verdict"] == "ready"]
warned = [r for r in rows if r["verdict"] == "demotion warning"]
if ready:
    st.success("Ready for the next step: " + "; ".join(
        f"**{_label(r)}** ({r['current_stage']} → {r['next_stage']}, {r['streak_days']} days in a row)"
        for r in ready))
else:
    st.info("No action type is ready for the next step in this window.")
if warned:
    st.warning("No longer meets the criteria of its auto stage: " + ", ".join(f"**{_label(r)}**" for r in warned))
crit = data["criteria"]
st.caption(" · ".join(
    f"To leave {name.split('_')[0]}: ≥ {c['min_samples']:,} samples, agreement ≥ {c['min_agreement']:.0%} and "
    f"accuracy ≥ {c['min_accuracy']:.0%} (Wilson {crit['interval_level']:.0%} lower bound), ECE ≤ "
    f"{c['max_ece']:.2f}, each of the last {c['stable_days']} days meeting the bars"
    for name, c in (("shadow_exit", crit["shadow_exit"]), ("assisted_exit", crit["assisted_exit"]))))

# ---- the ladder ------------------------------------------------------------------------------------
st.caption("Rungs: **shadow** (humans act, the agent only recommends) → **assisted** (review, with "
           "auto-approve above a confidence threshold) → **auto** (executed, with a post-hoc audit sample).")
show_inactive = st.toggle("Show inactive model versions (no decisions in the evaluation period)", value=False)
shown = [r for r in rows if show_inactive or r["verdict"] != "inactive"] or rows
for action_type in sorted({str(r["action_type"]) for r in shown}):
    st.subheader(action_type)
    for row in (r for r in shown if str(r["action_type"]) == action_type):
        name, rungs, verdict = st.columns([2, 5, 4])
        name.markdown(f"**{row['model_version']}**  \n{row['agent_id']} · {common.plural(row['decisions'], 'decision')}")
        cells = []
        for stage in data["stages"]:
            cells.append(f":blue-background[**● {stage}**]" if stage == row["current_stage"] else f":gray[○ {stage}]")
        rungs.markdown(" → ".join(cells))
        color, badge = VERDICT_BADGE[row["verdict"]]
        verdict.badge(badge.format(next=row["next_stage"]), color=color)
        if row["missing"]:
            what = "missing" if row["verdict"] != "demotion warning" else "no longer met"
            with verdict.expander(f"{len(row['missing'])} {what}: {row['missing'][0]}"):
                st.markdown("\n".join(f"- {m}" for m in row["missing"]))

# ---- daily chart -------------------------------------------------------------------------------------
st.subheader("Day by day")
labels = [_label(r) for r in rows]  # inactive ones too: their history is still in the window
# The interesting one first: a row ready to climb, else an active one still in shadow mode.
default = next((i for i, r in enumerate(rows) if r["verdict"] == "ready"),
               next((i for i, r in enumerate(rows) if r["current_stage"] == "shadow" and r["verdict"] != "inactive"),
                    0))
chosen = rows[labels.index(st.selectbox("Action type · model version", labels, index=default))]
c = crit[chosen["criteria"]]
daily = pd.DataFrame([{"day": d["day"], "n": d["n"], "status": d["status"],
                       **{f"{m}{k}": d[m][key] for m in ("agreement", "accuracy")
                          for k, key in (("", "value"), ("_low", "low"), ("_high", "high"), ("_n", "n"))}}
                      for d in chosen["daily"]])
fig = go.Figure()
for metric, bar in (("agreement", c["min_agreement"]), ("accuracy", c["min_accuracy"])):
    line, band = BAND_COLORS[metric]
    seen = daily[daily[f"{metric}_n"] > 0]  # the band skips days without a sample of this figure
    fig.add_trace(go.Scatter(x=list(seen["day"]) + list(seen["day"][::-1]),
                             y=list(seen[f"{metric}_high"]) + list(seen[f"{metric}_low"][::-1]),
                             fill="toself", fillcolor=band, line={"width": 0}, mode="lines", hoverinfo="skip",
                             name=f"{metric} {crit['interval_level']:.0%} Wilson band"))
    fig.add_trace(go.Scatter(x=daily["day"], y=daily[metric], mode="lines+markers", name=metric,
                             line={"color": line}, customdata=daily[f"{metric}_n"],
                             hovertemplate=f"%{{x}}<br>{metric} %{{y:.1%}}<br>n=%{{customdata}}<extra></extra>"))
    fig.add_hline(y=bar, line_dash="dash", line_color=line, annotation_text=f"{metric} bar {bar:.0%}",
                  annotation_position="bottom right" if metric == "accuracy" else "top right")
fig.add_vrect(x0=chosen["evaluation"]["start"][:10], x1=daily["day"].iloc[-1], fillcolor="grey", opacity=0.08,
              line_width=0, annotation_text=f"evaluation: last {chosen['evaluation']['days']} days",
              annotation_position="top left")
fig.update_layout(title=common.title(f"{_label(chosen)}: daily agreement and accuracy ({chosen['current_stage']} "
                                     f"stage, streak {chosen['streak_days']} days)"),
                  yaxis_title="share", yaxis_range=[0, 1.02], xaxis_title="day (UTC)",
                  yaxis_tickformat=".0%", height=420)
# Mark the changes that may apply to this row (its rollout, threshold or policy changes).
row_ctx = common.Context(ctx.url, ctx.window, ctx.start_us, ctx.end_us,
                         {**ctx.filters, **{k: str(chosen[k]) for k in ("action_type", "model_version", "agent_id")}})
common.mark_changes(fig, row_ctx)
st.plotly_chart(fig, width="stretch")
st.caption(f"Agreement {_pct(chosen['agreement'])}; accuracy {_pct(chosen['accuracy'])}; ECE "
           f"{'-' if chosen['ece'] is None else format(chosen['ece'], '.3f')} (n={chosen['ece_n']:,}), over the "
           f"evaluation period. Days with fewer than {crit['min_daily_samples']} samples of a figure are not "
           "judged on it; recent days have few outcomes yet (they arrive later).")

# ---- table ------------------------------------------------------------------------------------------
table = pd.DataFrame([{
    "action_type": r["action_type"], "model_version": r["model_version"], "agent_id": r["agent_id"],
    "stage": r["current_stage"], "verdict": r["verdict"], "next_stage": r["next_stage"],
    "decisions": r["decisions"], "samples": r["samples"],
    **{f"{m}{k}": r[m][key] for m in ("agreement", "accuracy")
       for k, key in (("", "value"), ("_low", "low"), ("_high", "high"), ("_n", "n"))},
    "ece": r["ece"], "ece_n": r["ece_n"], "streak_days": r["streak_days"],
    "evaluation_days": r["evaluation"]["days"], "missing": "; ".join(r["missing"]),
} for r in rows])
common.show_table(table, {**{f"{m}{k}": "rate" for m in ("agreement", "accuracy") for k in ("", "_low", "_high")},
                         **dict.fromkeys(("decisions", "samples", "agreement_n", "accuracy_n", "ece_n"), "count"),
                         "ece": "score"},
                  column_config={"ece_n": f"{common.kpi_name('ece')} n"})
common.csv_download(table, "autonomy_ladder")
