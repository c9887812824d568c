"""How the dashboard's charts read: the SLA apart from the p99 bars, change words that do not overlap,
legends that fit, triage bars in rank order. The figures the pages hand to Streamlit (AppTest), and the
same charts drawn by Chromium."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from app.common import MARKER_ROW_PX, MAX_MARKER_ROWS
from tests.app_helpers import build_synth_store, run_view
from tests.process_helpers import CHROMIUM, headless_chromium, streamlit_server


def _page(url: str, page: str, monkeypatch: pytest.MonkeyPatch, window: str = "last 30d") -> AppTest:
    return run_view(url, page, monkeypatch, window, timeout=90)


def _figures(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _title(fig: dict[str, Any]) -> str:
    return str(fig["layout"].get("title", {}).get("text", ""))


def _values(array: Any) -> list[float]:
    """A trace's numbers, whether plain or one of plotly's typed arrays ({"dtype": "i1", "bdata": ...})."""
    import base64

    import numpy as np

    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def _change_words(fig: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in fig["layout"].get("annotations", []) if str(a.get("name", "")).startswith("change ")]


PINNED_END = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # a Monday, just after midnight


@pytest.fixture(scope="module")
def synth_url_pinned(tmp_path_factory: pytest.TempPathFactory) -> str:
    """8 days x 300 decisions ending at PINNED_END whatever the day and time the tests run: the same data on
    every run (the store of synth_url_30d ends now), and a 7d window starting just after a midnight, so nearly
    all of its first day is in the window (the instant CI met at 00:08 UTC)."""
    return build_synth_store(tmp_path_factory.mktemp("pinned"), days=8, decisions_per_day=300, end=PINNED_END)


# ---- 1. the SLA ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_caches")
def test_the_sla_is_a_black_line_of_its_own_in_the_legend(synth_url_30d: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fig, = (f for f in _figures(_page(synth_url_30d, "operations.py", monkeypatch)) if "SLA" in _title(f))
    p99, = (t for t in fig["data"] if t.get("name") == "p99")
    sla, = (t for t in fig["data"] if t.get("name") == "SLA")  # one trace: one legend entry
    assert sla.get("showlegend", True) is not False
    assert sla["marker"]["color"].lower() != p99["marker"]["color"].lower()
    assert sla["marker"]["color"].lower() in ("#111111", "black", "#000000")
    assert sorted(sla["x"]) == sorted(set(p99["x"]))  # a mark on every risk class
    assert "red" not in _title(fig) and "black line" in _title(fig)


# ---- 2. change and drift markers ----------------------------------------------------------------------------


def test_near_labels_take_rows_and_far_ones_share_the_first() -> None:
    from app.common import label_rows

    half_day_in_a_week = 0.5 / 7
    assert label_rows([(0.5, "other"), (0.5 + half_day_in_a_week, "model")]) == [0, 1]
    assert label_rows([(0.1, "model"), (0.5, "threshold"), (0.9, "model")]) == [0, 0, 0]
    assert label_rows([(0.5, "model"), (0.5, "policy"), (0.5, "model")]) == [0, 1, 2]  # one instant
    assert label_rows([(0.1, "model"), (0.13, "model"), (0.4, "model")]) == [0, 1, 0]  # a freed row is reused
    wide = label_rows([(0.5, "other"), (0.5 + half_day_in_a_week, "model")], plot_px=900)
    assert wide == [0, 0]  # the same two fit side by side on a wide plot


def test_crowded_change_words_share_one_and_take_at_most_three_rows() -> None:
    """A 3-day store's ten changes in a 7d window stacked their words 7 rows high above every chart over time:
    near words now share one ("6 changes", its hover lists them) until they take at most MAX_MARKER_ROWS rows."""
    from app.common import group_word, label_rows, marker_groups

    crowded = [(0.657, "model"), (0.715, "model"), (0.743, "model"), (0.772, "threshold"), (0.786, "model"),
               (0.8, "model"), (0.8, "policy"), (0.829, "model"), (0.95, "other"), (0.957, "model")]  # 3-day store
    assert max(label_rows(crowded)) + 1 == 7  # as drawn before
    groups = marker_groups(crowded)
    assert [i for g in groups for i in g] == list(range(10))  # every marker, in order, in one group
    words = [group_word(crowded, g) for g in groups]
    assert max(label_rows(words)) < MAX_MARKER_ROWS
    assert any(text.endswith(" changes") for _, text in words) and len(groups) > 2  # merged only as needed
    spread = [(0.1, "model"), (0.5, "threshold"), (0.9, "model")]
    assert marker_groups(spread) == [[0], [1], [2]]  # room for each: no word is shared


def _overlaps(words: list[dict[str, Any]], start_us: int, end_us: int) -> list[tuple[str, str]]:
    """Pairs of change words on one row whose estimated boxes (300 px plot, 6.5 px a character) meet."""
    import pandas as pd

    def box(a: dict[str, Any]) -> tuple[float, float]:
        x = (pd.Timestamp(a["x"]).value // 1000 - start_us) / (end_us - start_us) * 300
        return x - len(a["text"]) * 3.25, x + len(a["text"]) * 3.25

    clashes = []
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            (a0, a1), (b0, b1) = box(a), box(b)
            if a.get("yshift", 0) == b.get("yshift", 0) and a0 < b1 and b0 < a1:
                clashes.append((a["name"], b["name"]))
    return clashes


@pytest.mark.usefixtures("fresh_caches")
def test_change_markers_show_a_short_word_in_rows_and_hover_the_whole_label(
        synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from collectors.dashboard_data import window_bounds
    from collectors.store.db import decision_time_range, open_store

    engine = open_store(synth_url_30d, create=False)
    start_us, end_us = window_bounds(decision_time_range(engine)[1], "last 30d")
    engine.dispose()
    figures = [f for f in _figures(_page(synth_url_30d, "operations.py", monkeypatch)) if _change_words(f)]
    assert len(figures) == 2  # p90 by queue, pending by bucket
    for fig in figures:
        words = _change_words(fig)
        named = [i for a in words for i in a["name"].removeprefix("change ").split(", ")]
        assert len(named) == len(set(named)) == 10  # the demo world's ten changes, each in one word
        assert all(re.fullmatch(r"model|threshold|policy|other|\d+ changes", a["text"]) for a in words)
        assert all(not a.get("textangle") and a["yref"] == "paper" and a["yanchor"] == "bottom" for a in words)
        assert any("threshold low 0.85→0.75" in a["hovertext"] for a in words)
        assert _overlaps(words, start_us, end_us) == []
        rows = max(a.get("yshift", 0) for a in words) // MARKER_ROW_PX + 1
        assert 1 < rows <= MAX_MARKER_ROWS  # close changes are staggered, crowded ones share a word
        assert fig["layout"]["margin"]["t"] >= 70 + MARKER_ROW_PX * rows  # room for them above the plot
        assert sum(str(s.get("name", "")).startswith("change ") for s in fig["layout"]["shapes"]) == 10


def test_drift_alerts_of_one_instant_share_one_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import common

    at_us = 1_790_000_000_000_000
    alerts = [{"at_us": at_us, "at": "then", "label": f"CalibrationChange: {v}", "summary": "ece up"}
              for v in ("kyc-v2.4", "kyc-v2.5")] + [{"at_us": at_us + 86_400_000_000, "at": "later",
                                                   "label": "Psi: refund-v3.2", "summary": "psi up"}]
    monkeypatch.setattr(common, "load", lambda *args, **kwargs: alerts)
    ctx = common.Context("sqlite://", "last 7d", at_us - 10**12, at_us + 10**12)
    fig = common.mark_drift(go.Figure(), ctx)
    marks = [a for a in fig.layout.annotations if a.name == "drift alert"]
    assert len(marks) == 2 and len(fig.layout.shapes) == 2
    assert "kyc-v2.4" in marks[0].hovertext and "kyc-v2.5" in marks[0].hovertext
    assert "refund-v3.2" in marks[1].hovertext


def _columns(trace: dict[str, Any]) -> list[list[float]]:
    """A trace's customdata rows, whether plotly wrote them as lists or as a typed array (bdata)."""
    import base64

    import numpy as np

    data = trace["customdata"]
    if isinstance(data, dict):
        data = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).reshape(
            [int(n) for n in str(data["shape"]).split(",")]).tolist()
    return data


