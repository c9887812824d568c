"""Overview: KPI tiles with deltas against the reference window and sparklines, firing alerts and a small
trend. Deltas are left out, and the caption says why, when the store does not cover the whole reference
window (a 10-day store's 7d window: its 7d before holds only 3 days). The oldest pending tile is the
whole store's (dashboard_data.backlog, as on Operations), not the window's: a decision waiting for 5 days
was missing from the 24h window's oldest age."""

from __future__ import annotations

from typing import Any

import plotly.express as px
import streamlit as st

from app import common

TILES = ("decisions", "intervention_rate", "auto_rate", "pending", "pending_oldest_age_seconds", "ece",
         "psi", "agreement_alpha", "latency_p90_seconds", "sla_breach_rate", "harmful_override_rate",
         "cost_per_decision")
SAMPLE_OF = common.dashboard_data.SAMPLE_OF
NOW_TILES = {"pending_oldest_age_seconds": "oldest pending now"}  # whole-store figures: their labels

st.title("Overview")
page_ctx = common.context()


def _quiet_store(ctx: common.Context) -> str | None:
    """Why the window is not the last days to now, when the store's newest decision is over an hour old (the
    alerts' staleness): the window ends at that decision while the "now" tiles count to the clock, and the demo
    store built with --no-serve read "oldest pending now 24.0 d" without a word that nothing had arrived since."""
    import time

    span = common.store_span(ctx.url)
    if span is None:
        return None
    quiet = time.time() - span[1] / 1e6
    if quiet <= common.dashboard_data.ALERTS_STALE_AFTER_SECONDS:
        return None
    return (f"No decision has arrived for {common._duration(quiet, down=True)}: the newest is from "
            f"{common._ts(span[1])}. The window ends there, while \"pending\" and \"oldest pending now\" count to "
            "now. If events should be arriving, check the ingestion.")


@st.fragment(run_every=common.REFRESH_SECONDS)
def _overview() -> None:
    ctx = common.following_the_store(page_ctx)  # each redraw: the window ends at the newest decision now
    alerts = common.load_alerts(ctx.url)["firing"]
    if not alerts.empty:
        lines = [f"- **{row.alertname}** ({row.severity}, since {common.when(row.starts_at)}): "
                 f"{row.summary}" for row in alerts.itertuples()]
        st.error(f"{common.plural(len(alerts), 'alert')} firing (see Alerts)\n" + "\n".join(lines),
                 icon=":material/notifications_active:")
    if note := _quiet_store(ctx):
        st.info(note, icon=":material/schedule:")
    summary = common.load("kpi_summary", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))
    deltas, about_deltas = common.tile_deltas(ctx, summary, TILES)
    st.caption(f"{common.filters_caption(ctx)}. {about_deltas} n is the sample behind each value.")
    if summary["kpis"] is None:
        st.info("No decisions match these filters in this window.")
        return
    kpis, samples, withheld = summary["kpis"], summary["samples"], summary.get("withheld") or {}
    series = common.bucket_series(ctx, TILES)
    bucket_name = common.bucket_name(ctx)
    arriving = common.outcomes_arriving_since(ctx, series)
    backlog = common.load("backlog", ctx.url, dict(ctx.filters))
    settled = series[series["bucket"] < arriving] if arriving is not None else series
    for column, kpi_id in zip(common.tile_columns(len(TILES)), TILES, strict=True):
        if kpi_id in NOW_TILES:
            with column:
                _now_tile(kpi_id, backlog)
            continue
        n = samples[SAMPLE_OF[kpi_id]]
        outcome_based = kpi_id in common.dashboard_data.OUTCOME_KPIS and arriving is not None
        # an outcome-based sparkline ends before the buckets whose outcomes are still arriving (a false drop)
        trend = (settled if outcome_based else series)[kpi_id].dropna().tolist() if not series.empty else []
        sparkline = (f"The sparkline: the value per {bucket_name} of the window"
                     + (f", up to {arriving:%Y-%m-%d %H:%M} UTC: later outcomes are still arriving."
                        if outcome_based else "."))
        too_small = withheld.get(kpi_id)  # below the alerting gate: no value, greyed, and why
        with column:
            st.metric(common.kpi_name(kpi_id), common.MISSING if too_small else common.fmt(kpi_id, kpis[kpi_id]),
                      **common.delta_args(kpi_id, {} if too_small else deltas),
                      help=f"{common.SPECS[kpi_id].help} Sample: n={n:,} {SAMPLE_OF[kpi_id].replace('_', ' ')}. "
                           + (f"No value: {too_small}." if too_small else sparkline),
                      border=True, chart_data=None if too_small or len(trend) < 2 else trend, chart_type="line")
            st.caption(too_small.split(";")[0] if too_small else f"n = {n:,} {SAMPLE_OF[kpi_id].replace('_', ' ')}")
    if series.empty:
        return
    left, right = st.columns(2)
    decisions = px.bar(series, x="bucket", y="decisions", title=f"Decisions per {bucket_name}", height=280)
    common.plot(common.mark_changes(common.time_axis(decisions, ctx), ctx), "No decisions in this window.", left)
    rate = px.line(series, x="bucket", y="intervention_rate", markers=True, height=280, title="Intervention rate",
                   hover_data=["n_decisions"], labels={"intervention_rate": common.kpi_name("intervention_rate")})
    common.plot(common.mark_changes(common.time_axis(rate, ctx).update_yaxes(tickformat=".0%"), ctx),
                "No resolved decisions in this window: no intervention rate yet.", right)
    if note := common.whole_buckets_note(ctx):
        st.caption(note)


def _now_tile(kpi_id: str, backlog: dict[str, Any]) -> None:
    """A whole-store tile: every decision pending now, whatever the window (the window's `pending` tile counts
    only the decisions proposed in it); no delta or sparkline, which would be the window's."""
    total = backlog["total"] or {"pending": 0, kpi_id: None}
    since = (backlog["since"] or "")[:16].replace("T", " ")
    st.metric(NOW_TILES[kpi_id], common.fmt(kpi_id, total[kpi_id]), border=True,
              help=f"Age now of the oldest decision pending (in a queue, or escalated and undecided), over every "
                   f"pending item whatever the window: the whole store, since {since} UTC, as Operations' "
                   f"'oldest pending'. The window's 'pending' tile counts only the decisions proposed in the window.")
    st.caption(f"whole store: {total['pending']:,} pending now")


_overview()
