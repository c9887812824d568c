"""Bad input: each kind gives one clear `FILE:LINE: reason` (no traceback) and the valid lines around it are stored.

Every bad line sits in the middle of a small file: a decision (line 1), a blank
line (2), the bad line (3), a review (4) and an outcome (5) of that decision.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from collectors.cli import app
from collectors.store.db import open_store

runner = CliRunner()

DECISION = {"type": "decision", "id": "d1", "proposed_at": "2026-11-24T09:00:00Z", "agent_id": "agent-1",
            "model_version": "m1", "risk_class": "low", "action_type": "refund", "confidence": 0.8,
            "route": "review"}
REVIEW = {"type": "review", "id": "r1", "decision_id": "d1", "reviewer_id": "alice", "kind": "primary",
          "enqueued_at": "2026-11-24T09:05:00Z", "decided_at": "2026-11-24T09:10:00Z", "verdict": "approve"}
OUTCOME = {"type": "outcome", "decision_id": "d1", "observed_at": "2026-11-25T09:00:00Z",
           "agent_correct": True, "final_correct": True}
TEN_MB_LINE = b'{"type": "decision", "note": "' + b"x" * (10 * 1024 * 1024) + b'"}'


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def decision(**changes: Any) -> bytes:
    return dumps({"id": "d2", **{k: v for k, v in DECISION.items() if k != "id"}, **changes})


def without(event: dict[str, Any], field: str) -> bytes:
    return dumps({k: v for k, v in event.items() if k != field})


def raw_decision(confidence: str) -> bytes:
    return decision(confidence=0.5).replace(b'"confidence":0.5', b'"confidence":' + confidence.encode())


# kind -> (bad line, the exact reason, or a regex of it as re.Pattern)
KINDS: dict[str, tuple[bytes, str | re.Pattern[str]]] = {
    "truncated JSON": (b'{"type": "decision", "id": ', re.compile(r"invalid JSON: .+")),
    "not JSON at all": (b"hello world", re.compile(r"invalid JSON: .+")),
    "JSON array": (b"[1, 2, 3]", "an event must be a JSON object, got array"),
    "JSON string": (b'"decision"', "an event must be a JSON object, got string"),
    "missing type": (without(DECISION, "type"),
                     "missing required field type (one of decision, review, outcome, change)"),
    "unknown type": (decision(type="approval"),
                     "type must be one of decision, review, outcome, change, got 'approval'"),
    "missing field": (without(REVIEW, "reviewer_id"), "missing required field reviewer_id"),
    "null required field": (decision(agent_id=None), "missing required field agent_id"),
    "number as string": (decision(confidence="0.9"), "confidence must be a number, got string"),
    "boolean as number": (decision(confidence=True), "confidence must be a number, got boolean"),
    "string as boolean": (dumps({**OUTCOME, "agent_correct": "yes"}),
                          "agent_correct must be true or false, got string"),
    "id as number": (decision(id=42), "id must be a string, got number"),
    "NaN": (raw_decision("NaN"), "invalid JSON: NaN is not a JSON number (use a finite number)"),
    "Infinity": (raw_decision("-Infinity"), "invalid JSON: Infinity is not a JSON number (use a finite number)"),
    "number overflowing to infinity": (raw_decision("1e999"), re.compile(r"invalid JSON: number is infinity.*")),
    "confidence above 1": (decision(confidence=1.5), "confidence must be <= 1, got 1.5"),
    "confidence just above 1": (decision(confidence=1.0000001), "confidence must be <= 1, got 1.0000001"),
    "zone offset minutes past 59": (decision(proposed_at="2026-11-24T09:30:00+00:60"),
                                    ("timestamp '2026-11-24T09:30:00+00:60' has a zone offset whose minutes "
                                     "are not 00-59")),
    "confidence below 0": (decision(confidence=-0.1), "confidence must be >= 0, got -0.1"),
    "negative cost": (decision(model_cost=-0.5), "model_cost must be >= 0, got -0.5"),
    "negative review cost": (dumps({**REVIEW, "id": "r2", "cost": -3}), "cost must be >= 0, got -3"),
    "audit probability 0": (dumps({**REVIEW, "id": "r2", "audit_probability": 0}),
                            "audit_probability must be > 0, got 0"),
    "timestamp without zone": (decision(proposed_at="2026-11-24T09:00:00"),
                               "timestamp '2026-11-24T09:00:00' has no zone (add Z or an offset like +01:00)"),
    "timestamp not RFC 3339": (decision(proposed_at="yesterday"), "timestamp 'yesterday' is not RFC 3339"),
    "timestamp as number": (decision(proposed_at=1764000000),
                            "proposed_at must be an RFC 3339 string, got number"),
    "impossible date": (decision(proposed_at="2026-02-30T00:00:00Z"),
                        "timestamp '2026-02-30T00:00:00Z' is not a valid date/time: day is out of range for month"),
    "timestamp out of range": (decision(proposed_at="0001-01-01T00:00:00+01:00"),
                               "timestamp '0001-01-01T00:00:00+01:00' is out of range (UTC years 0001 to 9999)"),
    "decided before enqueued": (dumps({**REVIEW, "id": "r2", "decided_at": "2026-11-24T10:00:00+02:00"}),
                                "decided_at 2026-11-24T08:00:00Z is before enqueued_at 2026-11-24T09:05:00Z"),
    "unknown route": (decision(route="manual"), "route 'manual' is not one of auto, review, shadow"),
    "unknown verdict": (dumps({**REVIEW, "id": "r2", "verdict": "ok"}),
                        "verdict 'ok' is not one of approve, edit, reject, escalate"),
    "unknown review kind": (dumps({**REVIEW, "id": "r2", "kind": "peer"}),
                            "kind 'peer' is not one of primary, escalation, audit"),
    "segment not strings": (decision(segment={"tier": 3}), "segment must be an object of string to string"),
    "bad policy check": (decision(policy_checks=[{"rule": "pii", "result": "maybe"}]),
                         "policy_checks[0].result must be one of pass, fail, warn"),
    "unknown decision_id": (dumps({**REVIEW, "id": "r2", "decision_id": "d404"}), "unknown decision_id d404"),
    "outcome of unknown decision": (dumps({**OUTCOME, "decision_id": "d405"}), "unknown decision_id d405"),
    "conflicting duplicate": (dumps({**DECISION, "confidence": 0.1}),
                              ("conflict: decision d1 was earlier in the same input with other content "
                               "(original kept)")),
    "10 MB line": (TEN_MB_LINE, (f"line is {len(TEN_MB_LINE)} bytes, longer than the limit of 1048576 bytes "
                                 "(--max-line-bytes)")),
    "non-UTF-8 bytes": (b'{"type": "decision", "id": "caf\xe9"}', "line is not valid UTF-8"),
    "lone surrogate escape": (decision(agent_id="x").replace(b'"x"', b'"\\ud800"'),
                              re.compile(r"invalid JSON: .*surrogate.*")),
    "NUL character": (decision(agent_id="a\u0000b"),
                      "agent_id contains a NUL character (\\u0000), which the store cannot hold"),
    "id too long": (decision(id="d" * 3000), "id is 3000 characters long, longer than the limit of 256"),
    "review id too long": (dumps({**REVIEW, "id": "r" * 3000}),
                           "id is 3000 characters long, longer than the limit of 256"),
    "decision_id too long": (dumps({**REVIEW, "id": "r2", "decision_id": "d" * 257}),
                             "decision_id is 257 characters long, longer than the limit of 256"),
    "slice field too long": (decision(model_version="m" * 3000),
                             "model_version is 3000 characters long, longer than the limit of 256"),
    "NUL in a segment value": (decision(segment={"k": "a\u0000b"}),
                               "segment contains a NUL character (\\u0000), which the store cannot hold"),
    "NUL in a segment key": (decision(segment={"k\u0000": "v"}),
                             "segment contains a NUL character (\\u0000), which the store cannot hold"),
    "NUL in a policy check": (decision(policy_checks=[{"rule": "pii\u0000", "result": "pass"}]),
                              "policy_checks contains a NUL character (\\u0000), which the store cannot hold"),
    "NUL in a nested extra": (decision(note={"deep": ["x", {"y\u0000": 1}]}),
                              "note contains a NUL character (\\u0000), which the store cannot hold"),
    "NUL in a field name": (decision(**{"no\u0000te": 1}),
                            "a field name contains a NUL character (\\u0000), which the store cannot hold"),
    "model cost too large": (decision(model_cost=1e308), "model_cost must be <= 1e+12, got 1e+308"),
    "review cost too large": (dumps({**REVIEW, "id": "r2", "cost": 1e13}), "cost must be <= 1e+12, got 1e+13"),
    "handle seconds too large": (dumps({**REVIEW, "id": "r2", "handle_seconds": 10**15}),
                                 "handle_seconds must be <= 1e+12, got 1e+15"),
    "error cost too large": (dumps({**OUTCOME, "error_cost": 1e300}), "error_cost must be <= 1e+12, got 1e+300"),
    "agent error cost just too large": (dumps({**OUTCOME, "agent_error_cost": 1000000000000.0001}),
                                        "agent_error_cost must be <= 1e+12, got 1000000000000.0001"),
    "deeply nested JSON": (b'{"type": "decision", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}",
                           re.compile(r"invalid JSON: .+")),
}
# Kinds that also run on PostgreSQL (they exercise the store, or differ by engine if anything does).
CORE = ["truncated JSON", "missing field", "number as string", "NaN", "confidence above 1", "negative cost",
        "timestamp without zone", "decided before enqueued", "unknown route", "unknown decision_id",
        "conflicting duplicate", "10 MB line", "non-UTF-8 bytes", "NUL character", "timestamp out of range",
        "id too long", "review id too long", "decision_id too long", "slice field too long",
        "NUL in a segment value", "NUL in a segment key", "NUL in a nested extra", "model cost too large",
        "error cost too large"]


def sandwich(path: Path, bad: bytes, newline: bytes = b"\n") -> str:
    lines = [dumps(DECISION), b"", bad, dumps(REVIEW), dumps(OUTCOME)]
    path.write_bytes(newline.join(lines) + newline)
    return str(path)


def ingest(*args: str, **kwargs: Any) -> Result:
    result = runner.invoke(app, ["ingest", *args], **kwargs)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def stored(url: str) -> tuple[int, int, int, int]:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # type: ignore[return-value]
                         for t in ("decisions", "reviews", "outcomes", "decision_state"))
    finally:
        engine.dispose()


def check_kind(kind: str, url: str, tmp_path: Path) -> None:
    bad, reason = KINDS[kind]
    path = sandwich(tmp_path / "events.jsonl", bad)
    rejects = tmp_path / "rejects.jsonl"
    result = ingest(path, "--db", url, "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    prefix = f"{path}:3: "
    assert line.startswith(prefix), line
    if isinstance(reason, str):
        assert line == prefix + reason
    else:
        assert reason.fullmatch(line[len(prefix):]), line
        assert "line 1 column" not in line  # positions are within the line, not of a one-line document
    assert result.stdout.startswith("3 stored, 0 duplicate, 1 rejected (5 lines from 1 file, 1 blank, ")
    assert stored(url) == (1, 1, 1, 1)
    [record] = [orjson.loads(r) for r in rejects.read_bytes().splitlines()]
    assert (record["file"], record["line"], record["reason"]) == (path, 3, line[len(prefix):])
    if len(bad) > 1 << 20:
        assert record["raw"] is None
    elif "raw_base64" not in record:
        assert record["raw"].encode() == bad


def test_there_are_at_least_20_kinds() -> None:
    assert len(KINDS) >= 20 and set(CORE) <= set(KINDS)


@pytest.mark.parametrize("kind", sorted(set(KINDS) - set(CORE)))
def test_bad_line_on_sqlite(kind: str, sqlite_url: str, tmp_path: Path) -> None:
    check_kind(kind, sqlite_url, tmp_path)


@pytest.mark.parametrize("kind", CORE)
def test_bad_line_on_every_engine(kind: str, db_url: str, tmp_path: Path) -> None:
    check_kind(kind, db_url, tmp_path)


# ---- whole files and arguments ----------------------------------------------------------------

def test_empty_file_is_fine(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    result = ingest(str(path), "--db", sqlite_url)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("0 stored, 0 duplicate, 0 rejected (0 lines from 1 file, 0 blank")


def test_only_blank_lines(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n  \n\t\r\n\n")
    result = ingest(str(path), "--db", sqlite_url)
    assert result.exit_code == 0 and result.stdout.startswith("0 stored, 0 duplicate, 0 rejected (4 lines")


def test_bom_at_file_start_is_fine(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + dumps(DECISION) + b"\n" + dumps(REVIEW) + b"\n")
    result = ingest(str(path), "--db", db_url)
    assert result.exit_code == 0, result.output
    assert stored(db_url) == (1, 1, 0, 1)


def test_crlf_line_ends_are_fine(db_url: str, tmp_path: Path) -> None:
    path = sandwich(tmp_path / "crlf.jsonl", decision(route="manual"), newline=b"\r\n")
    rejects = tmp_path / "rejects.jsonl"
    result = ingest(path, "--db", db_url, "--rejects", str(rejects))
    assert result.exit_code == 1
    assert result.stderr == f"{path}:3: route 'manual' is not one of auto, review, shadow\n"
    assert stored(db_url) == (1, 1, 1, 1)
    assert orjson.loads(rejects.read_bytes())["raw"].encode() == decision(route="manual")


def test_last_line_without_newline(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(dumps(DECISION) + b"\n" + dumps(REVIEW))
    assert ingest(str(path), "--db", sqlite_url).exit_code == 0
    assert stored(sqlite_url) == (1, 1, 0, 1)


def test_directory_instead_of_file(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    good = sandwich(tmp_path / "good.jsonl", dumps({**REVIEW, "id": "r9"}))
    result = ingest(str(folder), good, "--db", sqlite_url)
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot read {folder}: is a directory\n"
    assert result.stdout.startswith("4 stored, 0 duplicate, 0 rejected (5 lines from 1 file")
    assert stored(sqlite_url) == (1, 2, 1, 1)


def test_missing_file_and_other_files_still_loaded(sqlite_url: str, tmp_path: Path) -> None:
    good = sandwich(tmp_path / "good.jsonl", b"{")
    missing = tmp_path / "nope.jsonl"
    result = ingest(good, str(missing), "--db", sqlite_url)
    assert result.exit_code == 2  # an unreadable file outranks rejected lines
    assert result.stderr.splitlines() == [f"{good}:3: invalid JSON: unexpected end of data: column 2 (char 1)",
                                          f"error: cannot read {missing}: no such file or directory"]
    assert stored(sqlite_url) == (1, 1, 1, 1)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    path.write_bytes(dumps(DECISION) + b"\n")
    path.chmod(0)
    result = ingest(str(path), "--db", sqlite_url)
    assert result.exit_code == 2 and result.stderr == f"error: cannot read {path}: permission denied\n"


def test_unreachable_database(tmp_path: Path) -> None:
    path = sandwich(tmp_path / "e.jsonl", b"")
    result = ingest(path, "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot reach database postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert len(result.stderr.splitlines()) == 1


def test_not_a_database_url(tmp_path: Path) -> None:
    path = sandwich(tmp_path / "e.jsonl", b"")
    result = ingest(path, "--db", "not a url")
    assert result.exit_code == 2 and result.stderr.startswith("error: not a database URL: 'not a url'")


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite://x.db", "error: not a database URL: 'sqlite://x.db': Invalid SQLite URL"),  # was a traceback, exit 1
    ("postgres://u@127.0.0.1/db", "write postgresql://"),
])
def test_common_url_mistakes_get_a_one_line_error(tmp_path: Path, url: str, message: str) -> None:
    result = ingest(sandwich(tmp_path / "e.jsonl", b""), "--db", url)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_an_empty_database_url_is_an_error_not_the_default_store(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`--db "$UNSET_VARIABLE"` must not quietly load into ./hitl-tower.db (the config's default)."""
    monkeypatch.chdir(tmp_path)
    path = sandwich(tmp_path / "e.jsonl", b"")
    result = ingest(path, "--db", "")
    assert result.exit_code == 2 and result.stderr.startswith("error: --db is empty")
    assert not (tmp_path / "hitl-tower.db").exists()
    served = runner.invoke(app, ["serve-metrics", "--db", " ", "--once"])
    assert served.exit_code == 2 and served.stderr.startswith("error: --db is empty")
    monkeypatch.setenv("HITL_TOWER_DB_URL", "")  # named as such, not as the config's db_url
    result = ingest(path)
    assert result.exit_code == 2 and result.stderr.startswith("error: HITL_TOWER_DB_URL is empty")


