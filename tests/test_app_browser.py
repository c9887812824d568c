"""The dashboard in a real browser: `streamlit run app/main.py` against a small store, driven by headless Chromium.

Visits every page, checks that no Streamlit exception box is shown, and saves a
screenshot per page under test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.app_helpers import build_synth_store
from tests.process_helpers import CHROMIUM, headless_chromium, streamlit_server

ROOT = Path(__file__).parent.parent
MAIN = ROOT / "app" / "main.py"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PAGES = {"overview": "", "calibration": "calibration", "operations": "operations",
         "overrides_cost": "overrides_cost", "agreement": "agreement", "fairness": "fairness",
         "alerts": "alerts", "cost_curves": "cost_curves", "autonomy": "autonomy", "changes": "changes",
         "quality": "quality", "triage": "triage"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_synth_store(tmp_path_factory.mktemp("browser"), decisions_per_day=500)


@pytest.fixture(scope="module")
def dashboard(store_url: str) -> Iterator[str]:
    with streamlit_server(store_url) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as chromium:
        yield chromium


def _settle(page: object) -> None:
    """Wait until the script run is over and every chart has drawn its SVG."""
    page.wait_for_selector("h1", timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-testid="stSpinner"]')
              && !document.querySelector('[data-testid="stSkeleton"]')
              && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                   .every(chart => chart.querySelector('.main-svg'))""", timeout=60_000)
    page.wait_for_timeout(1000)  # type: ignore[attr-defined]  # let the last frame paint


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_exception(name: str, dashboard: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2400})  # type: ignore[attr-defined]
    try:
        page.goto(f"{dashboard}/{PAGES[name]}", wait_until="domcontentloaded")
        if name != "alerts":  # the page's first chart, then the rest of the run
            page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)
        _settle(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, errors.first.inner_text()
        assert page.locator('[data-testid="stSidebar"]').count() == 1
        assert page.get_by_role("link", name="Overrides & cost").count() == 1, "the app's own navigation"
        assert page.get_by_text("Deploy", exact=True).count() == 0  # Streamlit's own toolbar is not for readers
        if name != "alerts":
            assert page.locator(".js-plotly-plot").count() >= 1, f"{name} draws no chart"
    finally:
        page.close()


def test_a_page_url_on_a_fresh_server_shows_the_apps_navigation(store_url: str, browser: object) -> None:
    """A bookmark opened first after a restart: the page, inside the app's own navigation.

    (With the pages in a folder named pages/, Streamlit ran such a page on its own, under a
    navigation of file names: "main", "overrides cost"... until someone opened "/".)
    """
    with streamlit_server(store_url) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})  # type: ignore[attr-defined]
        try:
            page.goto(f"{base}/quality", wait_until="domcontentloaded")
            page.wait_for_selector("h1", timeout=60_000)
            _settle(page)
            assert page.get_by_role("heading", name="Quality").count() == 1
            nav = page.locator('[data-testid="stSidebarNav"]')
            assert nav.get_by_role("link", name="Overrides & cost").count() == 1, nav.inner_text()
            assert nav.get_by_text("Steer").count() == 1, nav.inner_text()
            assert nav.get_by_role("link", name="main").count() == 0, nav.inner_text()
        finally:
            page.close()


TILE_PAGES = ("overview", "overrides_cost", "cost_curves", "operations", "changes", "quality")
_CUT_TILE_TEXT = """() => [...document.querySelectorAll('[data-testid="stMetric"]')].flatMap(tile =>
    ['stMetricLabel', 'stMetricValue', 'stMetricDelta'].flatMap(part => {
        const el = tile.querySelector(`[data-testid="${part}"]`);
        if (!el) return [];
        return [el, ...el.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth)
            .map(e => `${part} "${el.innerText}": ${e.scrollWidth} px in ${e.clientWidth} px`);
    }))"""


