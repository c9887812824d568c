"""The Streamlit dashboard under AppTest: every page on a small synthetic store, an empty store and no store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_helpers import build_empty_store, build_synth_store

MAIN = str(Path(__file__).parent.parent / "app" / "main.py")
PAGES = ("views/overview.py", "views/calibration.py", "views/operations.py", "views/overrides_cost.py",
         "views/agreement.py", "views/fairness.py", "views/alerts.py", "views/cost_curves.py", "views/autonomy.py",
         "views/changes.py", "views/quality.py", "views/triage.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def synth_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # 1,000 a day: gus.w shares 40-53 items in 30 days whatever the weekday the store ends on (500: 18-26,
    # below the dissent rule's 20 on some days)
    return build_synth_store(tmp_path_factory.mktemp("app"), decisions_per_day=1000)


pytestmark = pytest.mark.usefixtures("fresh_caches")  # every test: pages cache store reads


def _app(url: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None, **state: str) -> AppTest:
    """Run the app once on `page` with widget state preset (AppTest runs a page of app/views/ on its own,
    so each scenario is a fresh first run rather than a rerun)."""
    monkeypatch.setenv("HITL_TOWER_DB_URL", url)
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    if page:
        at.switch_page(page)
    at.run()
    return at


def _errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.exception]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_synth_store(page: str, synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(synth_url, monkeypatch, page)
    assert not at.exception, _errors(at)
    assert at.title, "each page has a title"
    assert at.sidebar.selectbox(key="window").value == "last 7d"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_so_on_an_empty_store(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(build_empty_store(tmp_path), monkeypatch, page)
    assert not at.exception, _errors(at)
    assert any("no decisions" in i.value for i in at.info)


def test_an_unreachable_store_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}", monkeypatch)
    assert not at.exception, _errors(at)
    assert any("cannot be read" in w.value for w in at.warning)
    at = _app("postgresql+psycopg://nobody@127.0.0.1:1/none", monkeypatch)
    assert not at.exception, _errors(at)
    assert any("cannot be read" in w.value for w in at.warning)


def test_overview_tiles_equal_the_report(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.common import fmt, kpi_name
    from collectors.config import load_config
    from collectors.dashboard_data import window_bounds
    from collectors.engine.report import compute_report, report_to_dict
    from collectors.store.db import decision_time_range, open_store

    at = _app(synth_url, monkeypatch)
    assert not at.exception, _errors(at)
    engine = open_store(synth_url, create=False)
    try:
        start, end = window_bounds(decision_time_range(engine)[1], "last 7d")
        total = report_to_dict(compute_report(engine, load_config(), start, end))["total"]
    finally:
        engine.dispose()
    tiles = {m.label: m.value for m in at.metric}
    assert len(tiles) == 12
    assert "oldest pending now" in tiles  # the whole store's, not the window's (test_dashboard_data)
    kpi_of_label = {kpi_name(kpi): kpi for kpi in total}  # values carry units
    for label, value in tiles.items():
        if label == "oldest pending now":
            continue  # an age as of the moment each was computed
        kpi_id = kpi_of_label[label]
        assert value == fmt(kpi_id, total[kpi_id]), kpi_id


def test_a_filter_selects_the_engine_slice(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.common import fmt
    from collectors.config import load_config
    from collectors.dashboard_data import window_bounds
    from collectors.engine.report import compute_report
    from collectors.store.db import decision_time_range, open_store

    at = _app(synth_url, monkeypatch, filter_queue="payments-l1")
    assert not at.exception, _errors(at)
    engine = open_store(synth_url, create=False)
    try:
        start, end = window_bounds(decision_time_range(engine)[1], "last 7d")
        report = compute_report(engine, load_config(), start, end, by=["queue"])
    finally:
        engine.dispose()
    row = next(r for r in report.rows if r.key == ("payments-l1",))
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["decisions"] == fmt("decisions", row.kpis["decisions"])
    assert tiles["intervention rate"] == fmt("intervention_rate", row.kpis["intervention_rate"])


def test_a_filter_value_gone_from_the_window_is_reset_and_said(synth_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidebar must not keep showing a choice the page no longer applies."""
    plain = _app(synth_url, monkeypatch)
    at = _app(synth_url, monkeypatch, filter_queue="a-queue-with-no-decisions")
    assert not at.exception, _errors(at)
    assert at.sidebar.selectbox(key="filter_queue").value == "(all)"
    assert any("a-queue-with-no-decisions has no decisions in this window" in c.value for c in at.sidebar.caption)
    assert {m.label: m.value for m in at.metric}["decisions"] == {m.label: m.value for m in plain.metric}["decisions"]


