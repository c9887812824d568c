"""Change events: ingest and producer API, pre/post comparison (`collectors.advice.changes`), the
`hitl-tower changes` command, and the change markers and Changes page of the dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, review, ts
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportions_ztest
from typer.testing import CliRunner

from collectors.advice.changes import (
    change_label,
    change_markers,
    change_records,
    change_series,
    compare_changes,
    equal_length,
    scope_slices,
)
from collectors.advice.frame import change_frame
from collectors.cli import app
from collectors.events import EventConflict, EventRecorder
from collectors.ingest import ingest
from collectors.store.db import open_store

AT = T0 + 7 * DAY  # the threshold change of the hand-built store
ALL = (T0 - 100 * DAY, T0 + 100 * DAY)
ALL_TIME = (0, 2**62)


def change(id: str, at: int, **fields: Any) -> dict[str, Any]:
    """A change event; defaults: a threshold change of risk class low 0.85 -> 0.75."""
    event = {"type": "change", "id": id, "changed_at": ts(at), "actor": "maria.ops", "kind": "threshold",
             "scope": {"risk_class": "low"}, "before": 0.85, "after": 0.75, "reason": "more automation"}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def _side(prefix: str, start: int, autos: int, reviewed: int, rejects: int) -> list[dict[str, Any]]:
    """40-ish low-risk decisions spread over 7 days from `start`: `autos` auto, `reviewed` reviewed of which
    `rejects` rejected (the rest approved)."""
    events: list[dict[str, Any]] = []
    step = 7 * DAY // (autos + reviewed)
    for i in range(autos + reviewed):
        at = start + i * step
        did = f"{prefix}{i:02d}"
        if i < autos:
            events.append(decision(did, at, route="auto", confidence=0.9))
        else:
            events.append(decision(did, at, route="review", confidence=0.8))
            verdict = "reject" if i - autos < rejects else "approve"
            events.append(review(f"r{did}", did, at + HOUR, verdict, enqueued=at))
    return events


def _hand_events() -> list[dict[str, Any]]:
    # Before the change: 10 of 40 low decisions auto, 5 rejected; after: 30 of 40 auto, 2 rejected.
    # High-risk decisions (outside the scope) are all reviewed; one at T0 + 14d sets the newest decision,
    # so both windows are exactly 7 days.
    highs = [decision(f"h{i}", T0 + i * DAY, risk_class="high") for i in range(15)]
    return [*_side("a", T0, 10, 30, 5), *_side("b", AT, 30, 10, 2), *highs, change("c1", AT)]


@pytest.fixture
def hand_url(db_url: str) -> str:
    load(db_url, _hand_events()).dispose()
    return db_url


def _kpi(entry: dict[str, Any], kpi_id: str) -> dict[str, Any]:
    return next(k for k in entry["kpis"] if k["kpi"] == kpi_id)


# ---- ingest and the producer API ---------------------------------------------------------------


def test_ingest_stores_a_change_and_sees_duplicates_and_conflicts(db_url: str, tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps(change("c1", AT, scope={"risk_class": "low", "queue": "q"},
                                       before={"a": 1}, after=[1, "x"], ticket="T-9")) + "\n")
    engine = open_store(db_url)
    summary = ingest(engine, [str(first)])
    assert (summary.stored, summary.duplicates, summary.rejected) == (1, 0, 0)
    again = ingest(engine, [str(first)])
    assert (again.stored, again.duplicates, again.rejected) == (0, 1, 0)
    other = tmp_path / "b.jsonl"
    other.write_text(json.dumps(change("c1", AT, after=0.5)) + "\n" + json.dumps({"type": "change", "id": "c2"}) + "\n")
    reasons: list[str] = []
    conflict = ingest(engine, [str(other)], on_reject=lambda r: reasons.append(r.location()))
    assert (conflict.stored, conflict.rejected) == (0, 2)
    reasons.sort()
    assert reasons[0] == f"{other}:1: conflict: change c1 was already stored with other content (original kept)"
    assert reasons[1] == f"{other}:2: missing required field changed_at"
    frame = change_frame(engine)
    engine.dispose()
    assert frame.to_dict("records") == [{"id": "c1", "changed_at": AT, "actor": "maria.ops", "kind": "threshold",
                                         "scope": {"risk_class": "low", "queue": "q"}, "before": {"a": 1},
                                         "after": [1, "x"], "reason": "more automation"}]


def test_event_recorder_change_round_trip(db_url: str) -> None:
    fields = {k: v for k, v in change("c1", AT).items() if k != "type"}
    with EventRecorder(db_url) as recorder:
        assert recorder.change(**fields) == "stored"
        assert recorder.change(**fields) == "duplicate"
        assert recorder.change(**{**fields, "changed_at": "2026-11-08T01:00:00+01:00"}) == "duplicate"  # same instant
        with pytest.raises(EventConflict, match="conflict: change c1"):
            recorder.change(**{**fields, "after": 0.7})
        assert recorder.change(id="c2", changed_at=ts(AT + HOUR), actor="ops", kind="policy") == "stored"
    engine = open_store(db_url)
    records = change_records(engine)
    engine.dispose()
    assert [r["id"] for r in records] == ["c1", "c2"]
    assert [records[0][k] for k in ("changed_at", "before", "after", "scope")] == [AT, 0.85, 0.75, {"risk_class": "low"}]
    # absent before/after/reason are None, also where the column is otherwise numeric (pandas would say NaN)
    assert [records[1][k] for k in ("scope", "before", "after", "reason")] == [{}, None, None, None]


# ---- the comparison ----------------------------------------------------------------------------


def test_hand_computed_pre_post(hand_url: str, config) -> None:  # type: ignore[no-untyped-def]
    engine = open_store(hand_url, create=False)
    result = compare_changes(engine, config, *ALL)
    engine.dispose()
    assert result["window_seconds"] == 7 * 86400
    entry, = result["changes"]
    assert entry["pre"] == {"start": ts(T0), "end": ts(AT)} and entry["post"] == {"start": ts(AT), "end": ts(AT + 7 * DAY)}
    assert entry["equal_window_seconds"] == 7 * 86400 and not entry["too_early"]
    assert entry["compared_slice"] == {"risk_class": "low"} and entry["label"] == "threshold low 0.85→0.75"
    auto = _kpi(entry, "auto_rate")
    assert (auto["pre"], auto["post"], auto["pre_count"], auto["post_count"], auto["pre_n"], auto["post_n"]) == \
        (0.25, 0.75, 10, 30, 40, 40)
    assert auto["delta"] == pytest.approx(0.5) and auto["direction"] == "up" and auto["significant"] is True
    expected = float(proportions_ztest([10, 30], [40, 40])[1])
    assert auto["p_value"] == pytest.approx(expected, rel=1e-12)
    intervention = _kpi(entry, "intervention_rate")
    assert (intervention["pre"], intervention["post"]) == (5 / 40, 2 / 40)
    assert intervention["p_value"] == pytest.approx(float(proportions_ztest([5, 2], [40, 40])[1]), rel=1e-12)
    assert intervention["significant"] is False and intervention["direction"] == "down"
    per_day = _kpi(entry, "decisions_per_day")
    assert (per_day["pre"], per_day["post"], per_day["p_value"], per_day["significant"]) == (40 / 7, 40 / 7, None, None)
    assert _kpi(entry, "ece")["pre"] is None  # no outcomes: null, not 0
    assert entry["headline"] == "auto rate in risk class low rose from 25.0% to 75.0% (p < 0.001)"  # words, not ids
    json.dumps(result, allow_nan=False)


def test_equal_windows_are_clipped_to_the_data(sqlite_url: str, config) -> None:  # type: ignore[no-untyped-def]
    events = [*_hand_events(), change("c2", T0 + 10 * DAY, scope={}), change("c3", T0 + 14 * DAY - 12 * HOUR,
                                                                             kind="other", scope={})]
    engine = load(sqlite_url, events)
    entries = {c["id"]: c for c in compare_changes(engine, config, *ALL)["changes"]}
    two_days = compare_changes(engine, config, *ALL, window_seconds=2 * 86400)["changes"]
    engine.dispose()
    late = entries["c2"]  # data ends 4 days (and 1 us) after it
    assert late["equal_window_seconds"] == 4 * 86400
    assert late["pre"] == {"start": ts(T0 + 6 * DAY), "end": ts(T0 + 10 * DAY)}
    assert late["post"] == {"start": ts(T0 + 10 * DAY), "end": ts(T0 + 14 * DAY)}
    assert any("shortened to 4 d" in c and "ends" in c for c in late["caveats"])
    # empty scope: the total; resolved = the low decisions of each side (the high ones stay pending)
    assert (_kpi(late, "auto_rate")["pre_n"], _kpi(late, "auto_rate")["post_n"]) == (23, 22)
    assert (_kpi(late, "decisions_per_day")["pre_n"], _kpi(late, "decisions_per_day")["post_n"]) == (27, 26)
    newest = entries["c3"]
    assert newest["equal_window_seconds"] == 12 * 3600 and newest["too_early"]
    assert any("too early to judge" in c for c in newest["caveats"])
    assert any("c1" in c for c in late["caveats"])  # the threshold change falls in c2's pre window
    assert all(c["equal_window_seconds"] <= 2 * 86400 for c in two_days)


@given(at=st.integers(-10**12, 10**12), window=st.integers(1, 10**12), oldest=st.integers(-10**12, 10**12),
       width=st.integers(0, 10**12))
def test_equal_length_keeps_both_sides_inside_the_data(at: int, window: int, oldest: int, width: int) -> None:
    newest = oldest + width
    length = equal_length(at, window, (oldest, newest))
    assert 0 <= length <= window
    if length:
        assert at - length >= oldest and at + length <= newest + 1
    assert equal_length(at, window, None) == 0


def test_scope_keys_that_are_not_slice_fields_give_a_caveat(sqlite_url: str, config) -> None:  # type: ignore[no-untyped-def]
    events = [*_hand_events(), change("c2", AT, scope={"risk_class": "low", "policy_version": "p2"}),
              change("c3", AT, scope={"agent": "agent-1", "segment.region": "EU"})]
    engine = load(sqlite_url, events)
    entries = {c["id"]: c for c in compare_changes(engine, config, *ALL)["changes"]}
    engine.dispose()
    wide = entries["c2"]
    assert wide["compared_slice"] == {"risk_class": "low"}
    assert any("'policy_version' is not a slice field" in c for c in wide["caveats"])
    assert wide["kpis"] == entries["c1"]["kpis"]
    aliased = entries["c3"]
    assert aliased["compared_slice"] == {"agent_id": "agent-1", "segment.region": "EU"}
    assert any("no decisions in agent agent-1, region EU" in c for c in aliased["caveats"])
    assert _kpi(aliased, "auto_rate")["pre"] is None
    assert scope_slices({"model": "m1", "queue": 3, "segment.": "x"}) == ({"model_version": "m1"}, ["queue", "segment."])


def test_filters_narrow_and_drop_changes(hand_url: str, config) -> None:  # type: ignore[no-untyped-def]
    engine = open_store(hand_url, create=False)
    assert compare_changes(engine, config, *ALL, {"risk_class": "high"})["changes"] == []
    assert change_markers(engine, config, *ALL, {"risk_class": "high"}) == []
    narrowed, = compare_changes(engine, config, *ALL, {"agent_id": "agent-1"})["changes"]
    assert narrowed["compared_slice"] == {"risk_class": "low", "agent_id": "agent-1"}
    assert compare_changes(engine, config, *ALL, kinds=["model"])["changes"] == []
    marker, = change_markers(engine, config, *ALL)
    series = change_series(engine, config, "c1", "auto_rate")
    engine.dispose()
    assert marker == {"id": "c1", "changed_at_us": AT, "changed_at": ts(AT), "kind": "threshold",
                      "label": "threshold low 0.85→0.75", "actor": "maria.ops", "reason": "more automation"}
    assert len(series) == 14 and [p["side"] for p in series] == ["pre"] * 7 + ["post"] * 7
    assert sum(p["n"] for p in series if p["side"] == "post") == 40


def test_change_labels() -> None:
    assert change_label({"kind": "model", "scope": {"agent_id": "refund-agent"}, "before": {"v1": 1.0},
                         "after": {"v1": 0.9, "v2": 0.1}}) == "model refund-agent: v2 0→0.1"
    assert change_label({"kind": "other", "scope": {}, "before": None, "after": None}) == "other"
    assert change_label({"kind": "policy", "scope": {}, "before": "p12", "after": "p13"}) == "policy p12→p13"


# ---- the command -------------------------------------------------------------------------------


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["changes", *args], catch_exceptions=False)


def test_cli_table_and_json(hand_url: str) -> None:
    table = invoke("--db", hand_url)
    assert table.exit_code == 0, table.output
    assert f"{ts(AT)}  c1  threshold by maria.ops: 0.85 -> 0.75  (scope: risk_class=low)" in table.stdout
    assert "auto rate in risk class low rose from 25.0% to 75.0% (p < 0.001)" in table.stdout
    line = next(l for l in table.stdout.splitlines() if l.strip().startswith("auto_rate *"))
    assert line.split()[:5] == ["auto_rate", "*", "25.0%", "75.0%", "+50.0"]
    data = json.loads(invoke("--db", hand_url, "--format", "json", "--window", "3d").stdout)
    entry, = data["changes"]
    assert data["window_seconds"] == 3 * 86400 and entry["equal_window_seconds"] == 3 * 86400
    assert entry["changed_at"] == ts(AT) and _kpi(entry, "auto_rate")["pre_n"] > 0
    assert invoke("--db", hand_url, "--kind", "policy").stdout.strip() == "no change events in this window"
    assert json.loads(invoke("--db", hand_url, "--format", "json", "--start", ts(AT + HOUR),
                             "--end", ts(AT + DAY)).stdout)["changes"] == []


def test_cli_usage_errors_exit_2(hand_url: str, tmp_path: Path) -> None:
    missing = invoke("--db", f"sqlite:///{tmp_path / 'none' / 'x.db'}")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert invoke("--db", hand_url, "--window", "7x").exit_code == 2
    assert invoke("--db", hand_url, "--start", "2026-11-01").exit_code == 2  # no zone
    assert invoke("--db", hand_url, "--start", ts(AT), "--end", ts(AT)).exit_code == 2


# ---- the dashboard, on the synthetic store -----------------------------------------------------


def test_the_demo_threshold_change_raises_auto_rate(synth_url_30d: str, config) -> None:  # type: ignore[no-untyped-def]
    engine = open_store(synth_url_30d, create=False)
    entries = compare_changes(engine, config, *ALL_TIME)["changes"]
    engine.dispose()
    assert len(entries) == 10
    for entry in entries:  # every demo change is comparable in its own scope
        assert entry["compared_slice"] == entry["scope"] != {}
        assert not any("not a slice field" in c for c in entry["caveats"])
    threshold, = (c for c in entries if c["kind"] == "threshold")
    auto = _kpi(threshold, "auto_rate")
    assert threshold["compared_slice"] == {"risk_class": "low"}
    assert auto["significant"] and auto["delta"] > 0.1
    assert threshold["headline"].startswith("auto rate in risk class low rose from")


def _page(url: str, page: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", url)
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app" / "views" / page), default_timeout=60)
    at.session_state["window"] = "last 30d"
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    return at


@pytest.mark.usefixtures("fresh_caches")
def test_changes_page_shows_the_threshold_effect(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(synth_url_30d, "changes.py", monkeypatch)
    assert at.selectbox(key="change").value.endswith("-c03")
    assert any(s.value.startswith("auto rate in risk class low rose from") for s in at.success)
    assert "threshold low 0.85→0.75" in at.dataframe[-1].value["change"].tolist()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 2  # the before/after rates and the series around the change
    assert any(s.get("name", "").endswith("-c03") for s in specs[1]["layout"]["shapes"])


@pytest.mark.usefixtures("fresh_caches")
def test_time_series_pages_mark_the_changes(synth_url_30d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(synth_url_30d, "overview.py", monkeypatch)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 2
    for spec in specs:  # the change's kind on the chart, its whole label on hover
        hovers = [a.get("hovertext", "") for a in spec["layout"].get("annotations", []) if a["text"] == "threshold"]
        assert any(h.startswith("threshold low 0.85→0.75") for h in hovers)
        assert any(s.get("name", "").endswith("-c03") for s in spec["layout"]["shapes"])
    agreement = _page(synth_url_30d, "agreement.py", monkeypatch)
    assert any(a.get("hovertext", "").startswith("threshold low 0.85→0.75")
               for c in agreement.get("plotly_chart") for a in json.loads(c.proto.spec)["layout"].get("annotations", []))


def test_the_featured_change_is_the_one_that_moved_most_significantly() -> None:
    from collectors.advice.changes import featured

    def entry(p: float | None, significant: bool | None) -> dict[str, Any]:
        return {"headline_kpi": "auto_rate", "kpis": [{"kpi": "auto_rate", "p_value": p, "significant": significant},
                                                       {"kpi": "intervention_rate", "p_value": 1e-9, "significant": True}]}

    assert featured([]) is None
    assert featured([entry(0.5, False), entry(None, None)]) == 1  # nothing moved: the latest
    assert featured([entry(0.01, True), entry(1e-6, True), entry(0.3, False)]) == 1
    assert featured([entry(1e-6, True), entry(1e-6, True), entry(0.3, False)]) == 1  # the later of equals


@pytest.mark.usefixtures("fresh_caches")
def test_the_changes_page_opens_on_the_change_that_moved_not_the_latest_threshold(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later threshold change of high risk (all reviewed on both sides: nothing moved) made the page open on
    "no significant change" while c1 had moved the low-risk auto rate from 25% to 75%."""
    quiet = change("c2", AT + DAY, scope={"risk_class": "high"}, before=0.95, after=0.9)
    load(db_url, [*_hand_events(), quiet]).dispose()
    at = _page(db_url, "changes.py", monkeypatch)
    assert at.selectbox(key="change").value == "c1"
    assert [s.value for s in at.success] == ["auto rate in risk class low rose from 25.0% to 75.0% (p < 0.001)"]


