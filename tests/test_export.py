"""`hitl-tower export`: an export ingested into a fresh store is the same store.

The key property, on SQLite and PostgreSQL and across them (the migration path):
export a realistic store (synthetic traffic with segments, policy checks,
outcomes and changes, plus hand-written events with extra fields), ingest the
export into a fresh store of the other database, and get the same chain head,
the same count, the same KPI report and a byte-identical export back. Then the
partial exports, the output file, the summary and the errors.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from collectors import synth
from collectors.cli import app
from collectors.config import TowerConfig
from collectors.engine.report import compute_report, report_to_dict
from collectors.ingest import ingest
from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import open_store
from collectors.store.export import export_events
from collectors.validate import canonical_json, parse_line, parse_timestamp, validate_event

runner = CliRunner(env={"HITL_TOWER_DB_URL": None, "HITL_TOWER_CONFIG": None})  # only --db counts
START = datetime(2026, 11, 2, tzinfo=UTC)

# Extra fields and the odd values a real producer sends: nested objects, unicode, a float that is
# whole, a tiny float, nulls, offsets and fractional seconds in timestamps.
HAND_WRITTEN = [
    {"type": "decision", "id": "x-1", "proposed_at": "2026-11-03T09:30:00.123456+05:30", "agent_id": "agent-ü",
     "model_version": "m3", "risk_class": "high", "action_type": "refund", "confidence": 0.5, "route": "review",
     "segment": {"region": "EU", "tier": "pro"}, "policy_checks": [{"rule": "pii", "result": "fail"}],
     "ticket": {"n": 1, "tags": ["a", "ü", "😀"], "nested": {"deep": [1, 2.5, None, True]}},
     "amount": 1.0, "tiny": 1e-300, "note": "line\u2028separator \"quoted\"", "empty": {}},
    {"type": "review", "id": "x-r1", "decision_id": "x-1", "reviewer_id": "alice", "kind": "primary",
     "enqueued_at": "2026-11-03T05:00:00Z", "decided_at": "2026-11-03T05:05:00.250-01:00", "verdict": "edit",
     "reason_code": "wrong_amount", "handle_seconds": 300, "free_text": "ok ✓"},
    {"type": "outcome", "decision_id": "x-1", "observed_at": "2026-11-04T00:00:00Z", "agent_correct": False,
     "final_correct": True, "error_cost": 0, "agent_error_cost": 120.0, "source": {"system": "crm"}},
    {"type": "change", "id": "x-c1", "changed_at": "2026-11-03T12:00:00Z", "actor": "ops", "kind": "policy",
     "scope": {"risk_class": "high"}, "before": "v1", "after": {"version": "v2", "rules": ["pii"]},
     "reason": "tighten", "ticket_url": "https://example.invalid/t/1"},
]


def _events() -> list[dict[str, Any]]:
    """Four days of the demo world (incidents, model rollouts) with the hand-written events inside."""
    traffic = list(synth.generate(seed=3, days=4, decisions_per_day=120, start=START))
    return traffic[:300] + HAND_WRITTEN + traffic[300:]


def _ingest_file(url: str, path: Path) -> None:
    engine = open_store(url)
    try:
        summary = ingest(engine, [str(path)])
        assert summary.rejected == 0 and summary.stored > 0, summary
    finally:
        engine.dispose()


def _other_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store on the other database: SQLite -> PostgreSQL and PostgreSQL -> SQLite."""
    if db_url.startswith("sqlite"):
        from tests.conftest import _pg_schema_url

        return _pg_schema_url(request.getfixturevalue("pg_database"))
    return f"sqlite:///{tmp_path / 'copy.db'}"


def _head(url: str) -> tuple[int, str, int]:
    """The chain head (seq, hash) and the number of stored events."""
    engine = open_store(url, create=False)
    try:
        with engine.connect() as conn:
            seq, hash_ = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one()
            count = sum(int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                        for t in ("decisions", "reviews", "outcomes", "changes"))
    finally:
        engine.dispose()
    return int(seq), str(hash_), count


def _report(url: str) -> dict[str, Any]:
    engine = open_store(url, create=False)
    try:
        start, end = parse_timestamp("2026-11-01T00:00:00Z"), parse_timestamp("2026-11-08T00:00:00Z")
        return report_to_dict(compute_report(engine, TowerConfig(), start, end, by=["risk_class", "model_version"],
                                             now_us=end))
    finally:
        engine.dispose()


