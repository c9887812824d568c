"""Tamper evidence: `verify_chain` and `hitl-tower verify` catch edits made behind the tool's back.

Each test writes a small audit log through the real writer, tampers with it
in plain SQL (as someone with database access would), and checks that the
first problem is found, classified and named precisely. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from collectors.cli import app
from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import open_store
from collectors.store.derive import rebuild_state
from collectors.store.verify import VerifyResult, verify_chain
from collectors.store.writer import write_batch
from collectors.validate import canonical_json, validate_event

runner = CliRunner(env={"HITL_TOWER_DB_URL": None, "HITL_TOWER_CONFIG": None})  # only --db counts


def _decision(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "decision", "id": f"d-{i}", "proposed_at": f"2026-11-0{1 + i % 9}T09:30:00+01:00",
            "agent_id": "agent-7", "model_version": "m3", "risk_class": "high", "action_type": "refund",
            "confidence": 0.25 + (i % 70) / 100, "route": "review", "segment": {"region": "eu"}, **extra}


def _review(i: int, verdict: str = "edit", **extra: Any) -> dict[str, Any]:
    return {"type": "review", "id": f"r-{i}", "decision_id": f"d-{i}", "reviewer_id": "alice",
            "kind": "primary", "enqueued_at": "2026-11-10T10:00:00Z",
            "decided_at": "2026-11-10T10:05:00.250Z", "verdict": verdict, "ticket": {"n": i}, **extra}


def _outcome(i: int) -> dict[str, Any]:
    return {"type": "outcome", "decision_id": f"d-{i}", "observed_at": "2026-11-20T00:00:00Z",
            "agent_correct": i % 2 == 0, "final_correct": True, "error_cost": 12.5}


BATCH_1 = [_decision(1), _decision(2), _review(1), _decision(3, policy_checks=[{"rule": "pii", "result": "pass"}])]
BATCH_2 = [_review(2, "reject"), _review(3), _outcome(1), _outcome(2),
           {"type": "change", "id": "c-1", "changed_at": "2026-11-15T00:00:00Z", "actor": "ops",
            "kind": "threshold", "before": 0.92, "after": 0.88, "scope": {"risk_class": "high"}}]
EVENTS = len(BATCH_1) + len(BATCH_2)


def _write(engine: Engine, raw: list[dict[str, Any]]) -> None:
    result = write_batch(engine, [(i, validate_event(e)) for i, e in enumerate(raw)])
    assert result.stored == len(raw), result


@pytest.fixture
def store(db_url: str) -> Engine:
    """A store holding BATCH_1 and BATCH_2, written by the real writer in two transactions."""
    engine = open_store(db_url)
    _write(engine, BATCH_1)
    _write(engine, BATCH_2)
    yield engine
    engine.dispose()


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _seq(engine: Engine, table: str, where: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT seq FROM {table} WHERE {where}")).scalar_one())


def _head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, hash_ = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one()
    return int(seq), str(hash_)


def _fails(engine: Engine, *fragments: str, **options: Any) -> VerifyResult:
    result = verify_chain(engine, **options)
    assert not result.ok and result.problem is not None, result
    for fragment in fragments:
        assert fragment in result.problem, (fragment, result.problem)
    return result


# ---- the intact chain -------------------------------------------------------------------------

def test_intact_store_verifies_with_the_right_count(store: Engine) -> None:
    result = verify_chain(store, deep=True)
    assert result.ok and result.problem is None
    assert result.events == EVENTS == result.head_seq
    assert result.head_hash == _head(store)[1]
    assert result.decisions_checked == 3 and result.state_mismatch_count == 0


def test_the_head_is_the_hash_chain_over_canonical_json(store: Engine) -> None:
    chain = GENESIS
    for raw in BATCH_1 + BATCH_2:
        chain = link_hash(chain, canonical_json(validate_event(raw).payload))
    assert _head(store) == (EVENTS, chain)


def test_empty_store_verifies(db_url: str) -> None:
    engine = open_store(db_url)
    result = verify_chain(engine, deep=True)
    assert result.ok and result.events == 0 and result.head_hash == GENESIS
    engine.dispose()


# ---- alterations ------------------------------------------------------------------------------

def test_updated_confidence_names_the_decision(store: Engine) -> None:
    seq = _seq(store, "decisions", "id = 'd-2'")
    _sql(store, "UPDATE decisions SET confidence = 0.99, conf_bin = 9 WHERE id = 'd-2'")
    result = _fails(store, f"decision d-2 (seq {seq}) was altered", "does not match its content")
    assert result.events == seq - 1


def test_updated_review_extra_json_names_the_review(store: Engine) -> None:
    seq = _seq(store, "reviews", "id = 'r-2'")
    _sql(store, """UPDATE reviews SET extra = '{"ticket": {"n": 99}}' WHERE id = 'r-2'""")
    _fails(store, f"review r-2 (seq {seq}) was altered", "does not match its content")


def test_a_repeated_json_key_is_tampering_even_with_the_original_value_last(store: Engine) -> None:
    """Python reads the last copy of a key (so the chain recomputes clean) but SQLite's JSON_EXTRACT,
    behind --by segment.KEY, reads the first: a forged first copy would change the reports unseen."""
    seq = _seq(store, "decisions", "id = 'd-2'")
    _sql(store, """UPDATE decisions SET segment = '{"region": "xx", "region": "eu"}' WHERE id = 'd-2'""")
    _fails(store, f"decision d-2 (seq {seq}) was altered", "repeats the key 'region'")
    _sql(store, """UPDATE decisions SET segment = '{ "region" :  "eu" }' WHERE id = 'd-2'""")
    assert verify_chain(store).ok  # spaces alone change no reader's value


def test_updated_outcome_bool_names_the_outcome(store: Engine) -> None:
    seq = _seq(store, "outcomes", "decision_id = 'd-1'")
    _sql(store, "UPDATE outcomes SET final_correct = :v WHERE decision_id = 'd-1'", v=False)
    _fails(store, f"outcome of decision d-1 (seq {seq}) was altered")


def test_updated_timestamp_names_the_change(store: Engine) -> None:
    seq = _seq(store, "changes", "id = 'c-1'")
    _sql(store, "UPDATE changes SET changed_at = changed_at + 1 WHERE id = 'c-1'")
    _fails(store, f"change c-1 (seq {seq}) was altered")


def test_rewritten_hash_column_is_named_as_such(store: Engine) -> None:
    seq = _seq(store, "reviews", "id = 'r-1'")
    _sql(store, "UPDATE reviews SET hash = :h WHERE id = 'r-1'", h="ab" * 32)
    _fails(store, f"review r-1 (seq {seq}) was altered", "its stored hash was changed")


def test_unhashed_conf_bin_is_checked_too(store: Engine) -> None:
    _sql(store, "UPDATE decisions SET conf_bin = 7 WHERE id = 'd-1'")
    _fails(store, "decision d-1", "conf_bin 7 does not match its confidence")


def test_unreadable_cell_is_reported_not_crashed_on(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    _write(engine, BATCH_1)
    _sql(engine, "UPDATE decisions SET segment = 'not json' WHERE id = 'd-2'")  # SQLite only: no JSON type
    _fails(engine, "decision d-2 (seq 2) was altered", "can no longer be read")


# ---- deletions --------------------------------------------------------------------------------

def test_deleted_middle_review_is_named_by_its_seq_and_neighbours(store: Engine) -> None:
    seq = _seq(store, "reviews", "id = 'r-1'")
    _sql(store, "DELETE FROM reviews WHERE id = 'r-1'")
    result = _fails(store, f"the event at seq {seq} was deleted",
                    f"from decision d-2 (seq {seq - 1}) to decision d-3 (seq {seq + 1})")
    assert result.events == seq - 1


def test_deleted_last_event_is_found_against_the_head(store: Engine) -> None:
    _sql(store, "DELETE FROM changes WHERE id = 'c-1'")
    _fails(store, f"the event at seq {EVENTS} was deleted", f"chain head says seq {EVENTS}")


def test_deleted_first_events_are_found(store: Engine) -> None:
    _sql(store, "DELETE FROM decisions WHERE id IN ('d-1', 'd-2')")
    _fails(store, "the events at seq 1..2 were deleted", "jumps from its start to review r-1 (seq 3)")


# ---- insertions -------------------------------------------------------------------------------

_FORGED = ("INSERT INTO decisions (seq, id, proposed_at, agent_id, model_version, risk_class, action_type, "
           "confidence, conf_bin, route, hash) VALUES (:seq, 'd-forged', 0, 'a', 'm', 'low', 'x', 0.5, 5, "
           "'auto', :hash)")


def test_forged_decision_past_the_head_is_named(store: Engine) -> None:
    _sql(store, _FORGED, seq=EVENTS + 100, hash="f" * 64)
    result = _fails(store, f"decision d-forged (seq {EVENTS + 100}) was inserted",
                    f"past the chain head (seq {EVENTS})")
    assert result.events == EVENTS


def test_forged_decision_with_a_valid_hash_past_the_head_is_still_found(store: Engine) -> None:
    with store.connect() as conn:
        row = conn.execute(text("SELECT * FROM decisions WHERE id = 'd-1'")).mappings().one()
    forged = {**_decision(1), "id": "d-forged", "proposed_at": "1970-01-01T00:00:00Z", "agent_id": "a",
              "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": 0.5, "route": "auto"}
    del forged["segment"]
    good_hash = link_hash(_head(store)[1], canonical_json(validate_event(forged).payload))
    _sql(store, _FORGED, seq=EVENTS + 1, hash=good_hash)
    assert row is not None
    _fails(store, f"decision d-forged (seq {EVENTS + 1}) was inserted", "past the chain head")


def test_forged_decision_reusing_a_review_seq_is_named(store: Engine) -> None:
    seq = _seq(store, "reviews", "id = 'r-2'")
    _sql(store, _FORGED, seq=seq, hash="e" * 64)
    _fails(store, f"decision d-forged (seq {seq}) was inserted", f"review r-2 already holds seq {seq}")


# ---- the chain head ---------------------------------------------------------------------------

def test_tampered_head_hash(store: Engine) -> None:
    _sql(store, "UPDATE chain_head SET hash = :h WHERE id = 1", h="0" * 63 + "1")
    _fails(store, "the chain head was tampered", "0" * 63 + "1")


def test_tampered_head_seq(store: Engine) -> None:
    _sql(store, "UPDATE chain_head SET seq = seq + 5 WHERE id = 1")
    _fails(store, "the chain head was tampered", f"says seq {EVENTS + 5}")


def test_tampered_head_seq_lowered(store: Engine) -> None:
    _sql(store, "UPDATE chain_head SET seq = 2 WHERE id = 1")
    _fails(store, "the chain head was tampered", "says seq 2")


def test_deleted_head_row(store: Engine) -> None:
    _sql(store, "DELETE FROM chain_head")
    _fails(store, "chain head is missing")


# ---- --expect-head: an anchor kept outside the database ----------------------------------------

def test_expect_head_accepts_the_current_and_an_earlier_head(db_url: str) -> None:
    engine = open_store(db_url)
    _write(engine, BATCH_1)
    earlier = _head(engine)[1]
    _write(engine, BATCH_2)
    current = _head(engine)[1]
    assert verify_chain(engine, expect_head=current).ok
    result = verify_chain(engine, expect_head=earlier)
    assert result.ok and result.expected_head_seq == len(BATCH_1)
    engine.dispose()


def test_expect_head_catches_a_consistently_rewritten_chain(store: Engine) -> None:
    """Someone who alters an event and re-hashes everything after it fools the chain, not the anchor."""
    anchor = _head(store)[1]
    _sql(store, "UPDATE decisions SET confidence = 0.99, conf_bin = 9 WHERE id = 'd-2'")
    _rehash_everything(store)
    assert verify_chain(store).ok
    _fails(store, f"the expected head {anchor} is not in the chain", expect_head=anchor)


def _rehash_everything(engine: Engine) -> None:
    from collectors.store.stored_events import snapshot, stored_events

    with snapshot(engine) as conn:
        events = [(e.etype, e.seq, e.canonical) for e in stored_events(conn)]
    chain = GENESIS
    tables = {"decision": "decisions", "review": "reviews", "outcome": "outcomes", "change": "changes"}
    for etype, seq, canonical in events:
        assert canonical is not None
        chain = link_hash(chain, canonical)
        _sql(engine, f"UPDATE {tables[etype]} SET hash = :h WHERE seq = :s", h=chain, s=seq)
    _sql(engine, "UPDATE chain_head SET hash = :h WHERE id = 1", h=chain)


# ---- --deep: derived decision state ----------------------------------------------------------

def test_deep_check_names_a_decision_whose_state_was_edited(store: Engine) -> None:
    seq = _seq(store, "decisions", "id = 'd-2'")
    _sql(store, "UPDATE decision_state SET final_verdict = 'approve' WHERE decision_seq = :s", s=seq)
    assert verify_chain(store).ok  # not part of the chain
    result = verify_chain(store, deep=True)
    assert result.problem is None and not result.ok and result.state_mismatch_count == 1
    assert f"decision d-2 (seq {seq})" in result.state_mismatches[0]
    assert "final_verdict is 'approve', derived 'reject'" in result.state_mismatches[0]


def test_deep_check_finds_missing_and_orphan_state_rows(store: Engine) -> None:
    _sql(store, "DELETE FROM decision_state WHERE decision_seq = 1")
    _sql(store, "INSERT INTO decision_state (decision_seq, final_verdict, review_cost_sum, review_seconds_sum) "
                "VALUES (999, 'auto', 0, 0)")
    result = verify_chain(store, deep=True)
    assert result.state_mismatch_count == 2
    assert "decision d-1 (seq 1) has no decision_state row" in result.state_mismatches
    assert "decision_state row of seq 999 names no stored decision" in result.state_mismatches


def test_rebuild_state_repairs_what_the_deep_check_finds(store: Engine) -> None:
    _sql(store, "UPDATE decision_state SET review_cost_sum = 1e6")
    assert verify_chain(store, deep=True).state_mismatch_count == 3
    assert rebuild_state(store) == 3
    assert verify_chain(store, deep=True).ok


# ---- --deep: rollups (what reports read) ------------------------------------------------------

def test_deep_check_recomputes_the_rollups(store: Engine) -> None:
    result = verify_chain(store, deep=True)
    assert result.ok and result.rollups_checked and result.rollup_rows_checked and result.rollup_rows_checked >= 3


def test_deep_check_names_an_edited_rollup_row(store: Engine) -> None:
    """A store audit set intervened = decisions in kpi_rollup: intervention_rate read 1.0 and plain and
    deep verify said OK. The rollups are not in the chain, so only --deep can see it. (Here every
    decision was edited or rejected already: the forged figure is the pending count.)"""
    _sql(store, "UPDATE kpi_rollup SET pending = decisions")
    assert verify_chain(store).ok
    result = verify_chain(store, deep=True)
    assert not result.ok and result.state_mismatch_count == 0 and result.rollup_mismatch_count >= 1
    assert "kpi_rollup row (2026-11-0" in result.rollup_mismatches[0]
    assert "risk_class=high" in result.rollup_mismatches[0] and "pending is 1, the events say 0" in result.rollup_mismatches[0]


def test_deep_check_sees_a_slice_relabelled_under_its_rows(store: Engine) -> None:
    _sql(store, "UPDATE rollup_slices SET risk_class = 'low'")
    result = verify_chain(store, deep=True)
    assert any("has no decisions behind it" in line for line in result.rollup_mismatches)
    assert any("is missing" in line for line in result.rollup_mismatches)


def test_deep_check_skips_rollups_marked_invalid_and_rebuild_restores_them(store: Engine) -> None:
    from collectors.store.rollup import rebuild_rollups

    _sql(store, "DELETE FROM kpi_rollup")
    assert verify_chain(store, deep=True).rollup_mismatch_count >= 3
    _sql(store, "UPDATE rollup_meta SET valid = :v WHERE id = 1", v=False)  # reports read the events now
    skipped = verify_chain(store, deep=True)
    assert skipped.ok and skipped.rollups_checked and skipped.rollup_rows_checked is None
    rebuild_rollups(store)
    assert verify_chain(store, deep=True).ok


def test_deep_cli_prints_each_rollup_problem(store: Engine) -> None:
    url = store.url.render_as_string(hide_password=False)
    clean = runner.invoke(app, ["verify", "--db", url, "--deep"])
    assert clean.exit_code == 0 and "rollup rows match the events" in clean.output
    _sql(store, "UPDATE kpi_rollup SET model_cost = model_cost + 5")
    result = runner.invoke(app, ["verify", "--db", url, "--deep"])
    assert result.exit_code == 1, result.output
    assert "FAILED: kpi_rollup row (" in result.output and "model_cost is" in result.output


# ---- streaming, progress and snapshot ---------------------------------------------------------

def test_many_events_stream_in_chunks_with_progress(db_url: str) -> None:
    """More rows than one fetch of a cursor; progress reports (done, expected) every 1000 events."""
    engine = open_store(db_url)
    raw = [_decision(i) for i in range(1, 2501)]
    for i in range(0, len(raw), 1000):
        _write(engine, raw[i:i + 1000])
    calls: list[tuple[int, int]] = []
    result = verify_chain(engine, progress=lambda done, total: calls.append((done, total)))
    assert result.ok and result.events == 2500, result
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]
    engine.dispose()


def test_a_batch_committed_while_verifying_is_not_tampering(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """verify reads one snapshot: a batch landing after it read the head is simply not seen yet."""
    import collectors.store.verify as verify_module

    original = verify_module.stored_events

    def write_then_merge(conn: Any) -> Any:
        _write(store, [_decision(9000), _review(9000)])  # another connection commits meanwhile
        return original(conn)

    monkeypatch.setattr(verify_module, "stored_events", write_then_merge)
    result = verify_chain(store, deep=True)
    assert result.ok and result.events == EVENTS and result.decisions_checked == 3, result
    monkeypatch.undo()
    assert verify_chain(store, deep=True).events == EVENTS + 2


# ---- the command ------------------------------------------------------------------------------

def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_cli_ok_prints_count_and_head(store: Engine) -> None:
    result = runner.invoke(app, ["verify", "--db", _url(store)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"OK: {EVENTS} events verified, chain head {_head(store)[1]}"


def test_cli_deep_ok(store: Engine) -> None:
    result = runner.invoke(app, ["verify", "--db", _url(store), "--deep"])
    assert result.exit_code == 0, result.output
    assert "OK: decision_state of 3 decisions matches the events" in result.stdout


def test_cli_names_the_tampered_event_and_exits_1(store: Engine) -> None:
    seq = _seq(store, "reviews", "id = 'r-3'")
    _sql(store, "DELETE FROM reviews WHERE id = 'r-3'")
    result = runner.invoke(app, ["verify", "--db", _url(store)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"FAILED: the event at seq {seq} was deleted")


def test_cli_deep_mismatch_exits_1(store: Engine) -> None:
    _sql(store, "UPDATE decision_state SET review_seconds_sum = 42 WHERE decision_seq = 1")
    assert runner.invoke(app, ["verify", "--db", _url(store)]).exit_code == 0
    result = runner.invoke(app, ["verify", "--db", _url(store), "--deep"])
    assert result.exit_code == 1, result.output
    assert "FAILED: decision d-1 (seq 1): decision_state differs" in result.stdout


def test_cli_expect_head(store: Engine) -> None:
    head = _head(store)[1]
    ok = runner.invoke(app, ["verify", "--db", _url(store), "--expect-head", head.upper()])
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(app, ["verify", "--db", _url(store), "--expect-head", "a" * 64])
    assert wrong.exit_code == 1 and "is not in the chain" in wrong.stdout
    malformed = runner.invoke(app, ["verify", "--db", _url(store), "--expect-head", "abc"])
    assert malformed.exit_code == 2 and "64 hex digits" in malformed.stderr


def test_cli_missing_sqlite_store_exits_2_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    result = runner.invoke(app, ["verify", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_cli_unreachable_postgres_exits_2() -> None:
    result = runner.invoke(app, ["verify", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2"])
    assert result.exit_code == 2 and "cannot reach database" in result.stderr


def test_cli_store_without_schema_exits_2(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).close()  # an empty file that is not a tower store
    result = runner.invoke(app, ["verify", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 2 and "no HITL Control Tower schema" in result.stderr
