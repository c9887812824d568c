"""`hitl-tower report` through the command line: the section-5 JSON object, the table, exit codes."""

from __future__ import annotations

import json

import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review, ts
from typer.testing import CliRunner

from collectors.cli import app
from collectors.kpis.spec import KPI_IDS

START, END, NOW = ts(T0), ts(T0 + DAY), ts(T0 + 2 * DAY)
EVENTS = [
    decision("d1", T0 + HOUR, risk_class="high", segment={"region": "eu"}),
    decision("d2", T0 + 2 * HOUR, risk_class="low", route="auto", confidence=1.0),
    decision("d3", T0 + 3 * HOUR, risk_class="low"),
    review("r1", "d1", T0 + 2 * HOUR, "edit", enqueued=T0 + HOUR),
    outcome("d1", T0 + 4 * HOUR, agent_correct=False, final_correct=True),
]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["report", *args], catch_exceptions=False)


@pytest.fixture
def store_url(db_url: str) -> str:
    load(db_url, EVENTS).dispose()
    return db_url


def test_json_is_the_contract_object(store_url: str) -> None:
    result = invoke("--db", store_url, "--start", START, "--end", END, "--by", "risk_class",
                    "--by", "segment.region", "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == ["start", "end", "by", "total", "rows"]  # exactly the contract's keys
    assert data["start"] == START and data["end"] == END
    assert data["by"] == ["risk_class", "segment.region"]
    assert list(data["total"]) == list(KPI_IDS)
    assert [(r["risk_class"], r["segment.region"]) for r in data["rows"]] == [("high", "eu"), ("low", None)]
    for row in data["rows"]:
        assert list(row) == ["risk_class", "segment.region", *KPI_IDS]
    assert isinstance(data["total"]["decisions"], int) and data["total"]["decisions"] == 3
    assert data["total"]["psi"] is None  # empty reference window
    assert data["total"]["pending_oldest_age_seconds"] == (2 * DAY - 3 * HOUR) / 1e6
    more = json.loads(invoke("--db", store_url, "--start", START, "--end", END, "--by", "risk_class",
                             "--by", "segment.region", "--format", "json", "--now", NOW, "--extras").stdout)
    assert {key: more[key] for key in data} == data  # --extras adds keys after the contract's, changes none
    assert more["reference"] == {"start": ts(T0 - DAY), "end": START}
    assert more["now"] == NOW
    assert more["samples"]["total"]["resolved"] == 2


def test_times_are_echoed_in_canonical_utc(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    result = invoke("--db", sqlite_url, "--start", "2026-11-01T01:00:00+01:00", "--end",
                    "2026-11-02T00:00:00.000Z", "--format", "json", "--reference-start",
                    "2026-10-01T00:00:00Z", "--reference-end", "2026-10-02T00:00:00Z", "--extras")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["start"], data["end"]) == ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    assert data["reference"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}
    assert data["by"] == [] and data["rows"] == []


def test_table_shows_nulls_as_dashes(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    result = invoke("--db", sqlite_url, "--start", START, "--end", END, "--by", "segment.region",
                    "--now", NOW)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    psi = next(line for line in lines if line.startswith("psi "))
    assert psi.split() == ["psi", "-", "-", "-"]
    region = next(line for line in lines if line.startswith("segment.region"))
    assert region.split() == ["segment.region", "eu", "-"]
    decisions = next(line for line in lines if line.startswith("decisions"))
    assert decisions.split() == ["decisions", "3", "1", "2"]
    # Columns are aligned: every KPI line has its values ending at the same positions.
    kpi_lines = [line for line in lines if line.split() and line.split()[0] in KPI_IDS]
    assert len(kpi_lines) == len(KPI_IDS)
    assert len({len(line) for line in kpi_lines}) == 1
    assert "nan" not in result.stdout.lower()


def test_table_names_the_configured_currency_once(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    args = ["--db", sqlite_url, "--start", START, "--end", END, "--now", NOW]
    plain = invoke(*args)
    assert plain.exit_code == 0, plain.output
    assert "money" not in plain.stdout  # the shipped config names no currency
    result = CliRunner().invoke(app, ["report", *args], env={"HITL_TOWER_CURRENCY": "EUR"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "money      in EUR (cost_avoided, cost_per_decision)" in result.stdout.splitlines()
    # the amounts themselves stay bare numbers, in columns as narrow as before
    cost = next(line for line in result.stdout.splitlines() if line.startswith("cost_per_decision"))
    assert "EUR" not in cost and cost == next(
        line for line in plain.stdout.splitlines() if line.startswith("cost_per_decision"))


def test_table_wraps_many_rows(sqlite_url: str) -> None:
    load(sqlite_url, [decision(f"d{i}", T0 + HOUR, agent_id=f"agent-number-{i:02d}") for i in range(30)]).dispose()
    result = CliRunner().invoke(app, ["report", "--db", sqlite_url, "--start", START, "--end", END,
                                      "--by", "agent_id"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert result.stdout.count("agent-number-") == 30


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "2026-11-01T00:00:00", "--end", END], "has no zone"),
    (["--start", START, "--end", "tomorrow"], "not RFC 3339"),
    (["--start", END, "--end", START], "must be before"),
    (["--start", START, "--end", START], "must be before"),
    (["--start", START, "--end", END, "--by", "reviewer_id"], "unknown --by field"),
    (["--start", START, "--end", END, "--by", "segment."], "unknown --by field"),
    (["--start", START, "--end", END, "--reference-start", END, "--reference-end", START], "reference"),
    (["--start", START, "--end", END, "--now", "noon"], "--now"),
])
def test_usage_errors_exit_2_with_one_line(sqlite_url: str, args: list[str], message: str) -> None:
    load(sqlite_url, []).dispose()
    result = CliRunner().invoke(app, ["report", "--db", sqlite_url, *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


def test_unreachable_database_exits_2() -> None:
    result = CliRunner().invoke(app, ["report", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none",
                                      "--start", START, "--end", END])
    assert result.exit_code == 2
    assert "cannot reach database" in result.stderr


def test_missing_sqlite_store_exits_2_and_is_not_created(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "missing.db"
    result = CliRunner().invoke(app, ["report", "--db", f"sqlite:///{path}", "--start", START, "--end", END])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("command", [["report", "--last", "24h"], ["verify"], ["alerts", "--dry-run"]])
def test_after_the_demo_a_missing_default_store_names_the_demos(command: list[str], tmp_path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The next command after `hitl-tower demo` looked for ./hitl-tower.db and only said it did not exist."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HITL_TOWER_DB_URL", raising=False)
    (tmp_path / "hitl-demo.db").write_bytes(b"")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("error: SQLite store hitl-tower.db does not exist; the demo's store is "
                                     "./hitl-demo.db here: add --db sqlite:///hitl-demo.db (or export "
                                     "HITL_TOWER_DB_URL=sqlite:///hitl-demo.db)")
    other = CliRunner().invoke(app, [*command, "--db", f"sqlite:///{tmp_path / 'other.db'}"])
    assert other.exit_code == 2 and "the demo's store" not in other.stderr  # an explicit --db is what the user meant


def test_db_from_environment(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    result = CliRunner().invoke(app, ["report", "--start", START, "--end", END, "--format", "json"],
                                env={"HITL_TOWER_DB_URL": sqlite_url})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"]["decisions"] == 3


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(app, ["report", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--start", "--end", "--by", "--reference-start", "--reference-end", "--format", "--db",
                   "--now", "--config"):
        assert option in result.stdout


def test_config_reference_window_is_used_when_none_is_given(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load(sqlite_url, EVENTS).dispose()
    config = tmp_path / "tower.yaml"
    config.write_text(f"reference_window: {{start: '{ts(T0 - 5 * DAY)}', end: '{ts(T0 - 4 * DAY)}'}}\n")
    base = ("--db", sqlite_url, "--start", START, "--end", END, "--format", "json", "--extras", "--config",
            str(config))
    data = json.loads(invoke(*base).stdout)
    assert data["reference"] == {"start": ts(T0 - 5 * DAY), "end": ts(T0 - 4 * DAY)}
    given = json.loads(invoke(*base, "--reference-start", ts(T0 - 2 * DAY), "--reference-end", START).stdout)
    assert given["reference"] == {"start": ts(T0 - 2 * DAY), "end": START}  # the command line wins


def test_advice_parts_in_json_and_refused_for_tables(store_url: str) -> None:
    result = invoke("--db", store_url, "--start", START, "--end", END, "--format", "json",
                    "--advice", "fairness", "--advice", "thresholds")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["advice"]) == ["thresholds", "fairness"]  # registry order, whatever the flag order
    assert "scopes" in data["advice"]["thresholds"] and "segments" in data["advice"]["fairness"]
    everything = json.loads(invoke("--db", store_url, "--start", START, "--end", END, "--format", "json",
                                   "--advice", "all").output)
    assert list(everything["advice"]) == ["thresholds", "autonomy", "changes", "quality", "fairness", "triage"]
    assert "advice" not in json.loads(invoke("--db", store_url, "--start", START, "--end", END,
                                             "--format", "json").output)
    table = invoke("--db", store_url, "--start", START, "--end", END, "--advice", "all")
    assert table.exit_code == 2 and "--advice needs --format json" in table.output
    bad = invoke("--db", store_url, "--start", START, "--end", END, "--format", "json", "--advice", "nope")
    assert bad.exit_code == 2 and "unknown --advice part nope" in bad.output


def test_a_cost_sum_beyond_a_double_prints_null_and_warns(sqlite_url: str) -> None:
    """1e308 twice, whose sum is infinite: ingest now rejects an amount over 1e12, but a store written
    before that ceiling may hold them. JSON has no infinity, so the figure prints as null with a warning
    rather than the command dying with a traceback (audit find)."""
    from collectors.store.db import open_store
    from collectors.store.writer import write_batch
    from collectors.validate import ValidEvent, validate_event

    engine = open_store(sqlite_url)
    events = [validate_event(decision(d, T0 + HOUR, route="auto")) for d in ("d1", "d2")]
    result = write_batch(engine, [(i, ValidEvent(ev.type, ev.key, {**ev.payload, "model_cost": 1e308}))
                                  for i, ev in enumerate(events)])
    assert result.stored == 2
    engine.dispose()
    result = CliRunner().invoke(app, ["report", "--db", sqlite_url, "--start", START, "--end", END, "--by",
                                      "risk_class", "--format", "json", "--now", NOW])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total"]["cost_per_decision"] is None and data["rows"][0]["cost_per_decision"] is None
    assert data["total"]["decisions"] == 2
    assert "total.cost_per_decision overflows a double" in result.stderr
    assert "rows[0].cost_per_decision overflows a double" in result.stderr


def test_a_window_from_year_one_has_an_empty_default_reference(sqlite_url: str) -> None:
    """The window before 0001-01-01 cannot be written as a timestamp: the default reference stops there
    (audit find: an OverflowError traceback)."""
    load(sqlite_url, EVENTS).dispose()
    for start in ("0001-01-01T01:00:00Z", "0001-01-01T00:00:00Z"):
        result = invoke("--db", sqlite_url, "--start", start, "--end", "0002-01-01T00:00:00Z", "--format",
                        "json", "--extras", "--now", NOW)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["reference"]["start"] == "0001-01-01T00:00:00Z" and data["total"]["decisions"] == 0
    given = invoke("--db", sqlite_url, "--start", START, "--end", END, "--reference-start", START,
                   "--reference-end", START)
    assert given.exit_code == 2 and "the reference window is empty" in given.output


def test_version_prints_the_installed_distribution_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"hitl-tower {version('hitl-tower')}\n"


def test_a_segment_key_no_decision_carries_gets_a_note(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    typo = invoke("--db", sqlite_url, "--start", START, "--end", END, "--by", "segment.regoin", "--format", "json")
    assert typo.exit_code == 0
    assert "no decision in the window has segment key 'regoin'" in typo.stderr
    assert json.loads(typo.stdout)["rows"][0]["segment.regoin"] is None  # the report itself is unchanged
    real = invoke("--db", sqlite_url, "--start", START, "--end", END, "--by", "segment.region", "--format", "json")
    assert real.exit_code == 0 and real.stderr == ""


def test_last_is_the_window_of_that_length_ending_now_on_a_whole_second(sqlite_url: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    at = T0 + DAY + 1_500_000  # --now 1.5 s after END: the window ends on END's whole second
    last = json.loads(invoke("--db", sqlite_url, "--last", "24h", "--now", ts(at), "--format", "json",
                             "--by", "risk_class").stdout)
    explicit = json.loads(invoke("--db", sqlite_url, "--start", ts(T0 + 1_000_000), "--end", ts(T0 + DAY + 1_000_000),
                                 "--now", ts(at), "--format", "json", "--by", "risk_class").stdout)
    assert last == explicit
    assert last["total"]["decisions"] == 3


@pytest.mark.parametrize(("args", "message"), [
    ((), "give the window: --start and --end (RFC 3339 with a zone), or --last such as 24h"),
    (("--start", START), "give the window: --start and --end"),
    (("--last", "24h", "--end", END), "--last replaces --start and --end: give one or the other"),
    (("--last", "yesterday"), "--last: 'yesterday' is not a duration like 15m, 1h, 24h, 7d or 2w"),
])
def test_the_window_is_asked_for_clearly(sqlite_url: str, args: tuple[str, ...], message: str) -> None:
    load(sqlite_url, EVENTS).dispose()
    result = invoke("--db", sqlite_url, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}"), result.stderr


def test_a_read_only_sqlite_uri_reads_the_store_and_refuses_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The README's read-only URL for the dashboard, SQLite form; it was refused as "does not exist"."""
    path = tmp_path / "tower.db"
    load(f"sqlite:///{path}", EVENTS).dispose()
    args = ("--start", START, "--end", END, "--now", NOW, "--format", "json")
    read_write = json.loads(invoke("--db", f"sqlite:///{path}", *args).stdout)
    for url in (f"sqlite:///file:{path}?mode=ro&uri=true", f"sqlite:///file://{path}?mode=ro&uri=true"):
        result = invoke("--db", url, *args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == read_write
    events = tmp_path / "more.jsonl"
    events.write_text(json.dumps(decision("d9", T0 + HOUR)) + "\n")
    refused = CliRunner().invoke(app, ["ingest", str(events), "--db", f"sqlite:///file:{path}?mode=ro&uri=true"])
    assert refused.exit_code == 2 and "readonly database" in refused.stderr
    missing = invoke("--db", f"sqlite:///file:{tmp_path / 'nope.db'}?mode=ro&uri=true", *args)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
