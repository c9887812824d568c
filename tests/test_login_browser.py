"""The dashboard's login gate against a real OIDC provider, in a real browser.

A local OpenID Connect provider (`oidc-provider-mock`: authlib on Flask, with a
form that asks for the user's subject) runs in this process; `streamlit run
app/main.py` runs in a temp working dir whose `.streamlit/secrets.toml` has an
`[auth]` section pointing at it; headless Chromium logs in through the
provider's authorization page, sees the Overview, then logs out through the
provider's end-session page. Before that, no page's own URL gets past the gate. Screenshots go to test-artifacts/screenshots/login_*.png.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.app_helpers import build_synth_store
from tests.process_helpers import CHROMIUM, free_port, headless_chromium, stop, wait_http_ok

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).parent.parent
MAIN = ROOT / "app" / "main.py"
SHOTS = ROOT / "test-artifacts" / "screenshots"
USER = "alice@example.com"  # the subject typed into the provider's form; the provider makes it the email claim
PAGE_NAMES = sorted(path.stem for path in (ROOT / "app" / "views").glob("*.py") if path.stem != "__init__")
TIMEOUT_MS = 90_000  # the dashboard's first run reads the store; CI machines are small

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
    # the mock provider's own use of Authlib APIs that newer Authlib deprecates: not this project's code
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]


@dataclass(frozen=True)
class Site:
    app: str  # the dashboard, as the browser reaches it (the host of the redirect_uri)
    provider: str  # the OIDC provider's issuer URL
    log: Path  # the dashboard's stderr


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OIDC provider on a free localhost port; any client id and secret are accepted."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def site(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The dashboard with login on: its working dir holds .streamlit/secrets.toml with an [auth] section."""
    folder = tmp_path_factory.mktemp("login")
    url = build_synth_store(folder, decisions_per_day=200)
    port = free_port()
    app = f"http://localhost:{port}"
    (folder / ".streamlit").mkdir()
    (folder / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "{app}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "hitl-tower"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    env = {**os.environ, "HITL_TOWER_DB_URL": url, "HITL_TOWER_CONFIG": str(ROOT / "config" / "tower.yaml"),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = folder / "streamlit.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--global.developmentMode", "false"],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield Site(app=app, provider=provider, log=log)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _settled(page: Page) -> None:
    """Wait until the script run is over and every chart has drawn its SVG, then for a painted frame."""
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-testid="stSpinner"]')
              && !document.querySelector('[data-testid="stSkeleton"]')
              && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                   .every(chart => chart.querySelector('.main-svg'))""", timeout=TIMEOUT_MS)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def _expect_login_gate(page: Page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("This dashboard is protected")).to_be_visible()
    assert page.locator('[data-testid="stMetric"]').count() == 0, "KPI tiles shown before login"
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0, "charts shown before login"
    assert page.get_by_role("link", name="Overrides & cost").count() == 0, "navigation shown before login"
    assert page.get_by_text("Store:").count() == 0, "sidebar filters shown before login"


def test_login_through_a_real_oidc_provider_then_logout(site: Site, browser: Browser) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 2400})  # no cookies yet
    context.set_default_timeout(TIMEOUT_MS)  # clicks, fills and screenshots too, not only the explicit waits
    page = context.new_page()
    try:
        # first, on the fresh server, every page by its own URL (a bookmark after a restart): each is gated
        for name in PAGE_NAMES:
            page.goto(f"{site.app}/{name}", wait_until="domcontentloaded")
            _expect_login_gate(page)
            if name == "overview":
                _shot(page, "login_gate_page_url")

        page.goto(site.app, wait_until="domcontentloaded")
        _expect_login_gate(page)
        assert page.get_by_role("heading", name="Overview").count() == 0
        _shot(page, "login_gate")

        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{site.provider}/oauth2/authorize?**", timeout=TIMEOUT_MS)
        assert "client_id=hitl-tower" in page.url
        page.locator('input[name="sub"]').fill(USER)
        _shot(page, "login_provider")
        page.get_by_role("button", name="Authorize").click()

        # the provider redirects to /oauth2callback, Streamlit swaps the code for tokens and sets its cookie
        page.wait_for_url(f"{site.app}/", timeout=TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=TIMEOUT_MS)
        _settled(page)
        _shot(page, "login_overview")
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, errors.first.inner_text()
        assert page.locator('[data-testid="stMetric"]').count() == 12, "the Overview's KPI tiles"
        sidebar = page.locator('[data-testid="stSidebar"]')
        expect(sidebar.get_by_text(f"Signed in as {USER}")).to_be_visible()
        expect(sidebar.get_by_role("link", name="Overrides & cost")).to_be_visible()

        # logging out goes through the provider's end-session page and back to the gate
        sidebar.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{site.provider}/oauth2/end_session?**", timeout=TIMEOUT_MS)
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(f"{site.app}/", timeout=TIMEOUT_MS)
        _expect_login_gate(page)
        _shot(page, "login_after_logout")
        page.goto(f"{site.app}/overview", wait_until="domcontentloaded")  # the cookie is gone too
        _expect_login_gate(page)
    except Exception as exc:
        _shot(page, "login_failure")
        raise AssertionError(f"{exc}\nat {page.url} (screenshot login_failure.png)\n"
                             f"--- streamlit stderr (tail) ---\n{site.log.read_text()[-3000:]}") from exc
    finally:
        context.close()