@pytest.mark.parametrize("width", [1024, 1440])
def test_tile_labels_and_values_are_not_cut_off(width: int, dashboard: str, browser: object) -> None:
    """At a small laptop's 1024 px (sidebar open) four tiles a row cut "harmful override rate" to
    "harmful o…" and "2,840.36" to "2,84…": every tile's label, value and delta shows whole."""
    for name in TILE_PAGES:
        page = browser.new_page(viewport={"width": width, "height": 1400})  # type: ignore[attr-defined]
        try:
            page.goto(f"{dashboard}/{PAGES[name]}", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stMetric"]', timeout=90_000)
            _settle(page)
            assert page.locator('[data-testid="stMetric"]').count() >= 3, name
            assert page.evaluate(_CUT_TILE_TEXT) == [], f"{name} at {width} px"
        finally:
            page.close()


_CUT_CHART_TITLES = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
  .filter(plot => plot.getBoundingClientRect().width > 0).flatMap(plot => {
    const chart = plot.getBoundingClientRect();
    return [...plot.querySelectorAll('.gtitle')].filter(title => {
        const box = title.getBoundingClientRect();
        return box.left < chart.left - 1 || box.right > chart.right + 1;
    }).map(title => `"${title.textContent}": ${Math.round(title.getBoundingClientRect().width)} px in a `
                    + `${Math.round(chart.width)} px chart`);
  })"""


def test_chart_titles_are_not_cut_off_at_1024_px(dashboard: str, browser: object) -> None:
    """Fairness' title "intervention rate by segment.region with 95% Wilson intervals (red: flagged; grey: n too
    small)" ran past its chart at 1024 px: every drawn chart's title stays inside its chart."""
    cut = []
    for name, path in PAGES.items():
        page = browser.new_page(viewport={"width": 1024, "height": 1400})  # type: ignore[attr-defined]
        try:
            page.goto(f"{dashboard}/{path}", wait_until="domcontentloaded")
            if name != "alerts":
                page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)
            _settle(page)
            cut += [f"{name}: {text}" for text in page.evaluate(_CUT_CHART_TITLES)]
        finally:
            page.close()
    assert cut == [], "\n".join(cut)


def _store_with_alert_history(folder: Path) -> str:
    """A small store whose alert history holds one episode of every built-in rule, on slices with long names,
    their summaries and labels as the alert engine writes them."""
    import time

    from collectors.alerts.history import insert_episode
    from collectors.alerts.rules import Observation, build_rules
    from collectors.config import load_config
    from collectors.store.db import open_store

    url = build_synth_store(folder, days=2, decisions_per_day=100)
    slice_labels = {"agent_id": "kyc-onboarding-agent", "model_version": "kyc-v2.4-canary-2026-11",
                    "action_type": "kyc_approve_high_value", "queue": "payments-l1-escalations", "window": "24h"}
    now = time.time_ns() // 1000
    engine = open_store(url, create=False)
    with engine.begin() as conn:
        for i, rule in enumerate(build_rules(load_config())):
            value = rule.threshold * 1.4 + (1.0 if rule.signal_only else 0.0)
            obs = Observation(slice_labels, value, 500, {"mean_before": 0.001, "mean_error": 0.179,
                                                         "mean_after": 0.848, "pending": 42, "decisions": 900})
            firing = i % 2 == 0
            insert_episode(conn, {
                "fingerprint": f"f{i}", "alertname": rule.alertname, "severity": rule.severity,
                "labels": rule.labels(obs), "annotations": rule.annotations(obs),
                "state": "firing" if firing else "resolved", "threshold": rule.threshold,
                "active_at": now - (i + 2) * 3_600_000_000, "starts_at": now - (i + 2) * 3_600_000_000,
                "ends_at": None if firing else now - 600_000_000, "fired_value": value, "resolved_value": None,
                "last_value": value, "worst_value": value, "evaluated_at": now, "notified_state": None})
    engine.dispose()
    return url


_OVERFLOWING_TABLES = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(frame => {
    const scroller = frame.querySelector('.dvn-scroller');
    return {width: frame.clientWidth, content: scroller ? scroller.scrollWidth : -1};
})"""


def test_the_alert_tables_fit_a_1024_px_viewport(tmp_path: Path, browser: object) -> None:
    """At 1024 px (sidebar open) the alert history's eleven columns were 1,740 px wide in a 562 px table:
    the values and summaries were scrolled out of sight. Both alert tables now fit without horizontal scrolling."""
    with streamlit_server(_store_with_alert_history(tmp_path)) as base:
        page = browser.new_page(viewport={"width": 1024, "height": 1400})  # type: ignore[attr-defined]
        try:
            page.goto(f"{base}/alerts", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=90_000)
            _settle(page)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "alerts_1024.png"), full_page=True)
            tables = page.evaluate(_OVERFLOWING_TABLES)
            assert len(tables) == 2, tables  # firing now, history
            assert all(0 < t["content"] <= t["width"] for t in tables), tables
        finally:
            page.close()


def _table_widths(browser: object, url: str) -> list[dict[str, int]]:
    """Each table's width and its content's on the page at 1024 px (sidebar open), once its tables drew."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})  # type: ignore[attr-defined]
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stDataFrame"] .dvn-scroller', timeout=90_000)
        _settle(page)
        return page.evaluate(_OVERFLOWING_TABLES)  # type: ignore[no-any-return]
    finally:
        page.close()


