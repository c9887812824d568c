"""Ingest: streaming lines, the fast validation path, order independence, idempotency, the CLI."""

from __future__ import annotations

import io
import random
import tracemalloc
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from collectors.cli import app
from collectors.ingest import LineReader, Loader, ingest
from collectors.store.db import open_store
from collectors.store.line_preparers import prepare_line as fused_prepare_line
from collectors.store.line_preparers import source as fused_source
from collectors.store.prepared import COLUMNS as _COLUMNS
from collectors.store.prepared import prepare
from collectors.store.rows import payload_to_row
from collectors.store.writer import write_batch
from collectors.validate import EventError, parse_line, parse_line_reference, validate_event

runner = CliRunner()


# ---- helpers ----------------------------------------------------------------------------------

def decision(id: str, **fields: Any) -> dict[str, Any]:
    event = {"type": "decision", "id": id, "proposed_at": "2026-11-24T09:00:00Z", "agent_id": "agent-1",
             "model_version": "m1", "risk_class": "low", "action_type": "refund", "confidence": 0.8,
             "route": "review"}
    event.update(fields)
    return event


def review(id: str, decision_id: str, **fields: Any) -> dict[str, Any]:
    event = {"type": "review", "id": id, "decision_id": decision_id, "reviewer_id": "alice",
             "kind": "primary", "enqueued_at": "2026-11-24T09:05:00Z", "decided_at": "2026-11-24T09:10:00Z",
             "verdict": "approve"}
    event.update(fields)
    return event


def outcome(decision_id: str, **fields: Any) -> dict[str, Any]:
    event = {"type": "outcome", "decision_id": decision_id, "observed_at": "2026-11-25T09:00:00Z",
             "agent_correct": True, "final_correct": True}
    event.update(fields)
    return event


def jsonl(*events: dict[str, Any] | bytes) -> bytes:
    return b"".join((e if isinstance(e, bytes) else orjson.dumps(e)) + b"\n" for e in events)


def write(path: Path, *events: dict[str, Any] | bytes) -> str:
    path.write_bytes(jsonl(*events))
    return str(path)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("decisions", "reviews", "outcomes", "changes", "decision_state")}


def contents(engine: Engine) -> dict[str, Any]:
    """The store's facts without chain positions: events by key and decision state by decision id."""
    with engine.connect() as conn:
        out: dict[str, Any] = {}
        for table, key in (("decisions", "id"), ("reviews", "id"), ("outcomes", "key"), ("changes", "id")):
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
            out[table] = {r[key]: {k: v for k, v in r.items() if k not in ("seq", "hash")} for r in rows}
        states = conn.execute(text(
            "SELECT d.id, s.final_verdict, s.final_review_id, s.agent_correct, s.review_cost_sum, "
            "s.review_seconds_sum, o.key FROM decision_state s JOIN decisions d ON d.seq = s.decision_seq "
            "LEFT JOIN outcomes o ON o.seq = s.outcome_seq")).all()
        out["state"] = {row[0]: tuple(row[1:]) for row in states}
        return out


def verify_ok(engine: Engine) -> None:
    try:
        from collectors.store.verify import verify_chain
    except ImportError:  # pragma: no cover - verify is another module of the project
        return
    result = verify_chain(engine, deep=True)
    assert result.ok, result


# ---- LineReader -------------------------------------------------------------------------------

def read_all(data: bytes, limit: int = 100, block: int = 7) -> list[bytes | int]:
    return list(LineReader(io.BytesIO(data), limit, block_size=block))


@pytest.mark.parametrize("block", [1, 3, 7, 64, 1 << 20])
def test_line_reader_splits_physical_lines(block: int) -> None:
    data = b"a\n\nbc\r\n" + b"x" * 30 + b"\nlast"
    assert read_all(data, limit=100, block=block) == [b"a", b"", b"bc\r", b"x" * 30, b"last"]
    assert read_all(b"", block=block) == []
    assert read_all(b"\n", block=block) == [b""]
    assert read_all(b"one\n", block=block) == [b"one"]


@pytest.mark.parametrize("block", [1, 4, 10, 1000])
def test_line_reader_gives_lengths_of_overlong_lines(block: int) -> None:
    data = b"ok\n" + b"y" * 25 + b"\n" + b"z" * 10 + b"\n" + b"w" * 11
    assert read_all(data, limit=10, block=block) == [b"ok", 25, b"z" * 10, 11]


@pytest.mark.parametrize("block", [1, 2, 3, 4, 5, 7, 10, 11, 12, 1000])
def test_line_reader_does_not_count_the_cr_of_a_crlf_end(block: int) -> None:
    """A line of exactly the limit ending in CRLF is kept; overlong lines are measured without their CR."""
    data = b"x" * 10 + b"\r\n" + b"y" * 11 + b"\r\n" + b"z" * 9 + b"\r\r\n" + b"w" * 10 + b"\r" + b"v\n" + b"u" * 12 + b"\r"
    assert read_all(data, limit=10, block=block) == [b"x" * 10 + b"\r", 11, b"z" * 9 + b"\r\r", 12, 13]


def test_line_reader_does_not_buffer_an_overlong_line() -> None:
    class Blocks(io.RawIOBase):
        """A 50 MB line handed out one block at a time, never held whole."""

        def __init__(self) -> None:
            self.left = 50 << 20

        def read(self, n: int = -1) -> bytes:
            if self.left <= 0:
                return b""
            size = min(n, self.left)
            self.left -= size
            return b"q" * (size - 1) + (b"\n" if self.left == 0 else b"q")

    tracemalloc.start()
    lines = list(LineReader(Blocks(), 1 << 20, block_size=1 << 20))  # type: ignore[arg-type]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert lines == [(50 << 20) - 1]  # the last byte is its newline
    assert peak < 8 << 20


# ---- the fast path equals parse_line_reference ----------------------------------------------------------

