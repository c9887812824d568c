"""Quality: precision and recall of the agent's actions, acceptance, defects by action type and reason,
error cost, guardrails, model versions (canary vs stable) and reviewer accuracy on gold items.

Which reviewer, version or rule is flagged is decided in `collectors.advice`, with the minimum samples
it reports (`reviewer_min_items`, `min_samples`); the page only says so."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from app import common

GUARD_COUNTS = ("warn_rate", "failed_went_through_n", "failed_auto", "failed_approved", "defect_failed_through_n")
ROLE_SYMBOLS = {"stable": "circle", "canary": "diamond", "previous": "circle-open"}  # colour is the version's

st.title("Quality")
ctx = common.context()
st.caption(common.filters_caption(ctx))
data = common.advice_for(ctx, "quality", "quality_report")
if not data["decisions"]:
    st.info("No decisions in this window.")
    st.stop()


def _pct(s: dict[str, Any]) -> str:
    return common.MISSING if s["value"] is None else f"{s['value']:.1%}"


def _ci(s: dict[str, Any]) -> str:
    if s["value"] is None:
        return "no sample"
    n = s.get("rows", s["n"])
    return f"95% Wilson interval {s['low']:.1%} to {s['high']:.1%}; n = {n:,}"


def _flat(rows: list[dict[str, Any]], keys: tuple[str, ...], shares: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([{**{k: r[k] for k in keys},
                          **{f"{s}{suffix}": (r[s][part] if isinstance(r[s], dict) else None)
                             for s in shares for suffix, part in (("", "value"), ("_low", "low"), ("_high", "high"),
                                                                  ("_n", "n"))}} for r in rows])


PAIR_COLUMNS = ("model_version", "role", "decisions", "accuracy", "accuracy_n", "accuracy_delta", "accuracy_p_value",
                "ece")


def _pair_table(pair: str, group: pd.DataFrame, level: float, floor: int) -> None:
    """One agent and action type's versions: eight short columns (one table of every pair, with the pair, the
    interval and the intervention test in columns of their own, was 1,405 px wide in 562 px at 1024 px with the
    sidebar open), the intervention rates in a line under it."""
    st.markdown(f"**{pair}**")
    less = f"less accurate than stable (p < {level:g}, on at least {floor:,} outcomes each)"
    common.show_table(group[list(PAIR_COLUMNS)], {
        "decisions": "count", "accuracy": "rate", "accuracy_n": "count", "accuracy_delta": "points",
        "accuracy_p_value": "p", "ece": "score"}, flagged=group["less_accurate"].tolist(),
        flag_columns=("accuracy", "accuracy_delta"), column_config={
            "model_version": "version",
            "accuracy_n": st.column_config.NumberColumn("n", help="Outcomes behind the accuracy."),
            "accuracy_delta": st.column_config.NumberColumn(
                "vs stable", help=f"Accuracy minus the stable version's, in points; shaded: {less}."),
            "accuracy_p_value": st.column_config.NumberColumn("p", help="Accuracy against the stable version's.")})
    st.caption("Intervention rate: " + ", ".join(_intervention(row) for row in group.itertuples()) + ".")


def _intervention(row: Any) -> str:
    """"v2 12.0% of 50 (p 0.41 against stable)": a version's intervention rate, its sample and its test."""
    rate = common.MISSING if pd.isna(row.intervention_rate) else f"{row.intervention_rate:.1%}"
    test = "" if pd.isna(row.intervention_p_value) else f" (p {common.p_text(row.intervention_p_value)} against stable)"
    return f"{row.model_version} {rate} of {row.intervention_n:,}{test}"

# ---- headline -------------------------------------------------------------------------------------
pr, acc, defects = data["precision_recall"]["total"], data["acceptance"]["total"], data["defects"]["total"]
gold, prim = data["gold_accuracy"], data["reviewer_accuracy"]
floor, items, level = data["min_samples"], data["reviewer_min_items"], data["significance"]
judged = f"reviewers on at least {items:,} judged items, versions on at least {floor:,} outcomes"
worse = [v for v in data["model_versions"] if v["flagged"]]
notes = []
if gold["flagged"] or prim["flagged"]:
    notes.append("reviewers below their expected accuracy: **" + ", ".join(
        sorted(set(gold["flagged"]) | set(prim["flagged"]))) + "**")
if worse:
    notes.append("versions less accurate than stable: **" + ", ".join(
        f"{v['model_version']} ({v['action_type']})" for v in worse) + "**")
if notes:
    text = "; ".join(notes)
    st.warning(text[0].upper() + text[1:] + f" ({judged}).")
else:
    st.success(f"No reviewer or model version stands out in this window ({judged}; fewer are not judged).")