def _close(a: Any, b: Any) -> bool:
    """Counts equal; sums of doubles within 1e-9 (another database adds them in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def _export(url: str, *args: str) -> Any:
    return runner.invoke(app, ["export", "--db", url, *args])


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> str:
    """A realistic store written by `ingest`: its URL."""
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events())
    _ingest_file(db_url, source)
    return db_url


# ---- the key property --------------------------------------------------------------------------

def test_an_export_ingested_into_a_fresh_store_of_the_other_database_is_the_same_store(
        store: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    exported = tmp_path / "export.jsonl"
    result = _export(store, "-o", str(exported))
    assert result.exit_code == 0, result.output
    copy = _other_url(store, request, tmp_path)
    _ingest_file(copy, exported)

    seq, head, count = _head(store)
    assert _head(copy) == (seq, head, count) and count == len(_events())
    assert f"exported {count:,} events to {exported}; chain head {head} at seq {seq}" in result.stderr
    assert _close(_report(copy), _report(store))
    again = _export(copy)  # and the copy exports the very same bytes
    assert again.exit_code == 0 and again.stdout_bytes == exported.read_bytes()
    verified = runner.invoke(app, ["verify", "--db", copy, "--expect-head", head])
    assert verified.exit_code == 0, verified.output


def test_the_migration_pipe_of_the_readme(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """`hitl-tower export --db A | hitl-tower ingest - --db B`, as two real processes."""
    copy = _other_url(store, request, tmp_path)
    cli = [sys.executable, "-c", "from collectors.cli import main; main()"]
    export = subprocess.Popen([*cli, "export", "--db", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    load = subprocess.run([*cli, "ingest", "-", "--db", copy, "--workers", "0"], stdin=export.stdout, check=False,
                          capture_output=True, timeout=300)
    assert export.stdout is not None and export.stderr is not None
    export.stdout.close()
    export_err = export.stderr.read().decode()
    assert export.wait(timeout=60) == 0 and load.returncode == 0, (export_err, load.stderr)
    seq, head, count = _head(store)
    assert f"chain head {head} at seq {seq}" in export_err
    assert f"{count} stored, 0 duplicate, 0 rejected" in load.stdout.decode()
    assert _head(copy) == (seq, head, count)


def test_each_line_is_the_canonical_json_the_chain_hashed(store: str) -> None:
    """Re-linking the lines from the genesis hash gives the head; each line is already canonical
    (ingest, which validates and re-serialises it, hashes the same bytes)."""
    result = _export(store)
    lines = result.stdout_bytes.splitlines()
    chain = GENESIS
    for line in lines:
        parsed = parse_line(line)  # as ingest reads it
        assert parsed is not None and canonical_json(parsed.payload) == line
        chain = link_hash(chain, line)
    seq, head, count = _head(store)
    assert chain == head and len(lines) == count == seq
    types = {orjson.loads(line)["type"] for line in lines}
    assert types == {"decision", "review", "outcome", "change"}
    ticket = next(orjson.loads(line) for line in lines if b'"x-1"' in line and b'"decision"' in line)
    assert ticket["ticket"] == HAND_WRITTEN[0]["ticket"] and ticket["amount"] == 1.0
    assert ticket["proposed_at"] == "2026-11-03T04:00:00.123456Z"  # stored as UTC, as the contract says


# ---- partial exports ----------------------------------------------------------------------------

def test_type_and_since_seq_select_events_and_say_the_export_is_partial(sqlite_url: str, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events())
    _ingest_file(sqlite_url, source)
    result = _export(sqlite_url, "--type", "review", "--type", "OUTCOME", "--since-seq", "500")
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout_bytes.splitlines()]
    assert events and {e["type"] for e in events} == {"review", "outcome"}
    assert "partial export" in result.stderr and "will NOT reproduce this chain head" in result.stderr
    assert f"exported {len(events):,} events to stdout (--type outcome --type review, --since-seq 500)" \
        in result.stderr
    everything = [orjson.loads(line) for line in _export(sqlite_url).stdout_bytes.splitlines()]
    assert events == [e for e in everything[500:] if e["type"] in ("review", "outcome")]
    none = _export(sqlite_url, "--since-seq", str(len(everything)))
    assert none.exit_code == 0 and none.stdout_bytes == b"" and "none matched" in none.stderr


def test_since_seq_past_the_head_is_an_error_not_an_empty_export(sqlite_url: str, tmp_path: Path) -> None:
    """--since-seq N on a store whose head is below N (another store, or one that lost events since the
    earlier export) printed 'exported 0 events: none matched' and exit 0: an incremental backup job
    took it for 'nothing new' and never learnt that its store does not hold the events it had copied."""
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events()[:50])
    _ingest_file(sqlite_url, source)
    head = _head(sqlite_url)[0]
    out = tmp_path / "delta.jsonl"
    result = _export(sqlite_url, "-o", str(out), "--since-seq", str(head + 1))
    assert result.exit_code == 2, result.output
    assert f"--since-seq {head + 1} is past the store's chain head (seq {head})" in result.stderr
    assert not out.exists() and list(tmp_path.glob(".delta.jsonl.*")) == []
    at_head = _export(sqlite_url, "--since-seq", str(head))  # nothing new: fine
    assert at_head.exit_code == 0 and "none matched" in at_head.stderr


def test_an_export_since_the_last_seq_of_an_earlier_one_extends_a_copy_to_the_same_head(
        sqlite_url: str, tmp_path: Path) -> None:
    """Incremental copies: a full export, then only what came after it, ingested in turn."""
    events = _events()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    synth.write_jsonl(first, events[:600])
    synth.write_jsonl(second, events[600:])
    _ingest_file(sqlite_url, first)
    base = tmp_path / "base.jsonl"
    assert _export(sqlite_url, "-o", str(base)).exit_code == 0
    last_seq = _head(sqlite_url)[0]
    _ingest_file(sqlite_url, second)
    delta = tmp_path / "delta.jsonl"
    assert _export(sqlite_url, "-o", str(delta), "--since-seq", str(last_seq)).exit_code == 0
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    _ingest_file(copy, base)
    _ingest_file(copy, delta)
    assert _head(copy) == _head(sqlite_url)


def test_the_printed_hash_of_a_partial_export_is_accepted_by_verify_expect_head(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events()[:200])
    _ingest_file(sqlite_url, source)
    result = _export(sqlite_url, "--type", "review")
    printed = result.stderr.split("has chain hash ")[1].split()[0]
    assert printed != _head(sqlite_url)[1]  # a review is not the last event stored
    verified = runner.invoke(app, ["verify", "--db", sqlite_url, "--expect-head", printed])
    assert verified.exit_code == 0 and "expected head found" in verified.stdout, verified.output


# ---- streaming -----------------------------------------------------------------------------------

def test_events_are_written_in_chunks_with_progress(sqlite_url: str) -> None:
    """Bounded memory: lines go out 2000 at a time; progress reports every 1000 events."""
    engine = open_store(sqlite_url)
    lines = [{"type": "decision", "id": f"d-{i}", "proposed_at": "2026-11-02T09:30:00Z", "agent_id": "a",
              "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": 0.5,
              "route": "auto"} for i in range(4500)]
    from collectors.store.writer import write_batch

    assert write_batch(engine, [(i, validate_event(e)) for i, e in enumerate(lines)]).stored == 4500
    writes: list[bytes] = []
    calls: list[tuple[int, int]] = []
    result = export_events(engine, writes.append, progress=lambda done, total: calls.append((done, total)))
    engine.dispose()
    assert [w.count(b"\n") for w in writes] == [2000, 2000, 500]
    assert calls == [(1000, 4500), (2000, 4500), (3000, 4500), (4000, 4500), (4500, 4500)]
    assert result.events == 4500 and result.chain_break is None and not result.partial


# ---- the output file -------------------------------------------------------------------------------

def _tamper_unreadable(url: str) -> None:
    engine = open_store(url, create=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET extra = '{not json' WHERE seq = (SELECT max(seq) FROM decisions)"))
    engine.dispose()


def test_a_failed_export_leaves_an_existing_file_alone_and_no_temporary_file(sqlite_url: str,
                                                                              tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events()[:50])
    _ingest_file(sqlite_url, source)
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    target.write_text("earlier export\n")
    _tamper_unreadable(sqlite_url)
    result = _export(sqlite_url, "-o", str(target))
    assert result.exit_code == 1, result.output
    assert "no longer reads back as an event" in result.stderr and "hitl-tower verify" in result.stderr
    assert target.read_text() == "earlier export\n" and os.listdir(target.parent) == ["export.jsonl"]


def test_a_file_is_written_with_the_usual_permissions(sqlite_url: str, tmp_path: Path) -> None:
    open_store(sqlite_url).dispose()
    target = tmp_path / "empty.jsonl"
    result = _export(sqlite_url, "--output", str(target))
    assert result.exit_code == 0 and target.read_bytes() == b""
    assert "exported 0 events" in result.stderr and "the store is empty" in result.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_altered_event_is_exported_with_a_warning_and_exit_1(store: str) -> None:
    engine = open_store(store, create=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE reviews SET reviewer_id = 'mallory' WHERE id = 'x-r1'"))
    engine.dispose()
    result = _export(store)
    assert result.exit_code == 1
    assert "warning: the exported events do not reproduce the stored hash chain" in result.stderr
    assert "review x-r1" in result.stderr and b"mallory" in result.stdout_bytes


# ---- errors and pipes --------------------------------------------------------------------------------

def test_a_closed_pipe_ends_quietly(sqlite_url: str, tmp_path: Path) -> None:
    """`export | head`: the reader goes away; no traceback, the shell's SIGPIPE code."""
    source = tmp_path / "events.jsonl"
    synth.write_jsonl(source, _events())
    _ingest_file(sqlite_url, source)
    process = subprocess.Popen([sys.executable, "-c", "from collectors.cli import main; main()", "export",
                                "--db", sqlite_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the first line is written
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == b""


@pytest.mark.parametrize("where, message", [
    ("missing/export.jsonl", "cannot write"),
    (".", "it is a directory"),
])
def test_an_unwritable_output_exits_2_before_reading_the_store(tmp_path: Path, where: str, message: str) -> None:
    result = _export(f"sqlite:///{tmp_path / 'nope.db'}", "-o", str(tmp_path / where))
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert "does not exist" not in result.stderr


def test_a_missing_store_exits_2_and_neither_the_store_nor_the_file_appears(tmp_path: Path) -> None:
    result = _export(f"sqlite:///{tmp_path / 'nope.db'}", "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_or_schemaless_store_exits_2(tmp_path: Path) -> None:
    import sqlite3

    unreachable = _export("postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2")
    assert unreachable.exit_code == 2 and "cannot reach database" in unreachable.stderr
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    schemaless = _export(f"sqlite:///{path}")
    assert schemaless.exit_code == 2 and "no HITL Control Tower schema" in schemaless.stderr


def test_an_outcome_keyed_from_before_migration_0007_is_named_as_lost_on_reingest(sqlite_url: str,
                                                                                    tmp_path: Path) -> None:
    """Two outcomes with the same content (1 and 1.0) stored before 0007 keep two keys; ingest keeps one."""
    import hashlib

    from collectors.store.writer import write_batch

    engine = open_store(sqlite_url)
    decision = {"type": "decision", "id": "d-1", "proposed_at": "2026-11-02T09:30:00Z", "agent_id": "a",
                "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": 0.5, "route": "auto"}
    outcome = {"type": "outcome", "decision_id": "d-1", "observed_at": "2026-11-03T00:00:00Z",
               "agent_correct": True, "final_correct": True, "n": 1}
    write_batch(engine, [(0, validate_event(decision)), (1, validate_event(outcome))])
    with engine.begin() as conn:  # the key it had before 0007: the digest of its canonical JSON
        legacy = hashlib.sha256(canonical_json(validate_event(outcome).payload)).hexdigest()
        conn.execute(text("UPDATE outcomes SET key = :k"), {"k": legacy})
    assert write_batch(engine, [(0, validate_event({**outcome, "n": 1.0}))]).stored == 1
    engine.dispose()
    assert runner.invoke(app, ["verify", "--db", sqlite_url]).exit_code == 0

    exported = tmp_path / "export.jsonl"
    result = _export(sqlite_url, "-o", str(exported))
    assert result.exit_code == 0, result.output
    assert "warning: 1 outcomes stored before migration 0007" in result.stderr
    assert "they reproduce it" not in result.stderr
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    _ingest_file(copy, exported)
    assert _head(copy)[2] == 2 and _head(sqlite_url)[2] == 3