def _outcome_of(parse: Any, raw: bytes) -> Any:
    try:
        return ("ok", parse(raw))
    except EventError as exc:
        return ("error", str(exc))
    except (ValueError, OverflowError) as exc:
        return ("range", str(exc))


TRICKY = [
    b"", b"   ", b"\r", b"\xef\xbb\xbf" + orjson.dumps(decision("bom")), orjson.dumps(decision("crlf")) + b"\r",
    b"[1, 2]", b"{}", b"{\"type\": null}", b"{\"type\": \"decision\"}", b"not json", b"{\"a\": NaN}",
    b"\xff\xfe{}", orjson.dumps(decision("x", confidence=1)), orjson.dumps(decision("x", confidence=0)),
    orjson.dumps(decision("x", confidence=True)), orjson.dumps(decision("x", confidence="0.5")),
    orjson.dumps(decision("x", confidence=1.0000001)), orjson.dumps(decision("x", confidence=-0.0)),
    orjson.dumps(decision("x", model_cost=-1)), orjson.dumps(decision("x", model_cost=None)),
    orjson.dumps(decision("x", model_cost=1e12)), orjson.dumps(decision("x", model_cost=10**12 + 1)),
    orjson.dumps(decision("x", model_cost=1e308)), orjson.dumps(review("r", "d", cost=10**12, handle_seconds=2e12)),
    orjson.dumps(outcome("d", error_cost=1e12, agent_error_cost=1.0000000000001e12)),
    orjson.dumps(decision("x", queue=None, segment=None, extra={"a": None})),
    orjson.dumps(decision("x", queue=None, note=None)), orjson.dumps(outcome("d", error_cost=None, note=None)),
    orjson.dumps(decision("x", proposed_at="2026-11-24T09:00:00+01:00")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T09:00:00.000000Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T09:00:00.5Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T09:00:00.123456789Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24t09:00:00z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24 09:00:00Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T09:00:00")),
    orjson.dumps(decision("x", proposed_at="2026-02-29T09:00:00Z")),
    orjson.dumps(decision("x", proposed_at="2024-02-29T09:00:00Z")),
    orjson.dumps(decision("x", proposed_at="2026-13-01T09:00:00Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T24:00:00Z")),
    orjson.dumps(decision("x", proposed_at="2026-11-24T23:59:60Z")),
    orjson.dumps(decision("x", proposed_at="0999-11-24T09:00:00Z")),
    orjson.dumps(decision("x", proposed_at="0001-01-01T00:00:00+01:00")),
    orjson.dumps(decision("x", proposed_at="0001-01-01T00:00:00+00:01")),
    orjson.dumps(review("r", "d", decided_at="9999-12-31T23:59:59.999999-00:01")),
    orjson.dumps(decision("x", proposed_at="9999-12-31T23:59:59Z")),
    orjson.dumps(decision("x", proposed_at="\u0662\u0660\u0662\u0666-11-24T09:00:00Z")),
    orjson.dumps(decision("x", proposed_at=20261124)),
    orjson.dumps(decision("x", route="manual")), orjson.dumps(decision("x", route=None)),
    orjson.dumps(decision("x", segment={"a": 1})), orjson.dumps(decision("x", segment=["a"])),
    orjson.dumps(decision("x", policy_checks=[{"rule": "r", "result": "pass"}])),
    orjson.dumps(decision("x", policy_checks=[{"rule": "r", "result": "maybe"}])),
    orjson.dumps(decision("x", policy_checks=[{"rule": 1, "result": "pass"}])),
    orjson.dumps(decision("x", policy_checks={"rule": "r"})),
    orjson.dumps({**decision("x"), "id": 17}),
    orjson.dumps(review("r", "d", decided_at="2026-11-24T09:04:59Z")),
    orjson.dumps(review("r", "d", decided_at="2026-11-24T09:05:00Z")),
    orjson.dumps(review("r", "d", decided_at="2026-11-24T09:05:00.000001Z")),
    orjson.dumps(review("r", "d", enqueued_at="2026-11-24T09:10:00.5Z")),
    orjson.dumps(review("r", "d", decided_at="2026-11-24T10:04:00+01:00")),
    orjson.dumps(review("r", "d", audit_probability=0)), orjson.dumps(review("r", "d", audit_probability=1)),
    orjson.dumps(review("r", "d", kind="peer")), orjson.dumps(review("r", "d", handle_seconds=12)),
    orjson.dumps(outcome("d")), orjson.dumps(outcome("d", agent_correct=1)),
    orjson.dumps(outcome("d", error_cost=3, note="x")),
    orjson.dumps({"type": "change", "id": "c", "changed_at": "2026-11-24T09:00:00Z", "actor": "a",
                  "kind": "threshold", "before": 0.9, "after": None, "scope": {}}),
    b'{"type": "decision", "id": "x", "type": "review"}',
    orjson.dumps(decision("x" * 256, agent_id="\U0001F600" * 256)), orjson.dumps(decision("x" * 257)),
    orjson.dumps(decision("x", queue="q" * 257)), orjson.dumps(review("r", "d" * 257, reason_code="c" * 300)),
    orjson.dumps(review("r", "d", reason_code="c" * 257)), orjson.dumps(outcome("d" * 257)),
    orjson.dumps({**decision("x"), "id": "nul\u0000id"}), orjson.dumps(decision("x", segment={"r": "nul\u0000"})),
    orjson.dumps(decision("x", confidence=0.95, extra={"nested": [1, None, {"b": 2}]}, policy_version=None)),
    orjson.dumps(review("r", "d", claimed_at=None, reason_code="typo", cost=0)),
    orjson.dumps(review("r", "d", enqueued_at="2026-11-24T09:00:00.000000Z", decided_at="2026-11-24T09:00:00Z")),
    orjson.dumps(outcome("d", agent_error_cost=-0.0, extra_note="late")),
    orjson.dumps(outcome("d", n=1, m=[-0.0, 2**53 + 1, {"k": 3}], t=True)), orjson.dumps(outcome("d", n=1.0)),
    orjson.dumps({"type": "change", "id": "c2", "changed_at": "2026-11-24T09:00:00Z", "actor": "a",
                  "kind": "model", "before": {"v": 1}, "after": [1, 2], "reason": "upgrade", "ticket": 7}),
]


@pytest.mark.parametrize("raw", TRICKY)
def test_fast_path_equals_parse_line_reference_on_tricky_lines(raw: bytes) -> None:
    assert _outcome_of(parse_line, raw) == _outcome_of(parse_line_reference, raw)


_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=4),
                    st.sampled_from(["2026-11-24T09:00:00Z", "2026-11-24T09:00:00.250000Z", "low", "auto",
                                     "review", "primary", "approve", "threshold", "2026-11-24T10:00:00+01:00"]),
                    st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=2))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([decision("d"), review("r", "d"), outcome("d"),
                             {"type": "change", "id": "c", "changed_at": "2026-11-24T09:00:00Z",
                              "actor": "a", "kind": "policy"}]),
       changes=st.dictionaries(st.sampled_from(
           ["id", "confidence", "route", "proposed_at", "decided_at", "enqueued_at", "kind", "verdict",
            "model_cost", "segment", "agent_correct", "observed_at", "error_cost", "audit_probability",
            "changed_at", "scope", "extra", "type"]), _values, max_size=3))