@pytest.mark.usefixtures("fresh_caches")
def test_the_changes_caveats_read_times_kpis_and_lengths_as_the_page_does(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """On the 3-day demo store the caveats listed the changes that may mix in at '2026-11-02T14:24:02Z' under a
    page of '2026-11-03 09:36 UTC', named 'accuracy, ece, brier' among KPIs named in words everywhere else, and
    said 'windows shortened to 33 h' above a caption of '1.4 days each'. Times, KPIs and the length now read as the
    page writes them."""
    import re

    from tests.app_helpers import build_synth_store

    at = _page(build_synth_store(tmp_path, days=3, decisions_per_day=300), "changes.py", monkeypatch)
    caveats = "\n".join(w.value for w in at.warning)
    assert "may mix in" in caveats and "still arriving" in caveats and "shortened to" in caveats, caveats
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", caveats), caveats
    assert re.search(r"\(\w+ [^;]*, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", caveats), caveats
    assert not re.search(r"\b(ece|brier)\b", caveats) and "ECE, Brier score" in caveats, caveats
    length = re.search(r"windows shortened to (\d+(\.\d)?) (h|d) each", caveats)
    assert length, caveats
    each = next(c.value for c in at.caption if c.value.startswith("Before: "))
    assert re.search(rf"; {float(length[1]):.1f} {length[3]} each\.$", each), (length[0], each)


@pytest.mark.usefixtures("fresh_caches")
def test_the_list_of_changes_shows_when_what_and_its_effect_first(synth_url_30d: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The list of the window's changes led with id, time, actor, kind, change and reason: the effect, what an ops
    lead scans it for, came eighth and was scrolled out of sight even at 1440 px. Time, change and effect now
    come first; the id last."""
    at = _page(synth_url_30d, "changes.py", monkeypatch)
    listing = at.dataframe[-1].value
    assert list(listing.columns)[:3] == ["changed_at", "change", "effect"], list(listing.columns)
    assert list(listing.columns)[-1] == "id"
    assert "threshold low 0.85→0.75" in listing["change"].tolist()