def test_a_port_out_of_range_is_a_usage_error() -> None:
    result = runner.invoke(app, ["serve-metrics", "--db", "sqlite:///unused.db", "--port", "99999"])
    assert result.exit_code == 2 and "--port" in result.stderr and "Traceback" not in result.output


def test_sqlite_database_path_is_a_directory(tmp_path: Path) -> None:
    path = sandwich(tmp_path / "e.jsonl", b"")
    result = ingest(path, "--db", f"sqlite:///{tmp_path}")
    assert result.exit_code == 2 and "is a directory, not a database file" in result.stderr


def test_bad_line_on_stdin(sqlite_url: str) -> None:
    data = b"\n".join([dumps(DECISION), b"", decision(confidence=2), dumps(REVIEW)]) + b"\n"
    result = ingest("-", "--db", sqlite_url, input=data)
    assert result.exit_code == 1
    assert result.stderr == "-:3: confidence must be <= 1, got 2\n"
    assert stored(sqlite_url) == (1, 1, 0, 1)


def test_many_bad_lines_in_one_file(sqlite_url: str, tmp_path: Path) -> None:
    """Every kind at once, between valid lines: each reported with its own line number."""
    lines: list[bytes] = [dumps(DECISION)]
    expected: list[tuple[int, Any]] = []
    for i, (bad, reason) in enumerate(v for k, v in KINDS.items() if k != "conflicting duplicate"):
        lines.append(bad)
        expected.append((len(lines), reason))
        lines.append(dumps({**REVIEW, "id": f"ok-{i}"}))
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = ingest(str(path), "--db", sqlite_url)
    assert result.exit_code == 1
    reported = {}
    for line in result.stderr.splitlines():
        where, _, reason = line.partition(": ")
        reported[int(where.rsplit(":", 1)[1])] = reason
    assert sorted(reported) == [n for n, _ in expected]
    for n, reason in expected:
        assert reported[n] == reason if isinstance(reason, str) else reason.fullmatch(reported[n])
    assert stored(sqlite_url) == (1, len(expected) + 0, 0, 1)


def test_a_driver_error_while_writing_is_a_one_line_store_error(db_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """COPY (PostgreSQL) and executemany (SQLite) raise the driver's own errors, which SQLAlchemy does not
    wrap: they end the load like any store failure (exit 2, one line), not with a traceback."""
    import collectors.ingest as ingest_module

    engine = open_store(db_url)
    driver_error = engine.dialect.loaded_dbapi.Error
    engine.dispose()

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise driver_error("index row size 3016 exceeds btree version 4 maximum 2704 for index \"x\"")

    monkeypatch.setattr(ingest_module, "write_prepared", failing)
    path = sandwich(tmp_path / "e.jsonl", dumps({**REVIEW, "id": "r2"}))
    result = ingest(path, "--db", db_url, "--workers", "0")
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: the store failed while writing a batch from {path} line 1 (earlier "
                             "batches are committed): index row size 3016 exceeds btree version 4 maximum "
                             "2704 for index \"x\"\n")
