"""Agreement: Krippendorff's alpha over time, reviewer-by-reviewer agreement heatmap, dissenting reviewers."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from app import common

st.title("Reviewer agreement")
ctx = common.context()
st.caption(common.filters_caption(ctx))

series = common.bucket_series(ctx, ("agreement_alpha",))
series = series.dropna(subset=["agreement_alpha"]) if not series.empty else series
if series.empty:
    st.info("No items with two or more reviews in this window: agreement cannot be measured.")
else:
    alpha = px.line(series, x="bucket", y="agreement_alpha", markers=True, height=300,
                    labels={"agreement_alpha": "alpha"}, title="Krippendorff's alpha (nominal) over time")
    st.plotly_chart(common.mark_changes(common.time_axis(alpha, ctx), ctx), width="stretch")
    if note := common.whole_buckets_note(ctx):
        st.caption(note)

data = common.load("reviewers", ctx.url, ctx.start_us, ctx.end_us, dict(ctx.filters))
table, matrix = data["table"], data["matrix"]
if table.empty or matrix.empty:
    st.info("No reviewer pairs with shared items in this window.")
    st.stop()
dissenters = table.loc[table["dissent"], "reviewer_id"].tolist()
rule = data["dissent_rule"]
if dissenters:
    st.warning(f"Dissenting {'reviewer' if len(dissenters) == 1 else 'reviewers'}: **{', '.join(dissenters)}**: "
               "agreement with peers below theirs by more "
               f"than {rule['margin']:.0%} (even at the top of its {rule['level']:.0%} interval) on at least "
               f"{rule['min_items']} shared items.",
               icon=":material/person_alert:")
labels = [f"⚠ {r}" if r in dissenters else r for r in matrix.index]
fig = px.imshow(matrix.to_numpy(dtype=float), x=labels, y=labels, zmin=0, zmax=1, color_continuous_scale="RdYlGn",
                aspect="auto", height=620, title="Pairwise agreement (share of shared items with the same verdict)")
fig.update_traces(customdata=data["shared"].to_numpy(),
                  hovertemplate="%{y} vs %{x}<br>agreement %{z:.1%}<br>shared items %{customdata}<extra></extra>")
fig.update_coloraxes(colorbar_tickformat=".0%")  # in % as the table's agreement (the scale read 0 to 1)
st.plotly_chart(fig, width="stretch")

view = table[["reviewer_id", "reviews", "agreement", "agreement_items", "peer_agreement", "override_rate",
              "dissent"]].sort_values("agreement")
common.show_table(view, {"agreement": "rate", "peer_agreement": "rate", "override_rate": "rate", "reviews": "count",
                         "agreement_items": "count"},
                  flagged=view["dissent"].tolist(), flag_columns=list(view.columns),
                  column_config={"reviewer_id": "reviewer", "agreement_items": "shared items"})
common.csv_download(view, "reviewer_agreement")
common.csv_download(matrix.reset_index(names="reviewer"), "agreement_matrix", "Download matrix CSV")