cols = common.tile_columns(5)
cols[0].metric("Precision", _pct(pr["precision"]), help="P(agent right | went through as proposed). " + _ci(pr["precision"]))
cols[1].metric("Recall", _pct(pr["recall"]), help="P(went through | agent right). " + _ci(pr["recall"]))
cols[2].metric("Acceptance", _pct(acc), help="Human-decided items approved as proposed. " + _ci(acc))
cols[3].metric("Defect rate", _pct(defects), help="Final action wrong. " + _ci(defects))
cost = data["error_cost"]["total"]["per_1000"]
cols[4].metric("Error cost / 1,000", common.MISSING if cost is None else f"{cost:,.0f}",
               help="Mean error cost of the evaluation sample x 1,000.")
st.caption(f"Precision {_ci(pr['precision'])}. Outcome figures weight audited auto items by 1/audit probability "
           "and leave out unaudited auto outcomes; n counts the outcomes behind each figure.")

# ---- defects --------------------------------------------------------------------------------------
st.subheader("Defect rate")
left, right = st.columns(2)
for column, key, name in ((left, "by_action_type", "action_type"), (right, "by_reason_code", "reason_code")):
    table = _flat(data["defects"][key], (name, "rows"), ())
    table["defect_rate"] = [r["value"] for r in data["defects"][key]]
    table["low"] = [r["low"] for r in data["defects"][key]]
    table["high"] = [r["high"] for r in data["defects"][key]]
    fig = px.bar(table, x=name, y="defect_rate", error_y=table["high"] - table["defect_rate"],
                 error_y_minus=table["defect_rate"] - table["low"], hover_data=["rows"], height=360,
                 labels={"defect_rate": common.kpi_name("defect_rate"), name: name.replace("_", " ")},
                 title=common.title(f"Final action wrong, by {name.replace('_', ' ')} (95% Wilson)",
                                    common.HALF_WIDTH_TITLE_CHARS))
    fig.update_layout(yaxis_tickformat=".0%")
    column.plotly_chart(fig, width="stretch")
conc = data["error_cost"]["concentration"]
if conc["cost_share"] is not None:
    st.caption("Error cost per 1,000 decisions by action type: " + ", ".join(
        f"{r['action_type']} {r['per_1000']:,.0f}" for r in data["error_cost"]["by_action_type"]
        if r["per_1000"] is not None) + f". The costliest {conc['top_share']:.0%} of errors ({conc['top_errors']} of "
        f"{conc['errors']}) carry {conc['cost_share']:.0%} of the error cost.")

# ---- guardrails -----------------------------------------------------------------------------------
st.subheader("Guardrails")
rows = data["guardrails"]["rows"]
if rows:
    guard = pd.DataFrame([{
        "rule": r["rule"], "checks": r["checks"], "fail_rate": r["fail"]["value"], "warn_rate": r["warn"]["value"],
        "failed_went_through": r["failed_but_went_through"]["value"],
        "failed_went_through_n": r["failed_but_went_through"]["count"],
        "failed_auto": r["failed_but_auto"], "failed_approved": r["failed_but_approved"],
        "defect_failed_through": r["defect_failed_through"]["value"],
        "defect_passed_through": r["defect_passed_through"]["value"],
        "defect_failed_through_n": r["defect_failed_through"]["rows"], "p_value": r["p_value"]} for r in rows])
    risky = [r["flagged"] for r in rows]
    if any(risky):
        st.warning("Failed checks that went through anyway are wrong more often for: **"
                   + ", ".join(r["rule"] for r in rows if r["flagged"]) + f"** (p < {level:g}, on at least "
                   f"{floor:,} outcomes each)")
    common.show_table(guard, {**dict.fromkeys(("fail_rate", "warn_rate", "failed_went_through", "defect_failed_through",
                                               "defect_passed_through"), "rate"), "p_value": "p",
                             **dict.fromkeys(("checks", "failed_went_through_n", "failed_auto", "failed_approved",
                                              "defect_failed_through_n"), "count")},
                      flagged=risky, flag_columns=("failed_went_through", "defect_failed_through"), column_config={
                          # the warn rate and the counts behind the shares in a table of their own below, short
                          # headers: all twelve columns were 1,279 px wide in 562 px at 1024 px (sidebar open)
                          **dict.fromkeys(GUARD_COUNTS),
                          "fail_rate": st.column_config.Column("failed", help="Share of checks failed."),
                          "failed_went_through": st.column_config.Column(
                              "went on", help="Share of failed checks whose action went through anyway "
                                              "(auto-approved or approved by a human)."),
                          "defect_failed_through": st.column_config.Column(
                              "wrong if failed", help="Defect rate of failed items that went through."),
                          "defect_passed_through": st.column_config.Column(
                              "if passed", help="Defect rate of passed items that went through."),
                          "p_value": st.column_config.NumberColumn(
                              "p", help=f"Defect rate, failed vs passed items that went through; a rule is shaded "
                                        f"when p < {level:g} on at least {floor:,} outcomes each.")})
    st.caption("failed: share of checks failed; went on: share of the failed ones whose action went through "
               "anyway; wrong if failed / if passed: defect rate of the items that went through after failing / "
               "passing the check.")
    st.markdown("**Warnings, and the counts behind the shares**")
    common.show_table(guard[["rule", *GUARD_COUNTS]], {"warn_rate": "rate", **dict.fromkeys(GUARD_COUNTS[1:], "count")},
                      column_config={
                          "warn_rate": st.column_config.Column("warned", help="Share of checks that warned."),
                          "failed_went_through_n": st.column_config.Column(
                              "went on (n)", help="Failed checks whose action went through anyway: how many."),
                          "failed_auto": st.column_config.Column(
                              "auto", help="Failed checks whose action was auto-approved (no human before it)."),
                          "failed_approved": st.column_config.Column(
                              "approved", help="Failed checks whose action a human approved as proposed."),
                          "defect_failed_through_n": st.column_config.Column(
                              "outcomes", help="Failed items that went through with an outcome: the sample of "
                                               "wrong if failed.")})
    st.caption("warned: share of checks that warned; went on (n): how many failed checks went through anyway, auto "
               "(auto-approved) or approved (by a human); outcomes: how many of those have an outcome, the sample "
               "of wrong if failed.")
    common.csv_download(guard, "quality_guardrails")