def test_fast_path_equals_parse_line_reference_on_mutations(base: dict[str, Any], changes: dict[str, Any]) -> None:
    raw = orjson.dumps({**base, **changes})
    assert _outcome_of(parse_line, raw) == _outcome_of(parse_line_reference, raw)


def test_fast_path_equals_parse_line_reference_on_synthetic_traffic() -> None:
    synth = pytest.importorskip("collectors.synth")
    for event in synth.generate(seed=5, days=2, decisions_per_day=300):
        raw = orjson.dumps(event)
        assert parse_line(raw) == parse_line_reference(raw)
        assert fused_prepare_line(raw) == _prepared_by_reference(raw)


# ---- the fused, generated preparers equal validation then preparation -------------------------------

def _prepared_by_reference(raw: bytes) -> Any:
    event = parse_line_reference(raw)
    return None if event is None else prepare(event)


@pytest.mark.parametrize("raw", TRICKY)
def test_fused_preparer_equals_the_reference_on_tricky_lines(raw: bytes) -> None:
    assert _outcome_of(fused_prepare_line, raw) == _outcome_of(_prepared_by_reference, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([decision("d", segment={"r": "eu"}, policy_checks=[{"rule": "x", "result": "warn"}]),
                             review("r", "d", claimed_at="2026-11-24T09:06:00Z"), outcome("d", error_cost=1.5),
                             {"type": "change", "id": "c", "changed_at": "2026-11-24T09:00:00Z",
                              "actor": "a", "kind": "policy", "scope": {"queue": "q"}}]),
       changes=st.dictionaries(st.sampled_from(
           ["id", "confidence", "route", "proposed_at", "decided_at", "enqueued_at", "claimed_at", "kind",
            "verdict", "model_cost", "segment", "policy_checks", "agent_correct", "observed_at", "error_cost",
            "audit_probability", "changed_at", "scope", "before", "extra", "type", "decision_id"]),
           _values, max_size=3))
def test_fused_preparer_equals_the_reference_on_mutations(base: dict[str, Any], changes: dict[str, Any]) -> None:
    raw = orjson.dumps({**base, **changes})
    assert _outcome_of(fused_prepare_line, raw) == _outcome_of(_prepared_by_reference, raw)


def test_fused_preparer_source_is_readable() -> None:
    code = fused_source("review")
    assert code.startswith("def prepare_review(obj):")
    assert "v_decided_at < v_enqueued_at" in code  # the cross-field rule is written out


def test_writer_rows_match_the_rows_module() -> None:
    events = [decision("d", segment={"r": "eu"}, extra=[1]), review("r", "d", claimed_at="2026-11-24T09:06:00Z"),
              outcome("d", error_cost=2), {"type": "change", "id": "c", "changed_at": "2026-11-24T09:00:00+02:00",
                                            "actor": "a", "kind": "model", "before": "x", "after": [1]}]
    for event in events:
        valid = validate_event(event)
        _type, _key, _canonical, values, _decision_id = prepare(valid)
        row = dict(zip(_COLUMNS[valid.type], values))
        expected = payload_to_row(valid.type, valid.payload, valid.key, 0, "")
        for column in ("segment", "policy_checks", "extra", "scope", "before", "after"):
            if column in row and row[column] is not None:
                row[column] = orjson.loads(row[column])
        assert {k: v for k, v in row.items() if k not in ("seq", "hash", "conf_bin")} == \
            {k: v for k, v in expected.items() if k not in ("seq", "hash")}


# ---- loading -----------------------------------------------------------------------------------

def test_forward_references_across_batches_are_stored(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", outcome("d1"), review("r1", "d1"), decision("d0"), decision("d2"),
                 review("r2", "d2"), decision("d1"), review("r0", "d0"), outcome("zz"))
    engine = open_store(db_url)
    rejects: list[str] = []
    summary = ingest(engine, [path], batch_size=2, on_reject=lambda r: rejects.append(r.location()))
    assert (summary.stored, summary.duplicates, summary.rejected) == (7, 0, 1)
    assert rejects == [f"{path}:8: unknown decision_id zz"]
    with engine.connect() as conn:
        verdict = conn.execute(text("SELECT s.final_verdict FROM decision_state s JOIN decisions d "
                                    "ON d.seq = s.decision_seq WHERE d.id = 'd1'")).scalar_one()
    assert verdict == "approve"
    verify_ok(engine)
    engine.dispose()


