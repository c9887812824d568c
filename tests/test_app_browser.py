"""The dashboard in a real browser: `streamlit run app/main.py` against a small store, driven by headless Chromium.

Visits every page, checks that no Streamlit exception box is shown, and saves a
screenshot per page under test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
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