def test_the_agreement_tables_fit_a_1024_px_viewport(dashboard: str, browser: object) -> None:
    """At 1024 px (sidebar open) the reviewer table's raw fractions (0.428571) and column names made it 614 px
    wide in a 562 px table, override rate and dissent scrolled out of sight: it now fits without scrolling."""
    tables = _table_widths(browser, f"{dashboard}/agreement")
    assert tables and all(0 < t["content"] <= t["width"] for t in tables), tables


def test_the_operations_latency_table_fits_a_1024_px_viewport(dashboard: str, browser: object) -> None:
    """At 1024 px (sidebar open) the latency table's headers ("latency p50", "SLA breach rate", "primary
    reviews") and its pending count made it 773 px wide in 562 px: its last columns scrolled out of sight."""
    tables = _table_widths(browser, f"{dashboard}/operations")
    assert len(tables) >= 3 and all(0 < t["content"] <= t["width"] for t in tables), tables


def test_the_quality_tables_fit_a_1024_px_viewport(dashboard: str, browser: object) -> None:
    """At 1024 px (sidebar open) the Guardrails table's twelve columns were 1,279 px wide in 562 px: whether a
    failed check's items are wrong more often was scrolled out of sight; the Model versions table's fourteen
    (pair, version, role, the accuracy with its interval and n, intervention rate, ECE, the difference to stable,
    two p-values, the flag) were 1,405 px wide, everything after the accuracy out of sight. Every table of Quality
    now fits: guardrails, a table per agent and action type, and the two reviewer tables."""
    tables = _table_widths(browser, f"{dashboard}/quality")
    assert all(0 < t["content"] <= t["width"] for t in tables), tables
    assert len(tables) >= 5, tables  # guardrails, at least two model version pairs, gold items, primary reviews


_Y2_TICKS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')].map(plot =>
    [...plot.querySelectorAll('.y2tick text')].map(t => t.textContent)).filter(ticks => ticks.length)"""


def test_the_cost_curve_error_rate_axis_reads_round_evenly_spaced_ticks(dashboard: str, browser: object) -> None:
    """The cost curve's error rate axis took its ticks from the cost axis' gridlines and printed them as whole
    percent: "0%, 8%, 16%, 23%, 31%, 39%" (steps of 7.8 read as 8 and 7), "1%, 3%, 4%, 6%", on another scope
    "0%, 1%, 2%, 2%, 3%" and up to "105%", so the dotted line could not be read off it. Its ticks are now its
    own, evenly spaced, each printed as its value."""
    page = browser.new_page(viewport={"width": 1024, "height": 1400})  # type: ignore[attr-defined]
    try:
        page.goto(f"{dashboard}/cost_curves", wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=90_000)
        _settle(page)
        axes = page.evaluate(_Y2_TICKS)
    finally:
        page.close()
    assert axes, "no chart with an error rate axis"
    for ticks in axes:
        values = [float(t.rstrip("%")) for t in ticks]
        steps = {round(b - a, 6) for a, b in pairwise(values)}
        assert len(values) >= 3 and len(steps) == 1 and steps.pop() > 0, ticks
        assert values[0] == 0 and values[-1] <= 100, ticks


def test_the_overrides_and_cost_tables_fit_a_1024_px_viewport(dashboard: str, browser: object) -> None:
    """At 1024 px (sidebar open) the by-queue table's ten columns (override count, override error delta, harmful
    override rate, cost avoided, cost per decision, its model and review parts, two samples) were 1,141 px wide in
    562 px: the cost columns scrolled out of sight. Overrides and cost are now two tables, both fit."""
    tables = _table_widths(browser, f"{dashboard}/overrides_cost")
    assert all(0 < t["content"] <= t["width"] for t in tables), tables
    assert len(tables) >= 2, tables  # overrides by queue, cost per decision by queue


def test_the_cost_curve_table_fits_a_1024_px_viewport(dashboard: str, browser: object) -> None:
    """At 1024 px (sidebar open) the cost curve's table, headed "cost per 1000", "reviews per 1000", "review hours
    per 1000" and "within the error cap", was 696 px wide in 562 px: whether a threshold keeps within the cap
    scrolled out of sight. Short headers (help on each, a caption saying what they mean): it fits."""
    tables = _table_widths(browser, f"{dashboard}/cost_curves")
    assert tables and all(0 < t["content"] <= t["width"] for t in tables), tables
