"""Operations: backlog and its age, latency percentiles against the SLA, reviewer throughput, escalations."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app import common

SLA_COLOR = "#111111"  # near black: apart from every percentile bar

st.title("Operations")
ctx = common.context()
st.caption(common.filters_caption(ctx))
filters = dict(ctx.filters)

st.subheader("Backlog now")
now = common.load("backlog", ctx.url, filters)
alert_age = common.get_config().alerts.backlog_age_seconds_max
if now["total"] is None or not now["total"]["pending"]:
    st.info("Nothing is pending now" + (" for these filters." if ctx.filters else "."))
else:
    total = now["total"]
    a, b = common.tile_columns(2)
    a.metric("pending now", common.fmt("pending", total["pending"]), border=True,
             help="Every decision pending now (in a queue, or escalated and undecided), whatever the window.")
    b.metric("oldest pending", common.fmt("pending_oldest_age_seconds", total["pending_oldest_age_seconds"]),
             border=True, help="Age now of the oldest pending decision, whatever the window.")
    per, unit, words = common.duration_unit(max(now["by_queue"]["pending_oldest_age_seconds"].max(), alert_age))
    queues = now["by_queue"].assign(oldest=lambda f: f["pending_oldest_age_seconds"] / per)  # the table's unit
    fig = px.bar(queues, x="queue", y="oldest", hover_data=["pending"], height=320,
                 title="Oldest pending by queue",  # half a 1024 px page: a longer title was cut off
                 labels={"oldest": f"oldest pending ({words})"})
    # on a white ground, at the left: over the bars the red words were unreadable on blue
    fig.add_hline(y=alert_age / per, line_dash="dash", line_color="red", annotation_position="top left",
                  annotation_bgcolor="rgba(255,255,255,0.85)", annotation_font_color="#d62728",
                  annotation_text=f"{common.fmt('pending_oldest_age_seconds', alert_age)}: alert")
    left, right = st.columns(2)
    common.plot(fig, "Nothing is pending now.", left)
    with right:
        common.show_table(now["by_queue"], {"pending": "count", "pending_oldest_age_seconds": "duration"},
                          column_config={"pending_oldest_age_seconds": "oldest pending"})
    st.caption(f"Every pending decision, whatever the window: the store since {now['since'][:16].replace('T', ' ')} "
               "UTC; red dashed line: the HitlBacklogAge alert's threshold (alerts.backlog_age_seconds_max). The "
               "window's charts below count only the decisions proposed in it.")

st.subheader("Backlog by queue")
backlog = common.bucket_series(ctx, ("pending", "pending_oldest_age_seconds", "latency_p90_seconds"), "queue")
if backlog.empty:
    st.info("No decisions in this window.")
else:
    left, right = st.columns(2)
    per, unit, words = common.duration_unit(backlog["latency_p90_seconds"].max())
    backlog["latency_p90"] = backlog["latency_p90_seconds"] / per  # display unit only
    p90 = px.line(backlog, x="bucket", y="latency_p90", color="queue", markers=True, height=340,
                  hover_data=["n_primary_reviews"], labels={"latency_p90": f"p90 ({words})"},
                  title="p90 time to review")
    common.plot(common.mark_changes(common.time_axis(p90, ctx), ctx),
                "No primary reviews in this window: no time to primary review.", left)
    pending = px.bar(backlog, x="bucket", y="pending", color="queue", height=340, labels={"pending": "pending now"},
                     title="Still pending, by when proposed")
    common.plot(common.mark_changes(common.time_axis(pending, ctx, "proposed"), ctx),
                "No decisions in this window.", right)
    if note := common.whole_buckets_note(ctx):
        st.caption(note)

st.subheader("Latency against the SLA by risk class")
latency = common.load("segment_table", ctx.url, ctx.start_us, ctx.end_us, "risk_class",
                      ("latency_p50_seconds", "latency_p90_seconds", "latency_p99_seconds", "sla_breach_rate",
                       "pending", "pending_oldest_age_seconds"), filters)
if latency.empty:
    st.info("No primary reviews in this window.")
else:
    sla = common.get_config().sla
    order = common.risk_order(latency["risk_class"])
    latency = latency.set_index("risk_class").loc[order].reset_index()  # the tightest SLA first, as the chart
    latency["sla_seconds"] = [sla.for_risk_class(r) for r in latency["risk_class"]]
    long = latency.melt(id_vars=["risk_class"], value_vars=["latency_p50_seconds", "latency_p90_seconds",
                                                             "latency_p99_seconds"],
                        var_name="percentile", value_name="seconds")
    per, unit, words = common.duration_unit(max(long["seconds"].max(), latency["sla_seconds"].max()))
    long[words] = long["seconds"] / per  # display unit only, the tables' for the largest
    long["percentile"] = long["percentile"].str.removeprefix("latency_").str.removesuffix("_seconds")
    fig = px.bar(long, x="risk_class", y=words, color="percentile", barmode="group", height=360,
                 labels={"risk_class": "risk class"}, category_orders={"risk_class": order},
                 title=f"Time to primary review: p50 / p90 / p99 ({words}); black line: the risk class's SLA")
    sla_marks = latency.dropna(subset=["sla_seconds"])
    # Black, not red: the red of the p99 bars made an SLA mark on top of one read as part of the bar.
    fig.add_scatter(x=sla_marks["risk_class"], y=sla_marks["sla_seconds"] / per, mode="markers", name="SLA",
                    marker={"symbol": "line-ew-open", "size": 60, "color": SLA_COLOR, "line": {"width": 3}},
                    hovertemplate=f"%{{x}}: SLA %{{y:.1f}} {unit}<extra></extra>")
    fig.update_yaxes(rangemode="tozero")  # a wide marker's padding would push the axis below 0
    st.plotly_chart(fig, width="stretch")
    view = latency[["risk_class", "latency_p50_seconds", "latency_p90_seconds", "latency_p99_seconds",
                    "sla_seconds", "sla_breach_rate", "n_primary_reviews", "pending", "pending_oldest_age_seconds"]]
    common.show_table(view, {"latency_p50_seconds": "duration", "latency_p90_seconds": "duration",
                             "latency_p99_seconds": "duration", "sla_seconds": "duration", "sla_breach_rate": "rate",
                             "n_primary_reviews": "count", "pending": "count",
                             "pending_oldest_age_seconds": "duration"},
                      # short headers, the section's title saying the rest, and the pending count in a line under
                      # the table: "latency p50", "SLA breach rate", "primary reviews" and a pending column made the
                      # table 773 px wide in 562 px at 1024 px (sidebar open)
                      column_config={"risk_class": "risk", "latency_p50_seconds": "p50", "latency_p90_seconds": "p90",
                                     "latency_p99_seconds": "p99", "sla_seconds": "SLA", "sla_breach_rate": "breach",
                                     "n_primary_reviews": "reviews", "pending": None,
                                     "pending_oldest_age_seconds": st.column_config.Column(
                                         "oldest pending", help="Age now of the class's oldest pending decision.")})
    st.caption("Pending now, of the window's decisions: " + ", ".join(
        f"{risk} {common.MISSING if pd.isna(n) else f'{n:,.0f}'}" for risk, n in zip(latency["risk_class"],
                                                                                   latency["pending"], strict=True))
               + ". Oldest pending: the age now of the oldest of them.")
    common.csv_download(view, "latency_by_risk_class")

st.subheader("Reviewer throughput")
reviewers = common.load("reviewers", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))["table"]
if reviewers.empty:
    st.info("No reviews in this window.")
else:
    top = reviewers.sort_values("reviews", ascending=False)
    st.plotly_chart(px.bar(top, x="reviewer_id", y="reviews", hover_data=["reviews_per_active_hour",
                                                                         "median_handle_seconds"],
                           height=320, title="Reviews per reviewer", labels={"reviewer_id": "reviewer"}),
                    width="stretch")
    cols = ["reviewer_id", "reviews", "active_hours", "reviews_per_active_hour", "median_handle_seconds"]
    common.show_table(top[cols], {"reviews": "count", "median_handle_seconds": "duration"},
                      column_config={"reviewer_id": "reviewer", "median_handle_seconds": "median handle time"})
    common.csv_download(top[cols], "reviewer_throughput")

st.subheader("Escalations")
bd = common.load("breakdowns", ctx.url, ctx.start_us, ctx.end_us, filters)
esc = bd["escalation"]
if not esc or not esc["escalation_rate"]["n"]:
    st.info("No escalation data in this window.")
else:
    rate = esc["escalation_rate"]
    a, b, c = common.tile_columns(3)
    a.metric("escalation rate", common.fmt("intervention_rate", rate["value"]), border=True,
             help=f"{rate['count']:,} of {rate['n']:,} decisions")
    b.metric("mean depth", f"{esc['depth']['mean']:.2f}" if esc["depth"]["mean"] is not None else "-",
             border=True)
    c.metric("escalated, still pending", f"{esc['escalated_pending']['count']:,}", border=True)
    if not bd["escalation_depth"].empty:
        common.show_table(bd["escalation_depth"], {"count": "count", "share": "rate"})
        common.csv_download(bd["escalation_depth"], "escalation_depth")
