"""What the dashboard's tables and tiles show a reader: empty cells, p-values and rates as text, the
tiles' deltas (Overview, Overrides & cost) when the store does not cover the reference window, and the Quality flags' floor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from tests.app_helpers import build_synth_store, run_view

MAIN = str(Path(__file__).parent.parent / "app" / "main.py")
DAY_US = 86_400_000_000
P_TEXT = re.compile(r"^(—|<0\.001|0\.\d{1,5}|1)$")  # 3 significant digits from 0.001 on

pytestmark = pytest.mark.usefixtures("fresh_caches")


def _seen(table: Any) -> pd.DataFrame:
    """A st.dataframe's cells as the browser shows them: the Styler's text, and the placeholder
    ("None" when none is set) where the value is missing."""
    data = table.proto.arrow_data
    values = convert_arrow_bytes_to_pandas_df(data.data)
    shown = (convert_arrow_bytes_to_pandas_df(data.styler.display_values) if data.styler.display_values
             else values.astype(str))
    cells = np.where(values.isna().to_numpy(), table.proto.placeholder or "None", shown.astype(str).to_numpy())
    return pd.DataFrame(cells, columns=list(values.columns))


def _page(url: str, page: str, monkeypatch: pytest.MonkeyPatch, window: str) -> AppTest:
    return run_view(url, page, monkeypatch, window)


def _no_raw_cells(seen: pd.DataFrame) -> None:
    """No cell reads None/nan, and no number is printed in e-notation or with pandas' six decimals."""
    for column in seen.columns:
        for cell in seen[column]:
            assert cell not in ("None", "nan", "NaN", "<NA>"), (column, cell)
            assert not re.search(r"\de-\d|\.\d{6}\b", cell), (column, cell)


# ---- p-values and missing values -------------------------------------------------------------------


def test_p_values_read_as_three_digits_or_below_a_thousandth() -> None:
    from app.common import MISSING, p_text

    assert p_text(1e-300) == "<0.001" and p_text(0.000999) == "<0.001"
    assert p_text(0.001) == "0.001" and p_text(0.012345) == "0.0123" and p_text(0.94871) == "0.949"
    assert p_text(1.0) == "1"
    assert p_text(None) == MISSING and p_text(float("nan")) == MISSING


def test_negative_durations_keep_their_unit() -> None:
    """A shorter latency (a negative delta) read "-7200 s": the unit was picked by the signed value."""
    from app.common import CELL_TEXT, _duration

    assert _duration(-7200) == "-2.0 h" and _duration(-300) == "-5.0 min" and _duration(-400_000) == "-4.6 d"
    assert _duration(-30) == "-30 s" and _duration(-0.2) == "0 s" and _duration(7200) == "2.0 h"
    assert _duration(-604_740, down=True) == "-6.9 d" and _duration(604_740, down=True) == "6.9 d"
    assert CELL_TEXT["duration"](-90_000) == "-25.0 h"