def test_the_overview_window_follows_new_decisions_without_a_reload(tmp_path: Path) -> None:
    """A wall screen: each redraw of the Overview's tiles (a fragment, which keeps the page's context)
    moves the window to end at the newest decision now."""
    import streamlit

    from app.common import Context, following_the_store
    from collectors.dashboard_data import window_bounds
    from tests.engine_helpers import DAY, T0, decision, load

    url = f"sqlite:///{tmp_path / 'live.db'}"
    load(url, [decision("a1", T0)]).dispose()
    at_load = Context(url, "last 7d", *window_bounds(T0, "last 7d"))
    assert following_the_store(at_load) == at_load
    load(url, [decision("b1", T0 + 10 * DAY)]).dispose()
    streamlit.cache_data.clear()  # the span is cached for 5 s
    moved = following_the_store(at_load)
    assert (moved.start_us, moved.end_us) == window_bounds(T0 + 10 * DAY, "last 7d")
    assert "following_the_store(page_ctx)" in (Path(MAIN).parent / "views" / "overview.py").read_text()


def test_the_agreement_page_names_the_dissenting_reviewer(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(synth_url, monkeypatch, "views/agreement.py", window="last 30d")
    assert not at.exception, _errors(at)
    named = [w.value for w in at.warning if "Dissenting" in w.value]
    assert len(named) == 1 and "**gus.w**" in named[0]  # the planted one, and no escalation reviewer
    assert named[0].startswith("Dissenting reviewer: **gus.w**"), named[0]  # one of them: no "reviewer(s)"


def test_at_demo_volume_the_dissenter_shows_within_a_week(tmp_path: Path) -> None:
    # The demo's 2,000 decisions a day: a 7-day window holds enough shared items for the interval.
    from collectors import dashboard_data
    from collectors.config import load_config
    from collectors.dashboard_data import window_bounds
    from collectors.store.db import decision_time_range, open_store

    url = build_synth_store(tmp_path, days=30, decisions_per_day=2000)  # the demo store
    engine = open_store(url, create=False)
    try:
        start, end = window_bounds(decision_time_range(engine)[1], "last 7d")
        table = dashboard_data.reviewers(engine, load_config(), start, end)["table"]
        day = dashboard_data.reviewers(engine, load_config(), end - 86_400_000_000, end)["table"]
    finally:
        engine.dispose()
    assert table.loc[table["dissent"], "reviewer_id"].tolist() == ["gus.w"]
    assert not day["dissent"].any()  # a day is too few shared items to call anyone out


def test_reviewer_figures_follow_the_filters(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # gus.w works in payments-l1 only: the support queue's reviewer table has no row for him.
    at = _app(synth_url, monkeypatch, "views/agreement.py", window="last 7d", filter_queue="support")
    assert not at.exception, _errors(at)
    table = at.dataframe[0].value
    assert len(table) and "gus.w" not in set(table["reviewer_id"])
    assert not [w for w in at.warning if "Dissenting" in w.value]
    at = _app(synth_url, monkeypatch, "views/agreement.py", window="last 7d", filter_queue="payments-l1")
    assert "gus.w" in set(at.dataframe[0].value["reviewer_id"])


def _store_with_a_firing_alert(tmp_path: Path, evaluated_ago_us: int = 0) -> str:
    import time

    from collectors.alerts.history import insert_episode
    from collectors.store.db import open_store

    url = build_synth_store(tmp_path, days=2, decisions_per_day=100)
    engine = open_store(url, create=False)
    now = time.time_ns() // 1000
    with engine.begin() as conn:
        insert_episode(conn, {
            "fingerprint": "f1", "alertname": "HitlBacklogAge", "severity": "critical",
            "labels": {"queue": "payments-l1"}, "annotations": {"summary": "Backlog in queue payments-l1"},
            "state": "firing", "threshold": 14400.0, "active_at": now - 10**9 - evaluated_ago_us,
            "starts_at": now - 10**9 - evaluated_ago_us, "ends_at": None, "fired_value": 20000.0,
            "resolved_value": None, "last_value": 20000.0, "worst_value": 20000.0,
            "evaluated_at": now - evaluated_ago_us, "notified_state": None})
    engine.dispose()
    return url


def test_firing_alerts_show_on_overview_and_alerts_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _store_with_a_firing_alert(tmp_path)
    at = _app(url, monkeypatch)
    assert not at.exception, _errors(at)
    assert any("HitlBacklogAge" in e.value and "payments-l1" in e.value for e in at.error)
    assert any(e.value.startswith("1 alert firing (see Alerts)") for e in at.error), [e.value for e in at.error]
    at = _app(url, monkeypatch, "views/alerts.py")
    assert not at.exception, _errors(at)
    assert [what.split(" ")[0] for what in at.dataframe[0].value["what"]] == ["HitlBacklogAge"]
    assert any(re.fullmatch(r"Rules last evaluated \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ s ago\)\.", c.value)
               for c in at.caption), [c.value for c in at.caption]
    assert not [w for w in at.warning if "last looked" in w.value]
    assert any("sidebar's time window and filters do not apply to alerts" in c.value for c in at.caption)


def test_alerts_no_evaluator_has_seen_for_days_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit F29: a store whose evaluator stopped days ago showed "Firing now" without a word of when."""
    url = _store_with_a_firing_alert(tmp_path, evaluated_ago_us=3 * 86_400 * 10**6)
    at = _app(url, monkeypatch, "views/alerts.py")
    assert not at.exception, _errors(at)
    warning = next(w.value for w in at.warning if "last looked" in w.value)
    assert re.search(r"last looked at these alerts 3\.0 d ago \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", warning), warning
    assert "hitl-tower alerts --watch" in warning
    assert [what.split(" ")[0] for what in at.dataframe[0].value["what"]] == ["HitlBacklogAge"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_copes_with_filters_matching_nothing(page: str, synth_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(synth_url, monkeypatch, page, filter_queue="fraud", filter_agent_id="kyc-agent")
    assert not at.exception, _errors(at)
    if page in ("views/overview.py", "views/overrides_cost.py", "views/calibration.py"):
        assert at.info, "an empty selection says so"


def test_counts_name_their_things_in_the_right_number() -> None:
    """"1 alert(s) firing", "2 change(s)": the reader did the grammar."""
    from app.common import plural

    assert plural(1, "alert") == "1 alert" and plural(4, "alert") == "4 alerts" and plural(0, "change") == "0 changes"
    assert plural(1234, "decision") == "1,234 decisions" and plural(2, "reply", "replies") == "2 replies"


def test_pages_and_commands_write_no_parenthesised_plurals() -> None:
    """Every page and message counts with `plural` (or its own words), never "(s)": the Cost curves page
    showed the advice's caveat "917 outcome(s) of unaudited auto decisions left out"."""
    root = Path(__file__).parent.parent
    noun = re.compile(r"(?<!\w)(?!http\(s\))[a-z]+\(s\)")  # "alert(s)", not a call "_label(s)" nor "http(s)"
    sources = [*(root / "app").rglob("*.py"), *(root / "collectors").rglob("*.py")]
    assert not [(p.name, line) for p in sources for line in p.read_text().splitlines() if noun.search(line)]


def test_login_gate_is_off_by_default_and_on_with_an_auth_section() -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    entry = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
    at = AppTest.from_file(entry, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
                          "client_id": "id", "client_secret": "s",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert any("protected" in m.value for m in at.markdown)


def test_recent_frames_keep_a_few_for_the_ttl() -> None:
    import time

    from app.common import RecentFrames

    frames = RecentFrames(size=2, ttl=0.5)
    frames["a"], frames["b"], frames["c"] = 1, 2, 3
    assert "a" not in frames and frames["b"] == 2 and len(frames) == 2  # the oldest went first
    time.sleep(0.6)
    assert "c" not in frames and len(frames) == 0


def test_the_steer_pages_share_one_read_of_the_window(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from collectors.advice import frame

    reads: list[tuple[int, int]] = []
    real = frame._read_frame

    def counting(engine, config, start_us, end_us):  # type: ignore[no-untyped-def]
        reads.append((start_us, end_us))
        return real(engine, config, start_us, end_us)

    monkeypatch.setattr(frame, "_read_frame", counting)
    for page in ("views/quality.py", "views/triage.py", "views/autonomy.py"):
        at = _app(synth_url, monkeypatch, page, window="last 7d")
        assert not at.exception, _errors(at)
    assert len(reads) == len(set(reads)) and reads  # each window read once across the three pages


def test_money_is_compact_enough_for_a_tile() -> None:
    from app.common import fmt

    assert fmt("cost_per_decision", 2.934) == "2.93"
    assert fmt("cost_avoided", 9_999.5) == "9,999.50"
    assert fmt("cost_avoided", 319_318.2) == "319.3k"
    assert fmt("cost_avoided", -4_560_000.0) == "-4.56M"
    assert fmt("cost_avoided", None) == "-"


def test_money_names_the_configured_currency(synth_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """config `currency`: a code after amounts, a symbol before them, on the tiles and the money axes."""
    import json

    from app.common import fmt, get_config

    monkeypatch.setenv("HITL_TOWER_CURRENCY", "EUR")
    at = _app(synth_url, monkeypatch)
    assert not at.exception, _errors(at)
    money = {m.label: m.value for m in at.metric if m.label == "cost per decision"}
    assert len(money) == 1 and re.fullmatch(r"\d+\.\d\d EUR", money["cost per decision"]), money
    at = _app(synth_url, monkeypatch, "views/triage.py")
    titles = [json.loads(c.proto.spec)["layout"]["xaxis"].get("title", {}).get("text") for c in at.get("plotly_chart")]
    assert "EUR per review hour" in titles, titles
    monkeypatch.setenv("HITL_TOWER_CURRENCY", "$")
    get_config.clear()
    assert fmt("cost_avoided", -319_318.2) == "-$319.3k"


def test_deltas_of_rates_are_points_and_a_zero_has_no_arrow_or_colour() -> None:
    from app.common import delta_style, fmt_delta

    assert fmt_delta("intervention_rate", 0.011) == "+1.1 pp"  # 12% -> 13.1%, not "+1.1%"
    assert fmt_delta("sla_breach_rate", -0.25) == "-25.0 pp"
    assert fmt_delta("ece", 0.008) == "+0.008"  # shown as a score, so its delta too
    assert fmt_delta("decisions", 118) == "+118"
    assert fmt_delta("decisions", 0) == "±0" and fmt_delta("intervention_rate", 0.0004) == "±0"
    assert delta_style("decisions", 0) == {"delta_color": "off", "delta_arrow": "off"}
    assert delta_style("ece", 0.008) == {"delta_color": "inverse", "delta_arrow": "auto"}  # lower is better
    assert fmt_delta("ece", None) is None


def test_alerts_page_vouches_for_nothing_when_no_alert_was_ever_recorded(synth_url: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a store without any alert record (the demo built with --no-serve, no evaluator run) the page showed a
    green "No alert is firing." above "No alert history yet": it vouched for rules nobody had evaluated. It now
    says that nothing is recorded, why that may be, and how to evaluate the rules; no green tick."""
    at = _app(synth_url, monkeypatch, "views/alerts.py")
    assert not at.exception, _errors(at)
    assert not at.dataframe  # the store holds no alert episode
    assert not [s.value for s in at.success], [s.value for s in at.success]
    note = next((i.value for i in at.info if "No alert has been recorded" in i.value), None)
    assert note is not None and "hitl-tower alerts --watch" in note, [i.value for i in at.info]


def test_overview_says_when_no_decision_has_arrived_for_a_while(tmp_path: Path, synth_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo store built with --no-serve ended weeks before it was looked at: the Overview read "oldest pending
    now 24.0 d" over a window of that last week, with nothing saying that no decision had arrived since. It now
    says how long the store has been quiet and since when; a store receiving events reads no such note."""
    from datetime import UTC, datetime, timedelta

    ended = build_synth_store(tmp_path, days=2, decisions_per_day=100, end=datetime.now(UTC) - timedelta(days=3))
    at = _app(ended, monkeypatch)
    assert not at.exception, _errors(at)
    note = next((i.value for i in at.info if i.value.startswith("No decision has arrived for")), None)
    assert note is not None, [i.value for i in at.info]
    assert re.match(r"No decision has arrived for (2\.9|3\.0) d: the newest is from \d{4}-\d\d-\d\d \d\d:\d\d UTC\.",
                    note), note
    at = _app(synth_url, monkeypatch)
    assert not [i.value for i in at.info if i.value.startswith("No decision has arrived")]