def test_order_of_lines_does_not_matter(tmp_path: Path) -> None:
    synth = pytest.importorskip("collectors.synth")
    lines = [orjson.dumps(e) for e in synth.generate(seed=11, days=2, decisions_per_day=250)]
    shuffled = lines[:]
    random.Random(4).shuffle(shuffled)
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(shuffled) + b"\n")
    stores = []
    for name, batch in (("a", 10_000), ("b", 37)):
        engine = open_store(f"sqlite:///{tmp_path / name}.db")
        summary = ingest(engine, [str(tmp_path / f"{name}.jsonl")], batch_size=batch)
        assert (summary.stored, summary.rejected) == (len(lines), 0)
        verify_ok(engine)
        stores.append(contents(engine))
        engine.dispose()
    assert stores[0] == stores[1]


def test_worker_processes_give_the_same_store_and_rejects(tmp_path: Path) -> None:
    """Lines validated in worker processes land exactly as in-process ones: same chain, same rejects."""
    from collectors.parse_pool import CHUNK_LINES

    synth = pytest.importorskip("collectors.synth")
    lines = [orjson.dumps(e) for e in synth.generate(seed=5, days=3, decisions_per_day=1200)]
    bad = {7: b"{not json", CHUNK_LINES + 3: b'{"type": "decision"}', 2 * CHUNK_LINES: b"x" * 600, 2 * CHUNK_LINES + 500: b""}
    for at, line in sorted(bad.items()):
        lines.insert(at, line)
    lines.insert(9, lines[3])  # a duplicate inside the first chunk
    assert len(lines) > 3 * CHUNK_LINES
    (tmp_path / "e.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    outcomes = []
    for workers in (0, 2):
        engine = open_store(f"sqlite:///{tmp_path}/w{workers}.db")
        rejects: list[str] = []
        summary = ingest(engine, [str(tmp_path / "e.jsonl")], batch_size=1000, max_line_bytes=500,
                         on_reject=lambda r, into=rejects: into.append(r.location()), workers=workers)
        verify_ok(engine)
        outcomes.append((summary.stored, summary.duplicates, summary.rejected, summary.blank, summary.lines,
                         sorted(rejects), contents(engine)))
        engine.dispose()
    assert outcomes[0][:5] == (len(lines) - 5, 1, 3, 1, len(lines))
    rejected_at = sorted(int(r.split(": ", 1)[0].rsplit(":", 1)[1]) for r in outcomes[0][5])
    assert rejected_at == [n for n, line in enumerate(lines, 1) if line in (bad[7], bad[CHUNK_LINES + 3], bad[2 * CHUNK_LINES])]
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("workers", [0, 1])
def test_rejects_found_by_the_writer_name_their_line_across_chunks_batches_and_files(
        tmp_path: Path, workers: int) -> None:
    """The writer's rejects (conflicts, unknown decisions) come back as event numbers; the loader
    must name each one's file, line and bytes although batches straddle chunks and files."""
    from collectors.parse_pool import CHUNK_LINES

    first = [orjson.dumps(decision(f"d{i}")) for i in range(2 * CHUNK_LINES + 600)]
    second = [orjson.dumps(decision(f"e{i}")) for i in range(CHUNK_LINES + 300)]
    bad_first = {CHUNK_LINES - 1: decision("d3", confidence=0.1),  # conflict, earlier in the input
                 CHUNK_LINES + 1: review("orphan-1", "nowhere"),  # unknown decision, waits until the end
                 2 * CHUNK_LINES + 500: decision("d2", agent_id="other")}
    bad_second = {0: decision("d5", confidence=0.2),  # conflicts with a batch of the first file
                  CHUNK_LINES + 200: review("orphan-2", "nowhere-else")}
    for lines, bad in ((first, bad_first), (second, bad_second)):
        for at, event in bad.items():
            lines[at] = orjson.dumps(event)
    paths = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_bytes(b"\n".join(lines) + b"\n")
    engine = open_store(f"sqlite:///{tmp_path}/w.db")
    got: list[tuple[str, bytes | None]] = []
    summary = ingest(engine, [str(p) for p in paths], batch_size=700, workers=workers,
                     on_reject=lambda r: got.append((r.location(), r.raw)))
    engine.dispose()
    assert summary.rejected == 5
    want = sorted((f"{path}:{at + 1}: ", lines[at]) for path, lines, bad in
                  ((paths[0], first, bad_first), (paths[1], second, bad_second)) for at in bad)
    assert sorted((location.split(": ", 1)[0] + ": ", raw) for location, raw in got) == want
    assert sum("unknown decision_id" in location for location, _raw in got) == 2


def test_reingest_counts_duplicates_and_keeps_originals(db_url: str, tmp_path: Path) -> None:
    first = write(tmp_path / "1.jsonl", decision("d1"), review("r1", "d1"), outcome("d1"))
    second = write(tmp_path / "2.jsonl",
                   decision("d1", proposed_at="2026-11-24T10:00:00+01:00"),  # same instant: same content
                   decision("d1", confidence=0.1), review("r1", "d1", verdict="reject"), outcome("d1"),
                   decision("d2"), decision("d2", agent_id="other"))
    engine = open_store(db_url)
    assert ingest(engine, [first]).stored == 3
    rejects: list[str] = []
    summary = ingest(engine, [second], on_reject=lambda r: rejects.append(r.location()))
    assert (summary.stored, summary.duplicates, summary.rejected) == (1, 2, 3)
    assert sorted(rejects) == sorted([
        f"{second}:2: conflict: decision d1 was already stored with other content (original kept)",
        f"{second}:3: conflict: review r1 was already stored with other content (original kept)",
        f"{second}:6: conflict: decision d2 was earlier in the same input with other content (original kept)",
    ])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT confidence FROM decisions WHERE id = 'd1'")).scalar_one() == 0.8
        assert conn.execute(text("SELECT agent_id FROM decisions WHERE id = 'd2'")).scalar_one() == "agent-1"
    engine.dispose()


def test_a_resend_of_the_stored_version_is_a_duplicate_after_a_rejected_conflict(db_url: str, tmp_path: Path) -> None:
    """Each line is compared with the version that is kept (the stored one), never with a line
    that was itself rejected as a conflict, whatever the batch size."""
    original = [decision("d1"), review("r1", "d1"), {"type": "change", "id": "c1",
                "changed_at": "2026-11-24T08:00:00Z", "actor": "me", "kind": "threshold", "reason": "x"}]
    first = write(tmp_path / "1.jsonl", *original)
    second = write(tmp_path / "2.jsonl", decision("d1", confidence=0.1), original[0],
                   review("r1", "d1", verdict="reject"), original[1], {**original[2], "actor": "you"}, original[2])
    engine = open_store(db_url)
    assert ingest(engine, [first]).stored == 3
    for batch_size in (10_000, 2, 1):
        rejects: list[str] = []
        summary = ingest(engine, [second], batch_size=batch_size, on_reject=lambda r, into=rejects: into.append(r.location()))
        assert (summary.stored, summary.duplicates, summary.rejected) == (0, 3, 3), batch_size
        assert sorted(r.split(": ", 1)[0] for r in rejects) == [f"{second}:{n}" for n in (1, 3, 5)]
    engine.dispose()


def test_a_line_kept_back_for_an_unknown_decision_does_not_block_a_valid_version(sqlite_url: str,
                                                                                 tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1"), review("r1", "nowhere"), review("r1", "d1"))
    engine = open_store(sqlite_url)
    rejects: list[str] = []
    summary = ingest(engine, [path], on_reject=lambda r: rejects.append(r.location()))
    assert (summary.stored, summary.duplicates, summary.rejected) == (2, 0, 1)
    assert rejects == [f"{path}:2: unknown decision_id nowhere"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT decision_id FROM reviews WHERE id = 'r1'")).scalar_one() == "d1"
    engine.dispose()


def test_first_of_two_waiting_versions_is_kept(sqlite_url: str, tmp_path: Path) -> None:
    # Both versions of r1 wait for d1; the earlier line must win, as it would in file order.
    path = write(tmp_path / "e.jsonl", review("r1", "d1"), decision("x1"), review("r1", "d1", verdict="edit"),
                 decision("x2"), decision("d1"))
    engine = open_store(sqlite_url)
    rejects: list[str] = []
    summary = ingest(engine, [path], batch_size=2, on_reject=lambda r: rejects.append(r.location()))
    assert (summary.stored, summary.rejected) == (4, 1)
    assert rejects == [(f"{path}:3: conflict: review r1 was earlier in the same input with other content "
                        "(original kept)")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT verdict FROM reviews WHERE id = 'r1'")).scalar_one() == "approve"
    engine.dispose()


def test_timestamps_are_stored_as_utc(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1", proposed_at="2026-11-24T10:30:00.5+01:00"),
                 decision("d2", proposed_at="2026-11-24T09:30:00.500000Z"))
    engine = open_store(db_url)
    ingest(engine, [path])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT proposed_at FROM decisions ORDER BY id")).scalars().all()
    from datetime import datetime
    expected = int(datetime(2026, 11, 24, 9, 30, 0, 500000, tzinfo=UTC).timestamp() * 1_000_000)
    assert stored == [expected, expected]
    engine.dispose()


def test_loader_reports_unreadable_files_and_loads_the_rest(sqlite_url: str, tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", decision("d1"))
    engine = open_store(sqlite_url)
    summary = ingest(engine, [str(tmp_path / "missing.jsonl"), str(tmp_path), good])
    assert summary.stored == 1 and summary.exit_code == 2
    assert summary.errors == [f"cannot read {tmp_path / 'missing.jsonl'}: no such file or directory",
                              f"cannot read {tmp_path}: is a directory"]
    engine.dispose()


def test_loader_checks_its_arguments(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with pytest.raises(ValueError):
        Loader(engine, batch_size=0)
    engine.dispose()


def test_writer_rejects_nul_characters_on_every_engine(db_url: str) -> None:
    engine = open_store(db_url)
    events = [(1, validate_event(decision("d\u0000"))), (2, validate_event(decision("d2", extra={"k": "a\u0000"}))),
              (3, validate_event(review("r1", "d\u0000")))]
    result = write_batch(engine, events)
    assert result.stored == 0
    assert result.rejected == [(1, "id contains a NUL character (\\u0000), which the store cannot hold"),
                               (2, "extra contains a NUL character (\\u0000), which the store cannot hold"),
                               (3, "decision_id contains a NUL character (\\u0000), which the store cannot hold")]
    assert not result.unknown_decision
    engine.dispose()


# ---- the command ------------------------------------------------------------------------------

def test_cli_summary_exit_codes_and_rejects_file(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1"), b'{"type": "decision"}', b"", review("r1", "d1"),
                 b"\xff\xfe not utf-8")
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["ingest", path, "--db", db_url, "--rejects", str(rejects)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("2 stored, 0 duplicate, 2 rejected (5 lines from 1 file, 1 blank")
    assert result.stderr.splitlines() == [f"{path}:2: missing required field id",
                                          f"{path}:5: line is not valid UTF-8"]
    records = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert records[0] == {"file": path, "line": 2, "reason": "missing required field id",
                          "raw": '{"type": "decision"}'}
    assert records[1]["raw_base64"] and records[1]["line"] == 5
    again = runner.invoke(app, ["ingest", path, "--db", db_url])
    assert again.exit_code == 1 and again.stdout.startswith("0 stored, 2 duplicate, 2 rejected")


def test_cli_rejects_can_be_fixed_and_resent(sqlite_url: str, tmp_path: Path) -> None:
    bad = review("r1", "d1", verdict="approved")
    path = write(tmp_path / "e.jsonl", decision("d1"), bad)
    rejects = tmp_path / "rejects.jsonl"
    assert runner.invoke(app, ["ingest", path, "--db", sqlite_url, "--rejects", str(rejects)]).exit_code == 1
    fixed = [orjson.loads(r)["raw"].replace('"approved"', '"approve"') for r in rejects.read_text().splitlines()]
    result = runner.invoke(app, ["ingest", "-", "--db", sqlite_url], input="\n".join(fixed) + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1 stored, 0 duplicate, 0 rejected")


def test_cli_reads_stdin_as_dash(sqlite_url: str) -> None:
    data = jsonl(decision("d1"), b"{oops")
    result = runner.invoke(app, ["ingest", "-", "--db", sqlite_url], input=data)
    assert result.exit_code == 1
    assert result.stderr.startswith("-:2: invalid JSON")
    assert "\x1b" not in result.output  # no progress bar or colour when not on a terminal


def test_cli_progress_bar_on_a_terminal_fits_one_80_column_line(tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here) the bar shows the file, bytes and counts, one line each time."""
    import os
    import pty
    import re
    import subprocess
    import sys

    path = write(tmp_path / "a-rather-long-file-name-for-the-events-of-november.jsonl",
                 *(decision(f"d{i}") for i in range(25_000)))
    second = write(tmp_path / "december.jsonl", *(decision(f"e{i}") for i in range(5_000)), b"{oops")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from collectors.cli import main; main()", "ingest", path, second, "--workers", "0",
         "--db", f"sqlite:///{tmp_path}/t.db"],
        stdout=subprocess.PIPE, stderr=follower, env={**os.environ, "COLUMNS": "80", "TERM": "xterm"})
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    stdout = proc.communicate()[0]
    os.close(leader)
    assert proc.returncode == 1 and stdout.startswith(b"30000 stored, 0 duplicate, 1 rejected")
    lines = [line for line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode()))
             if line.strip()]
    assert any(line.startswith("a-rather-long-file-\u2026") and "25,000 stored, 0 rejected" in line for line in lines), lines
    # each file's bar counts its own lines, not the load's running totals
    assert any(line.startswith("december.jsonl") and "5,000 stored, 1 rejected" in line for line in lines), lines
    assert not any("30,000 stored" in line for line in lines), lines
    assert any(line.startswith(f"{second}:5001: invalid JSON: ") for line in lines), lines  # whole, to copy
    assert max(len(line) for line in lines if ":5001:" not in line) <= 80


def test_cli_db_from_environment_and_usage_errors(sqlite_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1"))
    result = runner.invoke(app, ["ingest", path], env={"HITL_TOWER_DB_URL": sqlite_url})
    assert result.exit_code == 0 and result.stdout.startswith("1 stored")
    assert runner.invoke(app, ["ingest", "--db", sqlite_url]).exit_code == 2
    assert runner.invoke(app, ["ingest", path, "--db", sqlite_url, "--batch-size", "0"]).exit_code == 2
    bad_rejects = runner.invoke(app, ["ingest", path, "--db", sqlite_url, "--rejects", str(tmp_path / "no" / "r")])
    assert bad_rejects.exit_code == 2 and "cannot write rejects file" in bad_rejects.stderr



def test_cli_refuses_rejects_file_that_is_an_input(sqlite_url: str, tmp_path: Path) -> None:
    """The fix-and-resend loop `ingest rejects.jsonl --rejects rejects.jsonl` used to empty the file
    before reading it: "0 stored ... (0 lines", exit 0, the rejected lines gone."""
    path = write(tmp_path / "rejects.jsonl", decision("d1"), b'{"type": "decision"}')
    before = Path(path).read_bytes()
    for rejects in (path, str(tmp_path / "." / "rejects.jsonl")):
        result = runner.invoke(app, ["ingest", path, "--db", sqlite_url, "--rejects", rejects])
        assert result.exit_code == 2, result.output
        assert "is also an input file" in result.stderr
        assert Path(path).read_bytes() == before


def test_a_run_that_cannot_reach_the_store_keeps_the_last_rejects_file(tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1"))
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_bytes(b'{"file": "e.jsonl", "line": 7, "reason": "kept from the last run"}\n')
    result = runner.invoke(app, ["ingest", path, "--db", f"sqlite:///{tmp_path / 'no' / 'x.db'}",
                                 "--rejects", str(rejects)])
    assert result.exit_code == 2 and "folder" in result.stderr
    assert b"kept from the last run" in rejects.read_bytes()


def test_the_summary_counts_one_line_in_the_singular(sqlite_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", write(tmp_path / "e.jsonl", decision("d1")), "--db", sqlite_url])
    assert result.stdout.startswith("1 stored, 0 duplicate, 0 rejected (1 line from 1 file, 0 blank")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:",
                                 "sqlite:///file::memory:?uri=true", "sqlite:///x.db?mode=memory&uri=true"])
def test_cli_refuses_an_in_memory_store_that_would_keep_nothing(url: str, tmp_path: Path) -> None:
    """`sqlite:///$UNSET` is `sqlite:///`: a load there said "1 stored", exit 0, and kept nothing."""
    path = write(tmp_path / "e.jsonl", decision("d1"))
    for argv in (["ingest", path, "--db", url], ["report", "--db", url, "--start", "2026-11-24T00:00:00Z",
                                                 "--end", "2026-11-25T00:00:00Z"], ["verify", "--db", url]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert result.stderr.startswith(f"error: {url} is an in-memory SQLite store, which keeps nothing"), result.stderr
        assert "Traceback" not in result.output


def test_cli_max_line_bytes(sqlite_url: str, tmp_path: Path) -> None:
    long_line = orjson.dumps(decision("d2", note="x" * 500))
    path = write(tmp_path / "e.jsonl", decision("d1"), long_line)
    result = runner.invoke(app, ["ingest", path, "--db", sqlite_url, "--max-line-bytes", "400"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"{path}:2: line is {len(long_line)} bytes, longer than the limit of "
                                     "400 bytes (--max-line-bytes)")


def test_cli_max_line_bytes_does_not_count_the_cr_of_a_crlf_end(db_url: str, tmp_path: Path) -> None:
    line = orjson.dumps(decision("d2", note="x" * 300))
    path = tmp_path / "crlf.jsonl"
    longer = line[:-1] + b', "n": 1}'
    path.write_bytes(orjson.dumps(decision("d1")) + b"\r\n" + line + b"\r\n" + longer + b"\r\n")
    limit = str(len(line))
    result = runner.invoke(app, ["ingest", str(path), "--db", db_url, "--max-line-bytes", limit])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (f"{path}:3: line is {len(longer)} bytes, longer than the limit of "
                                     f"{limit} bytes (--max-line-bytes)")
    assert result.stdout.startswith("2 stored, 0 duplicate, 1 rejected")


def test_equal_payloads_with_other_bytes_are_duplicates_not_conflicts(sqlite_url: str, tmp_path: Path) -> None:
    """1 and 1.0 in an extra field: other canonical JSON, equal content; in the batch and against the store."""
    path = write(tmp_path / "e.jsonl", decision("d1", tag={"n": 1}), decision("d1", tag={"n": 1.0}))
    engine = open_store(sqlite_url)
    summary = ingest(engine, [path])
    assert (summary.stored, summary.duplicates, summary.rejected) == (1, 1, 0)
    again = ingest(engine, [write(tmp_path / "f.jsonl", decision("d1", tag={"n": 1.0}))])
    assert (again.stored, again.duplicates, again.rejected) == (0, 1, 0)
    other = ingest(engine, [write(tmp_path / "g.jsonl", decision("d1", tag={"n": 2}))])
    assert (other.stored, other.duplicates, other.rejected) == (0, 0, 1)
    engine.dispose()


@pytest.mark.parametrize(("first", "second"), [(True, 1), (False, 0), ({"n": [True]}, {"n": [1.0]}),
                                               (0, False), ([1, False], [1.0, 0.0])])
def test_a_boolean_is_not_the_same_content_as_a_number(db_url: str, tmp_path: Path, first: Any,
                                                       second: Any) -> None:
    """true and 1 (false and 0) are other JSON values, though Python says True == 1: a conflict, in the
    batch and against the store, not a duplicate. 1 and 1.0 stay the same content (a number by value)."""
    engine = open_store(db_url)
    rejects: list[str] = []
    path = write(tmp_path / "e.jsonl", decision("d1", tag=first), decision("d1", tag=second))
    summary = ingest(engine, [path], on_reject=lambda r: rejects.append(r.location()))
    assert (summary.stored, summary.duplicates, summary.rejected) == (1, 0, 1)
    assert rejects == [(f"{path}:2: conflict: decision d1 was earlier in the same input with other content "
                        "(original kept)")]
    again = ingest(engine, [write(tmp_path / "f.jsonl", decision("d1", tag=second))])
    assert (again.stored, again.duplicates, again.rejected) == (0, 0, 1)
    same = ingest(engine, [write(tmp_path / "g.jsonl", decision("d1", tag=first))])
    assert (same.stored, same.duplicates, same.rejected) == (0, 1, 0)
    engine.dispose()


def test_same_content_is_equality_of_json_values() -> None:
    from collectors.validate import same_content

    assert same_content({"a": [1, 2.5, None, "x", {"b": True}]}, {"a": [1.0, 2.5, None, "x", {"b": True}]})
    assert same_content(-0.0, 0) and same_content(False, False) and same_content([], [])
    assert not same_content(True, 1) and not same_content(1, True) and not same_content(0.0, False)
    assert not same_content({"a": [True]}, {"a": [1]}) and not same_content({"a": 1}, {"a": 1, "b": 2})
    assert not same_content([1, 2], [1]) and not same_content("1", 1) and not same_content(None, False)


def test_outcomes_that_differ_only_in_the_form_of_a_number_are_one_outcome(db_url: str, tmp_path: Path) -> None:
    """An outcome's key digests its numbers in one form: 1 and 1.0 (0 and -0.0) in an extra field are the
    same content (2b), so the second is a duplicate, in the input and against the store. true is not 1."""
    engine = open_store(db_url)
    path = write(tmp_path / "e.jsonl", decision("d1"), outcome("d1", score=1, tags=[0, {"w": 2}]),
                 outcome("d1", score=1.0, tags=[-0.0, {"w": 2.0}]))
    summary = ingest(engine, [path])
    assert (summary.stored, summary.duplicates, summary.rejected) == (2, 1, 0)
    again = ingest(engine, [write(tmp_path / "f.jsonl", outcome("d1", score=1.0, tags=[0.0, {"w": 2}]),
                                  outcome("d1", score=True, tags=[0, {"w": 2}]))])
    assert (again.stored, again.duplicates, again.rejected) == (1, 1, 0)
    assert counts(engine)["outcomes"] == 2
    verify_ok(engine)
    engine.dispose()


def test_an_extra_field_given_as_null_is_kept_and_is_content(db_url: str, tmp_path: Path) -> None:
    """Null means absent for the contract's optional fields only (2b); an extra is kept, never dropped (1)."""
    engine = open_store(db_url)
    first = ingest(engine, [write(tmp_path / "a.jsonl", decision("d1", queue=None, note=None))])
    assert (first.stored, first.rejected) == (1, 0)
    with engine.connect() as conn:
        queue, extra = conn.execute(text("SELECT queue, extra FROM decisions WHERE id = 'd1'")).one()
    assert queue is None and (extra if isinstance(extra, dict) else orjson.loads(extra)) == {"note": None}
    same = ingest(engine, [write(tmp_path / "b.jsonl", decision("d1", note=None))])  # queue: null = absent
    assert (same.stored, same.duplicates, same.rejected) == (0, 1, 0)
    other = ingest(engine, [write(tmp_path / "c.jsonl", decision("d1"))])  # without the extra: other content
    assert (other.stored, other.duplicates, other.rejected) == (0, 0, 1)
    engine.dispose()


# ---- gzip input -------------------------------------------------------------------------------

def _gzip_events(count: int) -> bytes:
    """Decisions with a review each, then a bad line and a blank one: a few gzip blocks' worth."""
    events: list[dict[str, Any] | bytes] = []
    for i in range(count):
        events += [decision(f"d{i}", reason=f"r{i}" * 20), review(f"r{i}", f"d{i}")]
    return jsonl(*events, b'{"type": "decision"}', b"")


def test_a_gzip_file_loads_as_its_decompressed_lines(db_url: str, tmp_path: Path) -> None:
    import gzip

    data = _gzip_events(3000)
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(data)
    packed = tmp_path / "events.jsonl.gz"
    half = data.index(b"\n", len(data) // 2) + 1  # two gzip members, as `cat a.gz b.gz` makes
    packed.write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["ingest", str(packed), "--db", db_url, "--rejects", str(rejects)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("6000 stored, 0 duplicate, 1 rejected (6002 lines from 1 file, 1 blank")
    assert result.stderr.splitlines() == [f"{packed}:6001: missing required field id"]
    assert orjson.loads(rejects.read_bytes())["raw"] == '{"type": "decision"}'  # decompressed, to re-send
    again = runner.invoke(app, ["ingest", str(plain), "--db", db_url])
    assert again.stdout.startswith("0 stored, 6000 duplicate, 1 rejected")  # the same events, byte for byte
    verify_ok(open_store(db_url))


class _Bytes:
    """A progress that keeps the bytes it was told of."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.seen: list[int] = []

    def start_file(self, name: str, total_bytes: int | None) -> None:
        self.total = total_bytes

    def advance(self, bytes_read: int, summary: Any) -> None:
        self.seen.append(bytes_read)

    def note(self, message: str) -> None:
        pass


def test_progress_on_a_gzip_file_counts_compressed_bytes(sqlite_url: str, tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(_gzip_events(3000)))
    progress = _Bytes()
    summary = ingest(open_store(sqlite_url), [str(packed)], batch_size=1000, progress=progress)
    assert summary.stored == 6000
    assert progress.total == packed.stat().st_size
    assert progress.seen[-1] == packed.stat().st_size  # ends at the file's size, not the decompressed one
    assert progress.seen == sorted(progress.seen) and len(set(progress.seen)) > 1  # it moved along the way


def test_a_truncated_gzip_file_keeps_its_whole_lines_and_says_where_it_ends(db_url: str, tmp_path: Path) -> None:
    import gzip

    data = _gzip_events(3000)
    whole = gzip.compress(data)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[:len(whole) // 2])
    result = runner.invoke(app, ["ingest", str(cut), "--db", db_url])
    assert result.exit_code == 2, result.output
    stored = int(result.stdout.split()[0])
    assert 0 < stored < 6000
    lines = int(result.stdout.split("(")[1].split()[0])
    assert result.stderr.strip() == (f"error: cannot read {cut} after line {lines}: the gzip data ends early "
                                     "(a truncated file?)")
    engine = open_store(db_url)
    assert counts(engine)["decisions"] + counts(engine)["reviews"] == stored  # no part line stored
    cut.write_bytes(whole)  # the whole file, re-sent: the load completes
    again = runner.invoke(app, ["ingest", str(cut), "--db", db_url])
    assert again.exit_code == 1 and again.stdout.startswith(f"{6000 - stored} stored, {stored} duplicate, 1 rejected")
    verify_ok(engine)


def test_gzip_on_stdin(sqlite_url: str, tmp_path: Path) -> None:
    """A real pipe (the CLI runner's stdin cannot peek): `zcat`-free `cat events.jsonl.gz | hitl-tower ingest -`."""
    import gzip
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from collectors.cli import main; main()", "ingest", "-", "--db", sqlite_url],
        input=gzip.compress(jsonl(decision("d1"), review("r1", "d1"))), capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"2 stored, 0 duplicate, 0 rejected (2 lines from 1 file")


def test_ingest_prints_the_chain_head_that_verify_expects(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", decision("d1"), review("r1", "d1"))
    result = runner.invoke(app, ["ingest", path, "--db", db_url])
    head_line = result.stdout.splitlines()[1]
    assert head_line.startswith("chain head: ") and head_line.split()[4:6] == ["seq", "2"], head_line
    head = head_line.split()[2]
    checked = runner.invoke(app, ["verify", "--db", db_url, "--expect-head", head])
    assert checked.exit_code == 0 and checked.stdout.strip().endswith(f"chain head {head}"), checked.output
    more = runner.invoke(app, ["ingest", write(tmp_path / "more.jsonl", decision("d2")), "--db", db_url])
    assert more.stdout.splitlines()[1].split()[2:6] != [head, "at", "seq", "2"]  # the head moved on
    assert more.stdout.splitlines()[1].split()[4:6] == ["seq", "3"]
    assert runner.invoke(app, ["verify", "--db", db_url, "--expect-head", head]).exit_code == 0  # still in the chain


@pytest.mark.parametrize(("content", "hint"), [
    (b"type,id,proposed_at\ndecision,d1,2026-11-24T09:00:00Z\n", "this looks like CSV"),
    (b'{\n  "type": "decision",\n  "id": "d1"\n}\n', ("this is pretty-printed JSON, not JSON Lines (one object "
                                                      "per line): jq -c . {path} | hitl-tower ingest -")),
    (b'[{"type": "decision", "id": "d1"}]\n', ("this is a JSON array, not JSON Lines (one object per line): "
                                               "jq -c '.[]' {path} | hitl-tower ingest -")),
])
def test_a_file_in_another_format_gets_one_hint_after_its_first_reject(sqlite_url: str, tmp_path: Path,
                                                                       content: bytes, hint: str) -> None:
    path = tmp_path / "events.data"
    path.write_bytes(content)
    result = runner.invoke(app, ["ingest", str(path), "--db", sqlite_url])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:1: ") and lines[1].startswith(f"{path}: note: {hint.format(path=path)}")
    assert sum(": note: " in line for line in lines) == 1


def test_no_hint_for_a_json_lines_file_with_a_bad_first_line(sqlite_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", b'{"type": "decision", "id": "d0"}', decision("d1"))
    result = runner.invoke(app, ["ingest", path, "--db", sqlite_url])
    assert result.exit_code == 1 and "note:" not in result.stderr
