"""Payload -> row -> payload is lossless through the real writer, on SQLite and PostgreSQL.

The hash chain is recomputed from stored rows (`hitl-tower verify`), so every
bit of a payload must come back: extras, unicode, nested JSON, timestamps with
offsets and fractional seconds, the 0 and 1 edges of confidence. The check is
on canonical JSON bytes, which is stricter than `==` (it tells 1 from 1.0 and
0.0 from -0.0).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, select, text

from collectors.contract import FIELDS
from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import open_store
from collectors.store.models import EVENT_TABLES
from collectors.store.rows import payload_to_row, row_to_payload
from collectors.store.verify import verify_chain
from collectors.store.writer import write_batch
from collectors.validate import ValidEvent, canonical_json, parse_timestamp, validate_event

_KEY = {"decision": "id", "review": "id", "outcome": "key", "change": "id"}

# ---- strategies -------------------------------------------------------------------------------

# No string holds NUL, in contract fields or anywhere in extras (the writer rejects it: PostgreSQL
# can neither store it in text nor extract it from JSON).
_chars = st.characters(blacklist_categories=("Cs",))
_text = st.text(_chars.filter(lambda c: c != "\x00"), max_size=10)
_scalar = (st.booleans() | st.integers(-2**63, 2**64 - 1) | _text
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 1e308, 5e-324, 0.1]))
_json = st.recursive(st.none() | _scalar,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=10)


@st.composite
def _timestamp(draw: st.DrawFn) -> str:
    day = draw(st.dates(dt.date(1, 1, 2), dt.date(9999, 12, 30)))  # any offset stays in range
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    frac = draw(st.sampled_from(["", ".5", ".000001", ".123456789", ".999999"]) | st.text("0123456789", max_size=9))
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-09:45", "+23:59", "-23:59"]))
    return f"{day.isoformat()}{draw(st.sampled_from('Tt '))}{clock}{'.' + frac.lstrip('.') if frac else ''}{zone}"


def _number(low: float = 0.0, high: float = 1e12) -> st.SearchStrategy[Any]:  # amounts are <= 1e12
    return st.floats(low, high) | st.integers(int(low), int(min(high, 2**53))) | st.sampled_from([low, int(low)])


_confidence = st.sampled_from([0, 1, 0.0, 1.0, 0.1, 0.9999999999999999]) | st.floats(0, 1)


def _extras(etype: str) -> st.SearchStrategy[dict[str, Any]]:
    names = {spec.name for spec in FIELDS[etype]} | {"type"}
    return st.dictionaries(_text.filter(lambda k: k not in names), _json, max_size=4)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def _decision(draw: st.DrawFn, i: int) -> dict[str, Any]:
    event = {"type": "decision", "id": f"d{i}-" + draw(_text), "proposed_at": draw(_timestamp()),
             "agent_id": draw(_text), "model_version": draw(_text), "risk_class": draw(_text),
             "action_type": draw(_text), "confidence": draw(_confidence),
             "route": draw(st.sampled_from(["auto", "review", "shadow"]))}
    event.update(draw(_optional(
        policy_version=_text, queue=_text, model_cost=_number(), segment=st.dictionaries(_text, _text, max_size=3),
        policy_checks=st.lists(st.fixed_dictionaries(
            {"rule": _text, "result": st.sampled_from(["pass", "fail", "warn"])}, optional={"detail": _json}),
            max_size=2))))
    return {**draw(_extras("decision")), **event}


@st.composite
def _review(draw: st.DrawFn, i: int, decision_id: str) -> dict[str, Any]:
    a, b = draw(_timestamp()), draw(_timestamp())
    if parse_timestamp(a) > parse_timestamp(b):
        a, b = b, a
    event = {"type": "review", "id": f"r{i}-" + draw(_text), "decision_id": decision_id,
             "reviewer_id": draw(_text), "kind": draw(st.sampled_from(["primary", "escalation", "audit"])),
             "enqueued_at": a, "decided_at": b,
             "verdict": draw(st.sampled_from(["approve", "edit", "reject", "escalate"]))}
    event.update(draw(_optional(claimed_at=_timestamp(), reason_code=_text, handle_seconds=_number(),
                                cost=_number(), audit_probability=st.floats(0, 1, exclude_min=True) | st.just(1))))
    return {**draw(_extras("review")), **event}


@st.composite
def _outcome(draw: st.DrawFn, decision_id: str) -> dict[str, Any]:
    event = {"type": "outcome", "decision_id": decision_id, "observed_at": draw(_timestamp()),
             "agent_correct": draw(st.booleans()), "final_correct": draw(st.booleans())}
    event.update(draw(_optional(error_cost=_number(), agent_error_cost=_number())))
    return {**draw(_extras("outcome")), **event}


@st.composite
def _change(draw: st.DrawFn, i: int) -> dict[str, Any]:
    event = {"type": "change", "id": f"c{i}-" + draw(_text), "changed_at": draw(_timestamp()),
             "actor": draw(_text), "kind": draw(st.sampled_from(["threshold", "policy", "model", "other"]))}
    event.update(draw(_optional(scope=st.dictionaries(_text, _text, max_size=2), before=_json, after=_json,
                                reason=_text)))
    return {**draw(_extras("change")), **event}


@st.composite
def event_batches(draw: st.DrawFn) -> list[ValidEvent]:
    """Valid events of all four types; reviews and outcomes name decisions of the same batch."""
    decisions = [draw(_decision(i)) for i in range(draw(st.integers(1, 4)))]
    ids = [d["id"] for d in decisions]
    raw: list[dict[str, Any]] = list(decisions)
    raw += [draw(_review(i, draw(st.sampled_from(ids)))) for i in range(draw(st.integers(0, 4)))]
    raw += [draw(_outcome(draw(st.sampled_from(ids)))) for _ in range(draw(st.integers(0, 3)))]
    raw += [draw(_change(i)) for i in range(draw(st.integers(0, 2)))]
    events = [validate_event(e) for e in draw(st.permutations(raw))]
    unique = {(ev.type, ev.key): ev for ev in events}  # identical outcomes collapse to one
    return list(unique.values())


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """One migrated store per test; examples empty it rather than re-migrating."""
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def _empty(engine: Engine) -> None:
    """Back to a fresh store: every table emptied (derived ones too), the chain at its start."""
    tables = set(inspect(engine).get_table_names()) - {"alembic_version", "chain_head"}
    with engine.begin() as conn:
        for table in sorted(tables):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": GENESIS})


def _read_back(engine: Engine, ev: ValidEvent) -> dict[str, Any]:
    table = EVENT_TABLES[ev.type]
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c[_KEY[ev.type]] == ev.key)).mappings().one()
    return dict(row)


# ---- properties -------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=event_batches())
def test_payload_row_payload_is_lossless_through_the_writer(engine: Engine, batch: list[ValidEvent]) -> None:
    _empty(engine)
    result = write_batch(engine, [(i, ev) for i, ev in enumerate(batch)])
    assert result.stored == len(batch), result
    chain = GENESIS
    rows = sorted(((_read_back(engine, ev), ev) for ev in batch), key=lambda pair: pair[0]["seq"])
    for row, ev in rows:
        back = row_to_payload(ev.type, row)
        assert canonical_json(back) == canonical_json(ev.payload)
        assert back == ev.payload
        chain = link_hash(chain, canonical_json(back))
        assert row["hash"] == chain
    assert verify_chain(engine).ok


@settings(max_examples=200)
@given(batch=event_batches())
def test_payload_to_row_and_back_in_memory(batch: list[ValidEvent]) -> None:
    for seq, ev in enumerate(batch, 1):
        row = payload_to_row(ev.type, ev.payload, ev.key, seq, "h" * 64)
        assert canonical_json(row_to_payload(ev.type, row)) == canonical_json(ev.payload)


# ---- examples ---------------------------------------------------------------------------------

def test_rich_event_round_trips(engine: Engine) -> None:
    raw = {"type": "decision", "id": "déc-1 🚀", "proposed_at": "2026-11-24T09:30:00.123456789+05:30",
           "agent_id": "агент", "model_version": "m\u200b1", "risk_class": "高", "action_type": "refund",
           "confidence": 1, "route": "shadow", "segment": {"région": "ÉU", "": ""},
           "policy_checks": [{"rule": "pii", "result": "warn", "score": 0.25}],
           "nested": {"a": [1, 1.0, -0.0, None, {"b": "\u0001\n\t\"\\"}], "big": 2**64 - 1},
           "note": "line\u2028sep", "empty": {}, "list": []}
    ev = validate_event(raw)
    assert write_batch(engine, [(1, ev)]).stored == 1
    row = _read_back(engine, ev)
    assert row["proposed_at"] == parse_timestamp("2026-11-24T04:00:00.123456Z") and row["confidence"] == 1.0 and row["conf_bin"] == 9
    assert canonical_json(row_to_payload("decision", row)) == canonical_json(ev.payload)
    assert verify_chain(engine).ok


@pytest.mark.parametrize("confidence, conf_bin", [(0, 0), (0.0, 0), (0.1, 1), (0.9999999999999999, 9), (1, 9)])
def test_confidence_edges_round_trip(engine: Engine, confidence: float, conf_bin: int) -> None:
    raw = {"type": "decision", "id": f"d-{confidence!r}", "proposed_at": "2026-01-01T00:00:00Z", "agent_id": "a",
           "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": confidence,
           "route": "auto"}
    ev = validate_event(raw)
    write_batch(engine, [(1, ev)])
    row = _read_back(engine, ev)
    assert row["conf_bin"] == conf_bin
    assert canonical_json(row_to_payload("decision", row)) == canonical_json(ev.payload)


def test_negative_zero_in_a_contract_number_round_trips(engine: Engine) -> None:
    """-0.0 is canonicalised to 0.0 at validation: SQLite REAL would not keep the sign the hash saw."""
    raw = {"type": "outcome", "decision_id": "d", "observed_at": "2026-01-01T00:00:00Z",
           "agent_correct": True, "final_correct": False, "error_cost": -0.0}
    decision = {"type": "decision", "id": "d", "proposed_at": "2026-01-01T00:00:00Z", "agent_id": "a",
                "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": -0.0, "route": "auto"}
    events = [validate_event(decision), validate_event(raw)]
    assert write_batch(engine, list(enumerate(events))).stored == 2
    for ev in events:
        assert canonical_json(row_to_payload(ev.type, _read_back(engine, ev))) == canonical_json(ev.payload)
    assert verify_chain(engine).ok


@pytest.mark.parametrize("value", [1.0, 0.0, -0.0, 2**64 - 1])
def test_json_number_in_before_after_round_trips(engine: Engine, value: Any) -> None:
    """A bare JSON number survives SQLite (whose JSON-declared columns would have numeric affinity)."""
    ev = validate_event({"type": "change", "id": "c", "changed_at": "2026-01-01T00:00:00Z", "actor": "ops",
                         "kind": "threshold", "before": value, "after": 0.5})
    assert write_batch(engine, [(1, ev)]).stored == 1
    assert canonical_json(row_to_payload("change", _read_back(engine, ev))) == canonical_json(ev.payload)
    assert verify_chain(engine).ok


_EARLIEST_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LATEST_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


@given(micros=st.integers(_EARLIEST_US, _LATEST_US) | st.integers(-10**6, 10**6).map(lambda s: s * 1_000_000))
def test_format_timestamp_is_the_datetime_rendering(micros: int) -> None:
    """The arithmetic formatter (verify's hot path) writes what datetime writes, and parses back."""
    from collectors.validate import format_timestamp

    instant = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    assert format_timestamp(micros) == instant.isoformat().replace("+00:00", "Z")
    assert parse_timestamp(format_timestamp(micros)) == micros