@pytest.mark.usefixtures("fresh_caches")
def test_calibration_draws_a_psi_point_only_past_the_tile_and_alert_gate(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart drew a bucket's PSI from 200 decisions (0.15 from 214, past the 0.10 warning line) while the PSI
    tile and HitlConfidencePsi wait for alerts.psi_min_decisions (1,000) in each window."""
    import streamlit
    import yaml

    from tests.app_helpers import build_synth_store

    url = build_synth_store(tmp_path, days=10, decisions_per_day=1500)  # 100-600 decisions a version a day
    at = _page(url, "calibration.py", monkeypatch, "last 7d")
    assert not [f for f in _figures(at) if _title(f).startswith("PSI")], "no bucket has 1,000 decisions"
    assert any("alerts.psi_min_decisions" in c.value and "1,000 decisions" in c.value for c in at.caption)

    config = tmp_path / "tower.yaml"
    config.write_text(yaml.safe_dump({"alerts": {"psi_min_decisions": 300}}))
    monkeypatch.setenv("HITL_TOWER_CONFIG", str(config))
    streamlit.cache_resource.clear()  # the config is loaded once per server
    streamlit.cache_data.clear()
    at = _page(url, "calibration.py", monkeypatch, "last 7d")
    (psi,) = [f for f in _figures(at) if _title(f).startswith("PSI")]
    rows = [row for trace in psi["data"] if "customdata" in trace for row in _columns(trace)]
    assert rows, "some buckets have 300 decisions of a version and 300 the day before"
    assert all(n_decisions >= 300 and n_reference >= 300 for _, n_decisions, n_reference in rows), rows
    assert any("300 decisions" in c.value and "alerts.psi_min_decisions" in c.value for c in at.caption)


# ---- 3. calibration legends -------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_caches")
def test_calibration_legends_lie_in_rows_under_the_plot_and_the_chart_grows_for_them(
        synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = [f for f in _figures(_page(synth_url_30d, "calibration.py", monkeypatch))
               if _title(f).startswith(("ECE", "Brier score", "PSI"))]
    assert len(figures) == 2  # no bucket of this small store has alerts.psi_min_decisions decisions: no PSI chart
    for fig in figures:
        versions = {t["name"] for t in fig["data"]}
        assert len(versions) > 6, "30 days of the demo world hold more versions than a 320 px column fits"
        legend = fig["layout"]["legend"]
        assert legend["orientation"] == "h" and legend["yanchor"] == "bottom" and legend["y"] <= 0
        legend_rows = -(-len(versions) // 4)
        assert fig["layout"]["height"] >= 320 + 22 * legend_rows


def _version_colours(fig: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["line"]["color"] for t in fig["data"] if t.get("legendgroup") == t.get("name")}


@pytest.mark.usefixtures("fresh_caches")
def test_a_model_version_has_one_colour_on_every_chart(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plotly colours traces by their order in each figure: a version missing from the 7d window's chart
    (a retired one) gave every later version another colour than on the 30d window's."""
    from app.common import VERSION_PALETTE

    month, week = ({_title(f).split(":")[0]: _version_colours(f) for f in _figures(_page(synth_url_30d, "calibration.py",
                                                                                          monkeypatch, window))}
                   for window in ("last 30d", "last 7d"))
    assert set(week["ECE"]) < set(month["ECE"]), "the week lacks some of the month's versions"
    for version, colour in week["ECE"].items():
        assert colour == month["ECE"][version] == month["Brier score"][version], version
    assert len(set(month["ECE"].values())) == len(month["ECE"])  # no two versions share one
    assert set(month["ECE"].values()) <= set(VERSION_PALETTE)


@pytest.mark.usefixtures("fresh_caches")
def test_a_chart_with_nothing_to_draw_is_a_short_note(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No bucket of this store has the decisions a PSI point needs: a note says so, not bare axes. The gate is
    explained once, under the chart: the note repeated it word for word right above the caption."""
    at = _page(synth_url_30d, "calibration.py", monkeypatch)
    assert not [f for f in _figures(at) if _title(f).startswith("PSI")]
    assert any(i.value.startswith("PSI: no bucket of this window is large enough to draw") for i in at.info)
    texts = [e.value for e in (*at.info, *at.caption, *at.warning, *at.markdown)]
    assert sum(text.count("alerts.psi_min_decisions") for text in texts) == 1, texts


def test_drawable_needs_one_value_in_one_trace() -> None:
    import numpy as np
    import pandas as pd
    import plotly.express as px

    from app.common import drawable

    nothing = pd.DataFrame({"bucket": [1, 2], "rate": [np.nan, np.nan], "queue": ["a", "b"]})
    assert not drawable(px.line(nothing, x="bucket", y="rate", color="queue").add_vline(x=1))
    assert not drawable(px.line(nothing.iloc[:0], x="bucket", y="rate")) and not drawable(go.Figure())
    assert drawable(px.line(nothing.assign(rate=[np.nan, 0.0]), x="bucket", y="rate", color="queue"))
    assert drawable(px.pie(pd.DataFrame({"verdict": ["edit"], "count": [3]}), names="verdict", values="count"))


@pytest.mark.usefixtures("fresh_caches")
def test_quality_draws_each_model_version_in_its_calibration_colour(synth_url_30d: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The Quality page coloured by role and told versions apart by plotly's default symbol order, so kyc-v2.4
    had no colour of its own there and another on Calibration; the role is now the symbol."""
    def colours(page: str, title: str) -> dict[str, set[str]]:
        fig = next(f for f in _figures(_page(synth_url_30d, page, monkeypatch)) if _title(f).startswith(title))
        found: dict[str, set[str]] = {}
        for trace in fig["data"]:
            colour = trace.get("marker", {}).get("color") or trace["line"]["color"]  # a scatter's, a line's
            found.setdefault(trace["legendgroup"].split(", ")[0], set()).add(colour)
        return found

    quality = colours("quality.py", "Agent accuracy per model version")
    calibration = colours("calibration.py", "ECE")
    shared = set(quality) & set(calibration)
    assert len(shared) >= 3, (quality, calibration)
    assert all(len(c) == 1 for c in quality.values()), quality  # one colour per version, whatever its role
    assert {v: quality[v] for v in shared} == {v: calibration[v] for v in shared}
    assert len({c for v in shared for c in quality[v]}) == len(shared)  # versions apart by colour


@pytest.fixture(scope="module")
def synth_url_week_old(tmp_path_factory: pytest.TempPathFactory) -> str:
    """3 days x 200 decisions that ended a week ago: its pending decisions have waited for days."""
    return build_synth_store(tmp_path_factory.mktemp("week_old"), days=3, decisions_per_day=200,
                             end=datetime.now(UTC) - timedelta(days=7))


@pytest.mark.usefixtures("fresh_caches")
def test_operations_charts_read_durations_in_the_unit_of_their_tables(synth_url_week_old: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a store whose oldest pending decisions wait for days, "Oldest pending by queue" read 576 (hours) next
    to its table's "24.0 d", and its alert line's words "4.0 h: alert" lay over the bars, red on blue. The chart
    now takes the unit the table writes for its largest value, and the words sit on white at the left."""
    at = _page(synth_url_week_old, "operations.py", monkeypatch, window="last 7d")
    fig, = (f for f in _figures(at) if _title(f) == "Oldest pending by queue")
    table = next(t for t in at.dataframe if "pending_oldest_age_seconds" in t.value.columns and "queue" in t.value)
    oldest = table.value["pending_oldest_age_seconds"]
    assert oldest.max() > 2 * 86_400, oldest.tolist()  # days: the table writes "d"
    assert fig["layout"]["yaxis"]["title"]["text"] == "oldest pending (days)"
    drawn = dict(zip(fig["data"][0]["x"], _values(fig["data"][0]["y"]), strict=True))
    assert drawn == pytest.approx(dict(zip(table.value["queue"], oldest / 86_400, strict=True)))
    words, = (a for a in fig["layout"]["annotations"] if a["text"].endswith(": alert"))
    assert words.get("bgcolor", "").startswith("rgba(255,255,255") and "left" in words.get("xanchor", "left"), words
    sla, = (f for f in _figures(at) if "SLA" in _title(f))
    longest = max(_values(t["y"]) for t in sla["data"])
    assert ("(hours)" in _title(sla)) == (max(longest) < 48), _title(sla)  # the table's unit up to 2 days


# ---- 4. triage ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_caches")
def test_triage_bars_read_in_rank_order_and_the_rate_label_sits_above_them(
        synth_url_pinned: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # On the pinned store: which options reach the top slices depends on the synthetic days the window
    # holds, and on the store ending now it was second_review alone on some days (CI on 2026-12-01, any hour)
    at = _page(synth_url_pinned, "triage.py", monkeypatch, window="last 7d")
    fig, = (f for f in _figures(at) if _title(f).startswith("Expected error cost"))
    table = at.dataframe[0].value.sort_values("rank")
    assert len(set(table["option"])) == 2, "both options, so the colours split the bars into two traces"
    axis = fig["layout"]["yaxis"]
    assert axis["categoryorder"] == "array"
    assert list(axis["categoryarray"])[::-1] == list(table["slice"])  # rank 1 at the top
    drawn = [y for t in fig["data"] for y in t["y"]]
    assert sorted(drawn) == sorted(table["slice"])
    rate, = (a for a in fig["layout"]["annotations"] if "hourly rate" in a["text"])
    assert rate["yref"] == "paper" and rate["y"] >= 1 and rate["yanchor"] == "bottom"  # above the bars


@pytest.mark.usefixtures("fresh_caches")
def test_triage_names_its_options_in_words(synth_url_pinned: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The legend and the table's option column read the advice's ids, "audit_auto" and "second_review", under a
    legend titled "option": they read as words now, under "extra review"."""
    at = _page(synth_url_pinned, "triage.py", monkeypatch, window="last 7d")
    fig, = (f for f in _figures(at) if _title(f).startswith("Expected error cost"))
    words = {"review auto-approved items", "second review of decided items"}
    assert {t["name"] for t in fig["data"]} == words, [t["name"] for t in fig["data"]]
    assert fig["layout"]["legend"]["title"]["text"] == "extra review"
    assert fig["layout"]["legend"].get("orientation") == "h"  # under the plot: at its right the words took the bars' room
    table = at.dataframe[0]
    assert set(table.value["option"]) == words
    assert json.loads(table.proto.columns)["option"]["label"] == "extra review"


# ---- the same charts in Chromium ------------------------------------------------------------------------------


def _open(browser: Any, base: str, name: str, width: int, window: str | None = None) -> Any:
    """The page at `width` px, every chart drawn; in `window` (picked in the sidebar) if given."""
    page = browser.new_page(viewport={"width": width, "height": 1200})
    page.goto(f"{base}/{name}", wait_until="domcontentloaded")
    _settle(page)
    if window:
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=window).click()
        page.get_by_text(f"{window} (", exact=False).first.wait_for(timeout=90_000)  # the page's caption
        _settle(page)
    return page


def _settle(page: Any) -> None:
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-testid="stSpinner"]')
              && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                   .every(chart => chart.querySelector('.main-svg'))""", timeout=90_000)
    page.wait_for_timeout(1500)


# For each chart: its title, its box, its legend entries' boxes and the box the legend shows them in,
# its annotations' texts and boxes, and its bars' boxes. (A rerun leaves the last run's charts hidden for a
# while: only the shown ones count.)
_CHART_BOXES = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
  .filter(plot => plot.getBoundingClientRect().width > 0).map(plot => {
    const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const legendBg = plot.querySelector('.legend .bg');
    return {
        title: (plot.querySelector('.gtitle') || {}).textContent || '',
        chart: box(plot),
        legendShown: legendBg ? box(legendBg) : null,
        legendEntries: [...plot.querySelectorAll('.legend .traces')].map(box),
        notes: [...plot.querySelectorAll('.annotation')].map(a => [a.textContent, box(a)]),
        bars: [...plot.querySelectorAll('.barlayer .point path')].map(box),
        yTicks: [...plot.querySelectorAll('.yaxislayer-above .ytick text')].map(t => [t.textContent, box(t)]),
    };
})"""


def _charts(page: Any) -> list[dict[str, Any]]:
    """`_CHART_BOXES` once two reads a second apart agree (a rerun swaps charts in one by one)."""
    last = page.evaluate(_CHART_BOXES)
    for _ in range(60):
        page.wait_for_timeout(1000)
        now = page.evaluate(_CHART_BOXES)
        if now == last:
            return list(now)
        last = now
    raise TimeoutError("the charts kept changing")


def _inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack and inner[2] <= outer[2] + slack
            and inner[3] <= outer[3] + slack)