else:
    st.info("No policy checks in this window.")

# ---- model versions -------------------------------------------------------------------------------
st.subheader("Model versions")
versions = pd.DataFrame([{
    "pair": f"{v['agent_id']} · {v['action_type']}", "model_version": v["model_version"], "role": v["role"],
    "decisions": v["decisions"], "accuracy": v["accuracy"]["value"], "accuracy_low": v["accuracy"]["low"],
    "accuracy_high": v["accuracy"]["high"], "accuracy_n": v["accuracy"]["rows"],
    "intervention_rate": v["intervention_rate"]["value"], "intervention_n": v["intervention_rate"]["n"],
    "ece": v["ece"], "accuracy_delta": v["accuracy_delta"],
    "accuracy_p_value": v["accuracy_p_value"], "intervention_p_value": v["intervention_p_value"],
    "less_accurate": v["flagged"]} for v in data["model_versions"]])
chart = versions.dropna(subset=["accuracy"])
colors = common.version_colors(ctx)  # each version in its colour of the Calibration page's charts
fig = px.scatter(chart, x="pair", y="accuracy", color="model_version", symbol="role", color_discrete_map=colors,
                 symbol_map=ROLE_SYMBOLS, category_orders={"model_version": list(colors), "role": list(ROLE_SYMBOLS),
                                                           # left to right as the pairs' tables below, top down
                                                           "pair": list(versions["pair"].unique())},
                 labels={"model_version": "model version", "ece": common.kpi_name("ece"), "accuracy_n": "n"},
                 error_y=chart["accuracy_high"] - chart["accuracy"],
                 error_y_minus=chart["accuracy"] - chart["accuracy_low"], hover_data=["accuracy_n", "ece"],
                 height=420, title="Agent accuracy per model version (95% Wilson on the weighted sample)")
fig.update_traces(marker={"size": 11})
fig.update_layout(yaxis_tickformat=".0%")
common.plot(fig, "No model version has an outcome in this window: no accuracy to show.")
for pair, group in versions.groupby("pair", sort=False):
    _pair_table(str(pair), group, level, floor)
st.caption("One table per agent and action type, the stable version (the most decisions) first. n: the outcomes "
           "behind the accuracy; vs stable and p: accuracy against the stable version's; shaded: less accurate "
           f"than stable (p < {level:g}, on at least {floor:,} outcomes each). Intervention rate: the share of the "
           "version's resolved decisions a human edited or rejected, of how many. The CSV adds the accuracy's "
           "interval.")
common.csv_download(versions, "quality_model_versions")

# ---- reviewers ------------------------------------------------------------------------------------
st.subheader("Reviewer accuracy")
for title, block, name in (("Gold items (audit reviews of decisions with a known outcome)", gold, "gold"),
                           ("Primary reviews against outcomes", prim, "primary")):
    team = block["team"]
    st.markdown(f"**{title}**: team {_pct(team)} ({_ci(team)})")
    table = pd.DataFrame([{"reviewer_id": r["reviewer_id"], "n": r["n"], "accuracy": r["value"], "low": r["low"],
                           "high": r["high"], "expected": r["expected"], "below_expected": r["below_team"]}
                          for r in block["rows"]])
    if table.empty:
        st.caption("No judged reviews with outcomes.")
        continue
    common.show_table(table, {**dict.fromkeys(("accuracy", "low", "high", "expected"), "rate"), "n": "count"},
                      column_config={"reviewer_id": "reviewer", "below_expected": st.column_config.CheckboxColumn(
                          help=f"The interval's upper bound is below expected, on at least {items:,} items.")})
    common.csv_download(table, f"quality_reviewers_{name}")