def test_changes_tiles_show_latency_in_its_unit(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The latency tile read "0.12 h" and its delta "-0.05 h" (hours with two decimals, whatever the size)."""
    at = _page(synth_url_30d, "changes.py", monkeypatch, "last 30d")
    latency = next(m for m in at.metric if m.label == "latency p90")
    duration = r"(\d+ s|\d+\.\d (min|h|d))"
    assert re.fullmatch(duration, latency.value), latency.value
    assert latency.proto.delta == "" or re.fullmatch(r"[+-]?" + duration, latency.proto.delta), latency.proto.delta


def test_styled_tables_keep_numbers_and_show_text() -> None:
    from app.common import MISSING, styled

    table = pd.DataFrame({"rate": [0.8398, None], "delta": [0.221, -0.05], "p": [1e-300, None],
                          "ece": [0.04891, 0.2], "other": [0.123456789, np.nan], "n": [1088, 5]})
    html = styled(table, {"rate": "rate", "delta": "points", "p": "p", "ece": "score"}).to_html()
    for text in ("84.0%", "+22.1 pp", "-5.0 pp", "<0.001", "0.049", "0.123", MISSING, "1088"):
        assert text in html, text
    assert "e-300" not in html and "0.123457" not in html and "None" not in html
    assert table["p"].iloc[0] == 1e-300  # the numbers stay (sorting, CSV)


def test_changes_tables_show_no_none_and_readable_p_values(synth_url_30d: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(synth_url_30d, "changes.py", monkeypatch, "last 30d")
    kpis, listing = at.dataframe[0], at.dataframe[-1]
    assert kpis.proto.placeholder == listing.proto.placeholder == "—"
    seen = _seen(kpis)
    _no_raw_cells(seen)
    _no_raw_cells(_seen(listing))
    rates = kpis.value["significant"].notna().to_numpy()
    assert rates.any() and (~rates).any()  # rates are tested, the other KPIs are not
    assert (seen.loc[~rates, "p-value"] == "—").all()
    assert seen["p-value"].map(lambda p: bool(P_TEXT.match(p))).all(), seen["p-value"].tolist()
    assert not seen[["before", "after", "delta"]].isin(["-", "None"]).any().any()


def test_quality_tables_show_rates_in_percent_and_readable_p_values(synth_url_30d: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(synth_url_30d, "quality.py", monkeypatch, "last 30d")
    guard = next(t for t in at.dataframe if tuple(t.value.columns)[:2] == ("rule", "checks"))
    pairs = [t for t in at.dataframe if tuple(t.value.columns)[:2] == ("model_version", "role")]
    reviewers = [t for t in at.dataframe if "reviewer_id" in t.value.columns]
    assert len(reviewers) == 2  # gold items and primary reviews
    assert len(pairs) >= 2  # a table per agent and action type
    for table in [guard, *pairs, *reviewers]:
        assert table.proto.placeholder == "—"
        _no_raw_cells(_seen(table))
    seen = pd.concat([_seen(t) for t in pairs], ignore_index=True)
    roles = pd.concat([t.value["role"] for t in pairs], ignore_index=True)
    assert seen["accuracy_p_value"].map(lambda p: bool(P_TEXT.match(p))).all(), seen["accuracy_p_value"].tolist()
    assert (seen["accuracy_p_value"] != "—").any()
    stable = (roles == "stable").to_numpy()
    assert (seen.loc[stable, "accuracy_delta"] == "—").all()
    assert seen.loc[~stable, "accuracy_delta"].str.fullmatch(r"[+-]\d+\.\d pp|—").all()
    assert seen["accuracy"].str.fullmatch(r"\d+\.\d%|—").all(), seen["accuracy"].tolist()
    # each pair's intervention rates in a line under its table: in %, with their sample and test
    lines = [c.value for c in at.caption if c.value.startswith("Intervention rate: ")]
    assert len(lines) == len(pairs), lines
    rate = r"\S+ (\d+\.\d%|—) of \d{1,3}(,\d{3})*( \(p (<0\.001|0\.\d{1,5}|1) against stable\))?"
    assert all(re.fullmatch(rf"Intervention rate: {rate}(, {rate})*\.", line) for line in lines), lines
    assert any("(p <0.001 against stable)" in line for line in lines), lines  # not 1e-09
    guard_seen = _seen(guard)
    assert guard_seen["fail_rate"].str.fullmatch(r"\d+\.\d%").all()
    assert guard_seen["p_value"].map(lambda p: bool(P_TEXT.match(p))).all()
    assert _seen(reviewers[0])["accuracy"].str.fullmatch(r"\d+\.\d%").all()


# ---- Overview: deltas against a reference window the store covers only in part -------------------


@pytest.fixture(scope="module")
def short_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """10 days of traffic: the 7d window's 7d before holds only its last 3 days."""
    return build_synth_store(tmp_path_factory.mktemp("short"), days=10, decisions_per_day=150)


def _overview(url: str, monkeypatch: pytest.MonkeyPatch, window: str) -> AppTest:
    monkeypatch.setenv("HITL_TOWER_DB_URL", url)
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["window"] = window
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    assert len(at.metric) == 12
    return at


@pytest.mark.parametrize("page", ["overview.py", "operations.py", "agreement.py"])
def test_charts_say_where_the_store_begins_inside_the_window(page: str, short_url: str, synth_url_30d: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The 3-day demo store's 7d window drew four empty days on the Overview's charts, under a caption saying they
    began with the window's first whole day: as if no decision had been made on those days. Where the store begins
    inside the window the caption now says so; a store covering the window reads no such sentence."""
    at = run_view(short_url, page, monkeypatch, "last 30d")  # 10 days of traffic
    captions = [c.value for c in at.caption]
    said = [c for c in captions if "The store's first decision is from" in c]
    assert len(said) == 1, captions
    assert re.search(r"first decision is from \d{4}-\d\d-\d\d \d\d:\d\d UTC, (19\.9|20\.0) d into the window: the "
                     r"charts hold nothing before it\.", said[0]), said[0]
    at = run_view(synth_url_30d, page, monkeypatch, "last 7d")
    assert not [c.value for c in at.caption if "first decision is from" in c.value]


def test_a_partly_covered_reference_window_hides_the_deltas_and_says_why(short_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    at = _overview(short_url, monkeypatch, "last 7d")
    assert all(not m.proto.delta for m in at.metric), [m.proto.delta for m in at.metric]
    caption = next(c.value for c in at.caption if "No deltas" in c.value)
    assert re.search(r"the 7d before is only 2\.9 d covered by the store \(its first decision: ", caption), caption
    assert "Deltas against" not in " ".join(c.value for c in at.caption)


def test_a_covered_reference_window_keeps_the_deltas(short_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _overview(short_url, monkeypatch, "last 24h")
    with_delta = {m.label for m in at.metric if m.proto.delta}
    # every KPI with a value either side, but pending and its oldest age (as of now: no delta, AS_OF_NOW)
    assert {"decisions", "intervention rate", "auto rate", "agreement alpha", "latency p90", "SLA breach rate",
            "cost per decision"} <= with_delta, with_delta
    assert not with_delta & {"pending", "oldest pending now"}, with_delta
    assert any("Deltas against the 24h before" in c.value for c in at.caption)
    assert not any("No deltas" in c.value for c in at.caption)


def test_a_reference_window_before_the_store_says_it_holds_nothing(short_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = _overview(short_url, monkeypatch, "last 30d")
    assert all(not m.proto.delta for m in at.metric)
    assert any("the store holds nothing from the 30d before" in c.value for c in at.caption)


@pytest.mark.parametrize("window", ["last 30d", "last 7d"])
def test_overrides_cost_hides_deltas_against_an_uncovered_window(window: str, short_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The Overview's rule on the Overrides & cost tiles too: a 10-day store's 30d window read
    "override count 4,539 ↑ +4,534" against a 30d before that held nothing."""
    at = run_view(short_url, "overrides_cost.py", monkeypatch, window)
    assert len(at.metric) == 5
    assert all(not m.proto.delta for m in at.metric), [m.proto.delta for m in at.metric]
    assert any("No deltas: the " in c.value for c in at.caption), [c.value for c in at.caption]


def test_overrides_cost_keeps_deltas_against_a_covered_window(short_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_view(short_url, "overrides_cost.py", monkeypatch, "last 24h")
    deltas = {m.label: m.proto.delta for m in at.metric}
    assert deltas["cost per decision"], deltas  # needs no outcome
    # the override tiles need outcomes, most of the last day's still to come: no delta (next test)
    assert not any(deltas[k] for k in ("override count", "harmful override rate", "cost avoided")), deltas
    assert any("Deltas against the 24h before" in c.value for c in at.caption)


@pytest.mark.parametrize("page", ["overview.py", "overrides_cost.py"])
def test_outcome_based_tiles_show_no_delta_while_outcomes_are_still_arriving(page: str, short_url: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcomes arrive days after the decision: the last day's ECE or harmful override rate against the day
    before stood on a third of its outcomes and read as a change; the caption gives the coverage of both."""
    at = run_view(short_url, page, monkeypatch, "last 24h")
    deltas = {m.label: m.proto.delta for m in at.metric}
    outcome_tiles = {"ECE", "harmful override rate"} if page == "overview.py" else {
        "override count", "override error delta", "harmful override rate", "cost avoided"}
    assert not any(deltas[k] for k in outcome_tiles), deltas
    assert any(v for k, v in deltas.items() if k not in outcome_tiles), "the other tiles keep theirs"
    caption = next(c.value for c in at.caption if "Outcomes still arriving" in c.value)
    assert re.search(r"\d+% of this window's decisions have an outcome, \d+% of the 24h before's", caption), caption
    assert "harmful override rate" in caption


def test_the_psi_tile_shows_no_value_on_fewer_decisions_than_the_alerting_gate(short_url: str,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """PSI on 150 decisions against 150 (alerts.psi_min_decisions: 1,000) is noise no alert acts on; the tile read
    it as a value with a delta. Now "—", no delta, no sparkline, and "n too small" under it."""
    at = _overview(short_url, monkeypatch, "last 24h")
    psi = next(m for m in at.metric if m.label == "PSI")
    assert psi.value == "—" and not psi.proto.delta and not psi.proto.chart_data, psi.proto
    assert any(re.fullmatch(r"n too small: [\d,]+ decisions in the window and [\d,]+ in the reference window",
                            c.value) for c in at.caption), [c.value for c in at.caption]
    assert "alerts.psi_min_decisions" in psi.proto.help


def test_every_page_takes_its_tile_deltas_through_the_one_rule() -> None:
    """A page formatting deltas itself could show one against a window the store does not cover."""
    views = Path(__file__).parent.parent / "app" / "views"
    for page in views.glob("*.py"):
        source = page.read_text()
        assert "fmt_delta(" not in source and '["deltas"]' not in source, page.name
        if "delta_args(" in source:
            assert "tile_deltas(" in source, page.name


def test_reference_gap_by_hand() -> None:
    from app.common import Context, reference_gap, reference_name
    from collectors.validate import format_timestamp

    day = DAY_US
    ctx = Context("sqlite://", "last 7d", 14 * day, 21 * day)
    ref = {"start": format_timestamp(7 * day), "end": format_timestamp(14 * day)}
    name = reference_name(ctx, ref)
    assert name == "the 7d before"
    assert reference_gap(ref, 7 * day, name) is None and reference_gap(ref, 0, name) is None
    assert "only 3.0 d covered" in str(reference_gap(ref, 11 * day, name))
    assert "only 6.9 d covered" in str(reference_gap(ref, 7 * day + 60_000_000, name))  # short by a minute
    assert "only 5.0 h covered" in str(reference_gap(ref, 14 * day - 5 * 3_600_000_000, name))
    assert "holds nothing from the 7d before" in str(reference_gap(ref, 14 * day, name))
    fixed = {"start": format_timestamp(0), "end": format_timestamp(7 * day)}  # config reference_window
    assert reference_name(ctx, fixed).startswith("the reference window 1970-01-01 00:00 UTC to ")


# ---- Quality: the page draws the flags collectors decided --------------------------------------------


def test_the_quality_banner_names_only_what_collectors_flagged(synth_url_30d: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A version less accurate than stable at p < 0.05 on one outcome (the old page rule flagged it)
    is named only when collectors flag it."""
    from collectors.advice import quality

    real = quality.quality_report

    def with_a_noisy_canary(flagged: bool) -> Any:
        def report(*args: Any, **kwargs: Any) -> dict[str, Any]:
            data = real(*args, **kwargs)
            canary = next(v for v in data["model_versions"] if v["role"] != "stable")
            canary.update(model_version="noisy-canary", accuracy_p_value=1e-9, accuracy_delta=-0.9, flagged=flagged,
                          accuracy={**canary["accuracy"], "rows": 1})
            rule = data["guardrails"]["rows"][0]
            rule.update(rule="noisy-rule", p_value=1e-9, flagged=flagged)
            return data
        return report

    monkeypatch.setattr(quality, "quality_report", with_a_noisy_canary(False))
    at = _page(synth_url_30d, "quality.py", monkeypatch, "last 30d")
    banners = [w.value for w in at.warning] + [s.value for s in at.success]
    assert not any("noisy-canary" in b or "noisy-rule" in b for b in banners)
    assert any("at least 100 outcomes" in b for b in banners)

    import streamlit

    streamlit.cache_data.clear()
    monkeypatch.setattr(quality, "quality_report", with_a_noisy_canary(True))
    at = _page(synth_url_30d, "quality.py", monkeypatch, "last 30d")
    assert any("noisy-canary" in w.value for w in at.warning)
    assert any("noisy-rule" in w.value and "on at least 100 outcomes each" in w.value for w in at.warning)


_KPI_IDS = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)*_(?:rate|seconds|alpha|delta|count|avoided|accuracy|decision)\b")


@pytest.mark.parametrize("page", ["overview.py", "overrides_cost.py", "agreement.py", "fairness.py", "changes.py"])
def test_pages_name_kpis_in_words_not_ids(page: str, synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles, chart titles, axes, legends and pickers say "intervention rate", not "intervention_rate"."""
    import json

    at = _page(synth_url_30d, page, monkeypatch, "last 30d")
    shown = [m.label for m in at.metric] + [o for s in at.selectbox for o in s.options]
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        layout = fig["layout"]
        shown += [str(layout.get("title", {}).get("text", ""))] + [t.get("name", "") for t in fig["data"]]
        shown += [str(layout[a].get("title", {}).get("text", "")) for a in layout if a.startswith(("xaxis", "yaxis"))]
    if page == "fairness.py":  # its headlines are the page's; the Changes headline is the advice's own text
        shown += [e.value for e in (*at.warning, *at.success, *at.info)]
    assert not [text for text in shown if _KPI_IDS.search(str(text))], [t for t in shown if _KPI_IDS.search(str(t))]


def _raw_ids() -> re.Pattern[str]:
    """Any id of a KPI (or advice rate) that does not read as words, as a whole word: "intervention_rate",
    "ece", "latency_p90_seconds"; not "ECE" or "decisions"."""
    from collectors.advice import changes, fairness
    from collectors.kpis.spec import KPI_IDS, kpi_name

    ids = {i for i in (*KPI_IDS, *fairness.RATE_IDS, *changes.RATES, *changes.LEVELS) if kpi_name(i) != i}
    return re.compile(r"\b(?:" + "|".join(sorted(ids, key=len, reverse=True)) + r")\b")


ID_COLUMNS = ("kpi_id", "rate_id")  # a CSV's machine-friendly ids, next to the words


def _shown_headers(table: Any) -> list[str]:
    """A st.dataframe's headers as the browser shows them (column_config labels), hidden columns left out."""
    import json

    config = json.loads(table.proto.columns or "{}")
    return [str(config.get(c, {}).get("label") or c) for c in table.value.columns
            if not config.get(c, {}).get("hidden")]


@pytest.mark.parametrize("page", ["calibration.py", "operations.py", "overrides_cost.py", "fairness.py", "changes.py",
                                  "quality.py", "autonomy.py", "cost_curves.py"])
def test_tables_charts_and_csvs_name_kpis_in_words(page: str, synth_url_30d: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Fairness' rate column read "intervention_rate", table headers "harmful_override_rate", Calibration's
    axes "brier", and every CSV the ids: what a reader sees names a KPI in words (`kpi_name`); a CSV whose
    rows are KPIs keeps their ids in a column of its own."""
    import io
    import json

    import streamlit

    files: dict[str, pd.DataFrame] = {}
    real = streamlit.download_button

    def recorded(label: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        files[kwargs["file_name"]] = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recorded)
    at = _page(synth_url_30d, page, monkeypatch, "last 30d")
    raw = _raw_ids()
    shown: list[str] = []
    for table in at.dataframe:
        headers = _shown_headers(table)
        shown += headers
        seen = _seen(table)
        shown += [cell for column in seen.columns if column in table.value.columns and
                  str(column) not in ID_COLUMNS for cell in seen[column]]
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        layout = fig["layout"]
        shown += [str(layout.get("title", {}).get("text", ""))]
        shown += [str(t.get(k, "")) for t in fig["data"] for k in ("name", "hovertemplate")]
        shown += [str(layout[a].get("title", {}).get("text", "")) for a in layout if a.startswith(("xaxis", "yaxis"))]
    assert files, "the page offers no CSV"
    for name, csv in files.items():
        shown += [f"{name}: {column}" for column in csv.columns]
        shown += [f"{name}: {cell}" for column in csv.columns if column not in ID_COLUMNS for cell in csv[column]]
    assert not [text for text in shown if raw.search(text)], sorted({t for t in shown if raw.search(t)})
    if page in ("fairness.py", "changes.py"):  # the rows are KPIs: their ids stay in the CSV, next to the words
        csv = next(f for n, f in files.items() if n.startswith(("fairness_", "change_")))
        ids = csv["rate_id" if page == "fairness.py" else "kpi_id"]
        assert ids.str.fullmatch(raw).any() and (csv["rate" if page == "fairness.py" else "kpi"] != ids).all()
    if page == "operations.py":  # a duration's raw seconds say so in the header
        assert "latency p90 (seconds)" in files["latency_by_risk_class.csv"].columns


def test_csv_headers_name_kpis_in_words_with_the_unit_of_raw_seconds() -> None:
    from app.common import csv_header, header, kpi_labels

    assert csv_header("latency_p90_seconds") == "latency p90 (seconds)" and header("latency_p90_seconds") == "latency p90"
    assert csv_header("harmful_override_rate") == "harmful override rate" and csv_header("reviewer_id") == "reviewer_id"
    assert csv_header("decisions") == "decisions"
    config = kpi_labels(["ece", "queue", "cost_avoided", "auto_rate"],
                        {"cost_avoided": {"label": None, "type_config": {"format": "%.2f"}}, "auto_rate": "auto"})
    assert config == {"ece": {"label": "ECE"}, "auto_rate": "auto",
                      "cost_avoided": {"label": "cost avoided", "type_config": {"format": "%.2f"}}}


def test_kpi_names() -> None:
    from app.common import kpi_name

    assert kpi_name("latency_p90_seconds") == "latency p90" and kpi_name("ece") == "ECE"
    assert kpi_name("ece_drift") == "ECE drift"  # was "ece drift", beside the tiles' and alerts' "ECE"
    assert kpi_name("sla_breach_rate") == "SLA breach rate" and kpi_name("missed_error_rate") == "missed error rate"


# ---- Alerts: values in their unit ------------------------------------------------------------------------


def test_alert_values_read_in_the_unit_of_what_they_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Alerts tables printed 14400.0 and 20000.0 (seconds), 0.1 and 0.124 (a share), 1.0 (a detector's
    signal) and "None" for a firing alert's end."""
    import time

    from collectors.alerts.history import insert_episode
    from collectors.store.db import open_store

    url = build_synth_store(tmp_path, days=2, decisions_per_day=100)
    engine = open_store(url, create=False)
    now = time.time_ns() // 1000
    episodes = [("HitlBacklogAge", {"queue": "kyc"}, 14400.0, 20000.0, "firing"),
                ("HitlSlaBreachRate", {"queue": "kyc"}, 0.1, 0.124, "firing"),
                ("HitlInterventionRateSpike", {"model_version": "m1"}, 0.15, 0.162, "resolved"),
                ("HitlCalibrationChange", {"model_version": "m1"}, 0.0, 1.0, "resolved")]
    with engine.begin() as conn:
        for i, (name, labels, threshold, value, state) in enumerate(episodes):
            insert_episode(conn, {
                "fingerprint": f"f{i}", "alertname": name, "severity": "warning", "labels": labels,
                "annotations": {"summary": name}, "state": state, "threshold": threshold,
                "active_at": now - 10**9, "starts_at": now - 10**9, "ends_at": None if state == "firing" else now,
                "fired_value": value, "resolved_value": None, "last_value": value, "worst_value": value,
                "evaluated_at": now, "notified_state": None})
    engine.dispose()
    at = run_view(url, "alerts.py", monkeypatch, "last 7d")
    history = _seen(at.dataframe[1]).map(lambda cell: cell.replace("\u00a0", " "))
    assert list(history.columns) == ["what", "values", "when"]  # three columns fit 1024 px (the browser test)
    _no_raw_cells(history)
    rows = {what.split(" ")[0]: row for what, row in zip(history["what"], history.itertuples())}
    assert rows["HitlBacklogAge"].values == "threshold 4.0 h fired 5.6 h worst 5.6 h last 5.6 h"
    assert rows["HitlSlaBreachRate"].values == "threshold 10.0% fired 12.4% worst 12.4% last 12.4%"
    assert rows["HitlInterventionRateSpike"].values == "threshold +15.0 pp fired +16.2 pp worst +16.2 pp last +16.2 pp"
    assert rows["HitlCalibrationChange"].values == "signalled"  # once: threshold, fired and worst say the same
    # what: name (severity): summary, and the labels the summary does not name (the summaries here name none)
    assert rows["HitlBacklogAge"].what == "HitlBacklogAge (warning): HitlBacklogAge [queue=kyc]"
    assert re.fullmatch(r"firing since \d{4}-\d\d-\d\d \d\d:\d\d", rows["HitlBacklogAge"].when)
    assert re.fullmatch(r"resolved \d{4}-\d\d-\d\d \d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d",
                        rows["HitlCalibrationChange"].when)
    firing = _seen(at.dataframe[0])
    _no_raw_cells(firing)
    assert sorted(what.split(" ")[0] for what in firing["what"]) == ["HitlBacklogAge", "HitlSlaBreachRate"]


def test_an_alerts_what_names_each_label_once() -> None:
    """The labels repeated the alert's name and severity and the slice its summary names; a label the summary
    leaves out (the window) still shows."""
    from app.alert_table import alert_table

    alerts = pd.DataFrame([{"alertname": "HitlSlaBreachRate", "severity": "warning", "state": "resolved",
                            "labels": "queue=kyc, window=24h", "summary": "SLA breaches in queue kyc: 9%",
                            "threshold": 0.1, "fired_value": 0.11, "last_value": 0.079, "worst_value": 0.113,
                            "starts_at": "2026-11-26T16:03:00Z", "ends_at": "2026-11-27T22:03:00Z", "kind": "rate"}])
    row = alert_table(alerts).iloc[0]
    assert row["what"] == "HitlSlaBreachRate (warning): SLA breaches in queue kyc: 9% [window=24h]"
    alerts.loc[0, "summary"] = "Calibration drift on kyc-v2.4 / kyc_approve."  # "kyc" only inside other names
    assert alert_table(alerts).iloc[0]["what"].endswith("kyc_approve. [queue=kyc, window=24h]")
    assert row["when"].replace("\u00a0", " ") == "resolved 2026-11-26 16:03 → 2026-11-27 22:03"
    assert row["values"].split(" ") == [v.replace(" ", "\u00a0") for v in
                                        ("threshold 10.0%", "fired 11.0%", "worst 11.3%", "last 7.9%")]


def test_a_detectors_alert_says_signalled_once_and_its_last_value_when_that_differs() -> None:
    from app.alert_table import alert_table

    row = {"alertname": "HitlCalibrationChange", "severity": "warning", "state": "resolved",
           "labels": "model_version=m1", "summary": "ADWIN saw a change on m1", "threshold": 0.0,
           "fired_value": 1.0, "last_value": 0.0, "worst_value": 1.0,
           "starts_at": "2026-11-26T16:03:00Z", "ends_at": "2026-11-27T22:03:00Z", "kind": "signal"}
    assert alert_table(pd.DataFrame([row])).iloc[0]["values"] == "signalled last\u00a0no\u00a0signal"
    row.update(last_value=None)
    assert alert_table(pd.DataFrame([row])).iloc[0]["values"] == "signalled"


def test_alert_rows_are_tall_enough_for_their_longest_what() -> None:
    """One row height for all (the grid has no other): four lines of values at least, more for a long "what"
    (a drift alert on long slice names was cut off after its fifth line)."""
    from app.alert_table import LINE_PX, row_px

    short = pd.DataFrame({"what": ["HitlBacklogAge (critical): Backlog in queue kyc"]})
    assert row_px(short) >= 4 * LINE_PX and row_px(short) > 64  # Streamlit wraps only in rows over 4 rem
    long = pd.DataFrame({"what": ["x" * 40, "HitlCalibrationDrift (warning): " + "word " * 40]})
    assert row_px(long) >= 7 * LINE_PX > row_px(short)


def test_the_alert_tables_read_every_value_kind_of_the_rules() -> None:
    """The kinds come from the rules (`Rule.kind`); each one has its text here, and every built-in alert its kind."""
    from app.alert_table import _value_text
    from collectors.alerts.rules import VALUE_KINDS, build_rules
    from collectors.config import load_config
    from collectors.dashboard_data import alert_value_kinds

    kinds = alert_value_kinds(load_config())
    assert set(kinds) == {rule.alertname for rule in build_rules(load_config())}
    assert set(kinds.values()) == set(VALUE_KINDS)  # no kind without an alert to show it
    shown = {kind: _value_text(kind, "fired_value", 1.0) for kind in VALUE_KINDS}
    assert shown == {"score": "1.000", "rate": "100.0%", "duration": "1 s", "points": "+100.0 pp",
                     "signal": "signalled"}


def test_operations_tables_show_durations_and_rates_not_raw_seconds(synth_url_30d: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The latency table printed 7380.5 (seconds) and 0.0421 (a share), the reviewer table 312.0 seconds."""
    at = _page(synth_url_30d, "operations.py", monkeypatch, "last 7d")
    tables = {tuple(t.value.columns): _seen(t) for t in at.dataframe}
    latency = next(seen for cols, seen in tables.items() if "latency_p90_seconds" in cols)
    reviewers = next(seen for cols, seen in tables.items() if "median_handle_seconds" in cols)
    for seen in (latency, reviewers):
        _no_raw_cells(seen)
    duration = re.compile(r"^(—|\d+ s|\d+\.\d (min|h|d))$")
    for column in ("latency_p50_seconds", "latency_p90_seconds", "latency_p99_seconds", "sla_seconds",
                   "pending_oldest_age_seconds"):
        assert all(duration.match(cell) for cell in latency[column]), (column, latency[column].tolist())
    assert all(re.match(r"^(—|\d+\.\d%)$", cell) for cell in latency["sla_breach_rate"])
    assert all(duration.match(cell) for cell in reviewers["median_handle_seconds"])


def test_operations_charts_name_their_axes_in_words(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The p90 chart's axis read "latency_p90_hours" and its title, like the pending one's, was cut off in a
    half-width column at 1024 px."""
    import json

    at = _page(synth_url_30d, "operations.py", monkeypatch, "last 7d")
    titles = []
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec)["layout"]
        axes = [layout.get(a, {}).get("title", {}).get("text", "") for a in ("xaxis", "yaxis")]
        assert not any("_" in text for text in axes), axes
        titles.append(layout["title"]["text"])
    half_width = {"Oldest pending by queue", "p90 time to review", "Still pending, by when proposed"}
    assert half_width <= set(titles), titles  # each fits half of a 1024 px page



def test_operations_shows_the_pending_count_per_risk_class(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """To fit 1024 px the latency table's pending count went to its CSV only, so the page no longer said how many
    of a class wait: a line under the table names each class's count, in the table's order."""
    at = _page(synth_url_30d, "operations.py", monkeypatch, "last 7d")
    latency = next(t.value for t in at.dataframe if "latency_p90_seconds" in t.value.columns)
    line = next((c.value for c in at.caption if c.value.startswith("Pending now")), None)
    assert line is not None, [c.value for c in at.caption]
    counts = ", ".join(f"{risk} {n:,.0f}" for risk, n in zip(latency["risk_class"], latency["pending"], strict=True))
    assert f": {counts}." in line, (line, counts)
    assert latency["pending"].sum() > 0  # a count worth reading, not only zeros


def test_quality_shows_the_guardrail_warn_rate_and_counts(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """To fit 1024 px the Guardrails table's warn rate and the counts behind its shares went to its CSV only: they
    are in a second compact table under it, headed in words, the warn rate in %, the counts as counts."""
    at = _page(synth_url_30d, "quality.py", monkeypatch, "last 30d")
    counts = ("warn_rate", "failed_went_through_n", "failed_auto", "failed_approved", "defect_failed_through_n")
    shown = [t for t in at.dataframe if set(counts) & set(_shown_columns(t))]
    assert len(shown) == 1, [_shown_headers(t) for t in at.dataframe if "rule" in t.value.columns]
    table = shown[0]
    assert _shown_columns(table) == ["rule", *counts]
    assert _shown_headers(table) == ["rule", "warned", "went on (n)", "auto", "approved", "outcomes"]
    seen = _seen(table)
    assert seen["warn_rate"].str.fullmatch(r"\d+\.\d%").all(), seen["warn_rate"].tolist()
    for column in counts[1:]:
        assert seen[column].str.fullmatch(COUNT).all(), (column, seen[column].tolist())
    through = table.value["failed_went_through_n"]
    assert through.sum() > 0 and (through == table.value["failed_auto"] + table.value["failed_approved"]).all()


def _shown_columns(table: Any) -> list[str]:
    """A st.dataframe's columns the browser shows (hidden ones left out)."""
    import json

    config = json.loads(table.proto.columns or "{}")
    return [str(c) for c in table.value.columns if not config.get(c, {}).get("hidden")]

# ---- every page's tables read at a glance ----------------------------------------------------------

PCT = r"^(—|-?\d{1,3}\.\d%)$"
PP = r"^(—|[+-]\d+\.\d pp)$"
COUNT = r"^(—|\d{1,3}(,\d{3})*)$"
MONEY = r"^(—|-?\d{1,3}(,\d{3})*\.\d\d|-?\d+(\.\d)?k|-?\d+\.\d\dM)$"
READS = {  # page: {column: how each of its cells reads}
    "fairness.py": {"value": PCT, "low": PCT, "high": PCT, "overall": PCT, "gap": PP, "decisions": COUNT,
                    "count": COUNT, "n": COUNT},
    "agreement.py": {"agreement": PCT, "peer_agreement": PCT, "override_rate": PCT, "reviews": COUNT,
                     "agreement_items": COUNT},
    "operations.py": {"share": PCT, "count": COUNT, "n_primary_reviews": COUNT, "reviews": COUNT},
    "quality.py": {"fail_rate": PCT, "accuracy": PCT, "checks": COUNT, "decisions": COUNT, "accuracy_n": COUNT,
                   "n": COUNT},
    "triage.py": {"score_per_hour": MONEY, "hourly_rate": MONEY, "value_per_item": MONEY, "decisions": COUNT},
    "cost_curves.py": {"auto_rate": PCT, "error_rate": PCT, "cost_per_1000": MONEY},
    "overrides_cost.py": {"override_error_delta": PCT, "harmful_override_rate": PCT, "cost_avoided": MONEY,
                          "n_decisions": COUNT},
    "autonomy.py": {"agreement": PCT, "accuracy_low": PCT, "decisions": COUNT, "samples": COUNT, "ece_n": COUNT},
}


@pytest.mark.parametrize("page", list(READS))
def test_tables_read_in_words_percent_and_thousands(page: str, synth_url_30d: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Fairness printed 0.15060240963855423 for a rate, Agreement 0.428571, Cost curves 0.9967869500741474, and
    headers read "peer_agreement", "enough_samples", "agreement_items": every header is words, rates read in %
    with one decimal, counts with thousands separators (the CSV keeps the raw values)."""
    at = _page(synth_url_30d, page, monkeypatch, "last 30d")
    assert at.dataframe
    checked = set()
    for table in at.dataframe:
        headers = _shown_headers(table)
        assert not [h for h in headers if "_" in h], headers
        seen = _seen(table)
        _no_raw_cells(seen)
        for column, pattern in READS[page].items():
            if column in seen.columns:
                checked.add(column)
                bad = [cell for cell in seen[column] if not re.match(pattern, cell)]
                assert not bad, (column, bad[:5])
    assert checked == set(READS[page]), set(READS[page]) - checked


def test_risk_classes_are_listed_in_sla_order(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidebar, Operations' latency table and chart, and the Cost curves picker listed risk classes
    alphabetically ("critical, high, low, medium"): they now follow the config's SLA, the tightest first."""
    from collectors.config import load_config

    sla = load_config().sla
    def in_sla_order(classes: list[str]) -> bool:
        return len(classes) > 1 and classes == sorted(classes, key=sla.for_risk_class)

    at = _page(synth_url_30d, "operations.py", monkeypatch, "last 30d")
    options = [o for o in at.selectbox(key="filter_risk_class").options if o != "(all)"]
    assert in_sla_order(options) and options[0] == "critical", options
    latency = next(t.value for t in at.dataframe if "latency_p90_seconds" in t.value.columns)
    assert in_sla_order(latency["risk_class"].tolist()), latency["risk_class"].tolist()
    import json
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "SLA" in c.proto.spec)
    assert in_sla_order(chart["layout"]["xaxis"]["categoryarray"]), chart["layout"]["xaxis"]
    at = _page(synth_url_30d, "cost_curves.py", monkeypatch, "last 30d")
    picked = [o.split(" / ")[0] for o in at.selectbox(key="cost_scope").options]
    assert in_sla_order(list(dict.fromkeys(picked))) and picked == sorted(picked, key=sla.for_risk_class), picked


def test_cost_curve_error_rates_read_with_one_decimal(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The what-if tile read "14.80%" and its delta "+0.42 pp", the advice "error rate of 4.18% (cap 5.00%)":
    one decimal, as every other rate (two only where one would read as the cap it differs from)."""
    at = _page(synth_url_30d, "cost_curves.py", monkeypatch, "last 30d")
    tile = next(m for m in at.metric if m.label == "Error rate")
    assert re.fullmatch(r"\d+\.\d%", tile.value), tile.value
    assert tile.proto.delta in ("", "±0") or re.fullmatch(r"[+-]\d+\.\d pp", tile.proto.delta), tile.proto.delta
    texts = [e.value for e in (*at.success, *at.info, *at.error, *at.warning)]
    assert not [t for t in texts if re.search(r"\d\.\d\d%", t) and "against a cap" not in t], texts