def _meet(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    with headless_chromium() as chromium:
        yield chromium


def _calibration_charts(page: Any) -> list[dict[str, Any]]:
    return [c for c in _charts(page) if c["title"].startswith(("ECE", "Brier score"))]


def test_in_chromium_legends_fit_words_do_not_overlap_and_the_rate_label_clears_the_bars(
        synth_url_30d: str, browser: Any) -> None:
    with streamlit_server(synth_url_30d) as base:
        for width in (1400, 1500):
            page = _open(browser, base, "calibration", width, window="last 30d")

            # As below: on a loaded machine the 7d charts (6 model versions) can outlast the 30d caption.
            deadline = time.monotonic() + 60
            charts = _calibration_charts(page)
            while not all(len(c["legendEntries"]) > 6 for c in charts) and time.monotonic() < deadline:
                page.wait_for_timeout(1000)
                charts = _calibration_charts(page)
            page.close()
            assert len(charts) == 2
            for chart in charts:
                assert len(chart["legendEntries"]) > 6
                for entry in chart["legendEntries"]:  # every entry shown, none past the legend's box or chart
                    assert _inside(entry, chart["legendShown"]) and _inside(entry, chart["chart"]), chart["title"]

        page = _open(browser, base, "operations", 1400, window="last 30d")

        def change_words() -> list[list[Any]]:
            return [[n for n in c["notes"] if re.fullmatch(r"model|threshold|policy|other|\d+ changes", n[0])]
                    for c in _charts(page)]

        def changes(words: list[list[Any]]) -> int:  # a shared word "3 changes" stands for three
            return sum(int(text.split()[0]) if text.endswith(" changes") else 1 for w in words for text, _ in w)

        # On a loaded machine the 7d charts can still be on screen after the 30d caption is: wait for the
        # redraw (at most 60 s) rather than count the old window's markers.
        deadline = time.monotonic() + 60
        words = change_words()
        while changes(words) != 20 and time.monotonic() < deadline:
            page.wait_for_timeout(1000)
            words = change_words()
        page.close()
        assert changes(words) == 20  # ten changes on each of two charts
        for chart_words in words:
            for i, (text, box) in enumerate(chart_words):
                assert not any(_meet(box, other) for _, other in chart_words[i + 1:]), text

        page = _open(browser, base, "triage", 1500)
        chart, = (c for c in _charts(page) if c["title"].startswith("Expected error cost"))
        page.close()
        rate, = (box for text, box in chart["notes"] if text.startswith("hourly rate"))
        assert chart["bars"] and not any(_meet(rate, bar) for bar in chart["bars"])


@pytest.mark.usefixtures("fresh_caches")
def test_calibration_shades_the_buckets_whose_outcomes_are_still_arriving(synth_url_30d: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The last days' ECE and Brier stand on the few outcomes known so far: a grey band says so, from the first
    of the last buckets below the window's outcome coverage to the window's end (PSI needs no outcome)."""
    at = _page(synth_url_30d, "calibration.py", monkeypatch, "last 30d")
    figures = {_title(f).split(":")[0]: f for f in _figures(at)}
    bands = {name: [s for s in f["layout"].get("shapes", []) if s.get("name") == "outcomes still arriving"]
             for name, f in figures.items()}
    assert len(bands["ECE"]) == len(bands["Brier score"]) == 1, bands
    assert bands["ECE"][0]["x0"] == bands["Brier score"][0]["x0"]
    starts = pd.Timestamp(bands["ECE"][0]["x0"])
    assert pd.Timestamp.now(tz="UTC") - starts < pd.Timedelta(days=10), "only the last days, not the window"
    assert any(re.search(r"Outcome coverage: \d+% .*Grey from .* outcomes still arriving", c.value) for c in at.caption)


@pytest.mark.usefixtures("fresh_caches")
@pytest.mark.parametrize("store", ["now", "after midnight"])
@pytest.mark.parametrize("page", ["overview.py", "agreement.py", "operations.py", "calibration.py"])
def test_charts_over_time_begin_with_the_first_whole_bucket(page: str, store: str, request: pytest.FixtureRequest,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A 7d window starting at 22:40 drew its first day's 80 minutes as a whole day: a sliver of a bar, a point
    on a handful of decisions. Charts now begin at the next midnight, and a caption says so. A window starting
    just after midnight holds nearly all of its first day, enough for any KPI to have a value there: Agreement
    drew that day until it read whole buckets too (it failed only when CI ran just after midnight), so the
    pinned store exercises that instant on every run."""
    from collectors.dashboard_data import DAY_US, window_bounds
    from collectors.store.db import decision_time_range, open_store

    url = request.getfixturevalue("synth_url_30d" if store == "now" else "synth_url_pinned")
    if store == "after midnight":
        engine = open_store(url, create=False)
        try:
            start, _ = window_bounds(decision_time_range(engine)[1], "last 7d")
        finally:
            engine.dispose()
        assert 0 < start % DAY_US < 3600 * 1_000_000, "the pinned window starts in the first hour of a day"
    at = _page(url, page, monkeypatch, "last 7d")
    captions = [c.value for c in at.caption]
    note = next(c for c in captions if "Charts over time begin with the first whole day of the window" in c)
    first = pd.Timestamp(re.search(r"window, (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", note)[1], tz="UTC")
    assert first.value // 1000 % DAY_US == 0, note
    drawn = 0
    for fig in _figures(at):
        xs = [x for trace in fig["data"] for x in (trace.get("x") or []) if isinstance(x, str) and x[:2] == "20"]
        if xs:
            drawn += 1
            times = [pd.Timestamp(x) for x in xs]  # plotly writes UTC times without their zone
            assert min(t if t.tzinfo else t.tz_localize("UTC") for t in times) == first, (_title(fig), min(xs))
    assert drawn, "at least one chart over time"


@pytest.mark.usefixtures("fresh_caches")
def test_verdict_shares_read_with_one_decimal_and_reason_codes_lie_flat(synth_url_30d: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict pie printed plotly's 3 significant digits ("77.6%" next to "0.855%"), and the reason codes
    stood as columns under slanted labels ("identity_not_verified" at 45°): the pie reads one decimal, the
    codes lie as horizontal bars, the most frequent on top."""
    figs = _figures(_page(synth_url_30d, "overrides_cost.py", monkeypatch))
    pie, = (f for f in figs if f["data"][0].get("type") == "pie")
    assert pie["data"][0]["texttemplate"] == "%{percent:.1%}" and ".1%" in pie["data"][0]["hovertemplate"]
    reasons, = (f for f in figs if "reason_code" in json.dumps(f["data"]) or "edits and rejects" in json.dumps(f))
    assert {t["orientation"] for t in reasons["data"]} == {"h"}
    totals: dict[str, float] = {}
    for trace in reasons["data"]:
        for code, x in zip(trace["y"], _values(trace["x"]), strict=True):
            totals[code] = totals.get(code, 0) + x
    order = reasons["layout"]["yaxis"]["categoryarray"]
    assert set(order) == set(totals) and [totals[c] for c in order] == sorted(totals.values())  # last on top


_DATES = re.compile(r"^\d{4}-\d\d-\d\d")


@pytest.mark.usefixtures("fresh_caches")
@pytest.mark.parametrize(("window", "bucket"), [("last 24h", "hour"), ("last 7d", "day")])
@pytest.mark.parametrize("page", ["overview.py", "agreement.py", "operations.py", "calibration.py"])
def test_time_axes_name_their_bucket_and_utc(page: str, window: str, bucket: str, synth_url_30d: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Time axes read "bucket" (Overview, Agreement), "proposed" or nothing (Operations, Calibration): how long
    a point is and whose clock were left to guess. Each now reads "day (UTC)" or "hour (UTC)"."""
    timed = [f for f in _figures(_page(synth_url_30d, page, monkeypatch, window))
             if any(isinstance(t.get("x"), list) and t["x"] and _DATES.match(str(t["x"][0])) for t in f["data"])]
    assert timed, "no chart over time"
    for fig in timed:
        text = fig["layout"]["xaxis"].get("title", {}).get("text", "")
        assert re.fullmatch(rf"{bucket}( proposed)? \(UTC\)", text), (_title(fig), text)
    if page == "overview.py":
        assert f"Decisions per {bucket}" in [_title(f) for f in timed]


@pytest.mark.usefixtures("fresh_caches")
def test_changes_read_times_as_utc_minutes_and_name_each_marker(synth_url_30d: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The Changes page wrote "2026-11-25T00:14:50Z" and "[2026-11-21T13:14:50Z, 2026-11-25T00:14:50Z)", its
    chart's lines were "pre" and "post" and neither the dotted change line nor the red and grey links of the
    rates chart had a legend entry. Times now read "2026-11-25 00:14 UTC"; each marker is named."""
    from tests.test_app_tables import _seen

    at = _page(synth_url_30d, "changes.py", monkeypatch)
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
    shown = [c.value for c in at.caption] + list(at.selectbox(key="change").options)
    assert not [text for text in shown if iso.search(text)], [text for text in shown if iso.search(text)]
    assert any(re.search(r"Before: \d{4}-\d\d-\d\d \d\d:\d\d UTC to ", c.value) for c in at.caption)
    listing = _seen(at.dataframe[-1])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", cell) for cell in listing["changed_at"]), listing
    names = {title: [t.get("name", "") for t in fig["data"]] for fig in _figures(at) for title in [_title(fig)]}
    rates = next(v for k, v in names.items() if k.startswith("Rates before"))
    assert {"before", "after", "change not significant"} <= set(rates) and any(
        n.startswith("significant change") for n in rates), rates
    around = next(v for k, v in names.items() if "around the change" in k)
    assert around[:2] == ["before the change", "after the change"] and re.fullmatch(
        r"the change, \d{4}-\d\d-\d\d \d\d:\d\d UTC", around[2]), around


def test_rate_charts_read_in_percent_as_their_tiles_and_tables(synth_url_30d: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides & cost's override error delta by queue read 0 to 1 (hover 0.821) under a tile of 82.1% and a
    table in %; Agreement's pairwise colour scale 0 to 1 (hover 0.83) above a table of agreement in %. Both read in
    %, hovers with one decimal."""
    at = _page(synth_url_30d, "overrides_cost.py", monkeypatch)
    delta = next(f for f in _figures(at) if _title(f).startswith("Override error delta by queue"))
    assert delta["layout"]["yaxis"].get("tickformat", "").endswith("%"), delta["layout"]["yaxis"]
    assert all("%{y:.1%}" in t["hovertemplate"] for t in delta["data"]), [t["hovertemplate"] for t in delta["data"]]
    at = _page(synth_url_30d, "agreement.py", monkeypatch)
    heat = next(f for f in _figures(at) if _title(f).startswith("Pairwise agreement"))
    colorbar = heat["layout"]["coloraxis"].get("colorbar", {})
    assert colorbar.get("tickformat", "").endswith("%"), heat["layout"]["coloraxis"]
    assert all("%{z:.1%}" in t["hovertemplate"] for t in heat["data"])


@pytest.mark.usefixtures("fresh_caches")
def test_quality_chart_lists_the_pairs_in_the_order_of_their_tables(synth_url_30d: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The accuracy chart drew the pairs in the order its traces came (kyc-agent first on the 30-day demo store)
    above tables in the pairs' order (fraud-agent first): left to right it now reads as the tables top down."""
    at = _page(synth_url_30d, "quality.py", monkeypatch)
    fig, = (f for f in _figures(at) if _title(f).startswith("Agent accuracy per model version"))
    headings = [m.value.strip("*") for m in at.markdown if re.fullmatch(r"\*\*[\w-]+ · \w+\*\*", m.value)]
    assert len(headings) >= 2, [m.value for m in at.markdown]
    drawn = {x for t in fig["data"] for x in t["x"]}
    assert list(fig["layout"]["xaxis"].get("categoryarray") or []) == headings, fig["layout"]["xaxis"]
    assert drawn <= set(headings)
