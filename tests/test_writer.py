"""The batch writer: idempotency, conflicts, unknown decisions, the hash chain and derived state.

The key property: however events are ordered and split into batches (with
the caller retrying handed-back reviews and outcomes, as ingest does), the
incrementally kept decision_state equals the cold derivation from the events
(`collectors.store.derive`) and the contract's rules computed here from the
raw events. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, select, text

from collectors.store.chain import GENESIS, link_hash
from collectors.store.db import open_store
from collectors.store.derive import derive_states
from collectors.store.models import EVENT_TABLES, DecisionState
from collectors.store.prepared import prepare
from collectors.store.state import State, review_seconds
from collectors.store.verify import verify_chain
from collectors.store.writer import BatchResult, write_batch
from collectors.validate import ValidEvent, canonical_json, parse_timestamp, validate_event


def _decision(id_: str = "d-1", route: str = "review", **extra: Any) -> dict[str, Any]:
    return {"type": "decision", "id": id_, "proposed_at": "2026-11-24T09:30:00Z", "agent_id": "a",
            "model_version": "m", "risk_class": "low", "action_type": "refund", "confidence": 0.8,
            "route": route, **extra}


def _review(id_: str = "r-1", decision_id: str = "d-1", **extra: Any) -> dict[str, Any]:
    return {"type": "review", "id": id_, "decision_id": decision_id, "reviewer_id": "alice", "kind": "primary",
            "enqueued_at": "2026-11-24T10:00:00Z", "decided_at": "2026-11-24T10:30:00Z", "verdict": "edit",
            **extra}


def _outcome(decision_id: str = "d-1", **extra: Any) -> dict[str, Any]:
    return {"type": "outcome", "decision_id": decision_id, "observed_at": "2026-12-01T00:00:00Z",
            "agent_correct": False, "final_correct": True, **extra}


def _change(id_: str = "c-1", **extra: Any) -> dict[str, Any]:
    return {"type": "change", "id": id_, "changed_at": "2026-11-20T00:00:00Z", "actor": "ops",
            "kind": "threshold", "before": 0.9, "after": 0.85, **extra}


MAKERS = {"decision": _decision, "review": _review, "outcome": _outcome, "change": _change}
# A change of content for each type: for an outcome this is a different outcome, not a conflict.
ALTERED = {"decision": {"confidence": 0.7}, "review": {"verdict": "reject"},
           "outcome": {"final_correct": False}, "change": {"after": 0.8}}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def _write(engine: Engine, *raw: dict[str, Any]) -> BatchResult[int]:
    return write_batch(engine, [(i, validate_event(e)) for i, e in enumerate(raw, 1)])


def _head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, hash_ = conn.execute(text("SELECT seq, hash FROM chain_head WHERE id = 1")).one()
    return int(seq), str(hash_)


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _prepare(engine: Engine, etype: str) -> None:
    if etype in ("review", "outcome"):
        assert _write(engine, _decision()).stored == 1


# ---- idempotency and conflicts ----------------------------------------------------------------

@pytest.mark.parametrize("etype", list(MAKERS))
def test_duplicate_in_the_batch_is_counted_once(engine: Engine, etype: str) -> None:
    _prepare(engine, etype)
    result = _write(engine, MAKERS[etype](), MAKERS[etype]())
    assert (result.stored, result.duplicates, result.rejected) == (1, 1, [])


@pytest.mark.parametrize("etype", list(MAKERS))
def test_duplicate_of_the_store_is_a_no_op(engine: Engine, etype: str) -> None:
    _prepare(engine, etype)
    assert _write(engine, MAKERS[etype]()).stored == 1
    head = _head(engine)
    result = _write(engine, MAKERS[etype]())
    assert (result.stored, result.duplicates, result.rejected) == (0, 1, [])
    assert _head(engine) == head


def test_a_batch_with_one_stored_event_stores_the_others_once(engine: Engine) -> None:
    """The optimistic insert fails on the stored outcome (a short row count on SQLite, a unique
    violation on PostgreSQL); the batch goes back to its savepoint and the careful way, whole."""
    assert _write(engine, _decision(), _outcome()).stored == 2
    result = _write(engine, _decision("d-2"), _review(), _outcome(), _review("r-2", "d-2"), _outcome("d-2"))
    assert (result.stored, result.duplicates, result.rejected) == (4, 1, [])
    assert [_count(engine, t) for t in ("decisions", "reviews", "outcomes", "decision_state")] == [2, 2, 2, 2]
    assert _head(engine)[0] == 6
    assert verify_chain(engine, deep=True).ok


@pytest.mark.parametrize("etype", list(MAKERS))
def test_same_content_is_compared_as_parsed_json(engine: Engine, etype: str) -> None:
    """Key order, 1 vs 1.0 and another offset for the same instant do not make content different."""
    _prepare(engine, etype)
    assert _write(engine, MAKERS[etype]()).stored == 1
    same = dict(reversed(list(MAKERS[etype]().items())))
    stamp = next(k for k in same if k.endswith("_at"))
    same[stamp] = same[stamp].replace("Z", "+00:00").replace("T", "t")
    if etype == "decision":
        same["confidence"] = 0.8
    if etype == "outcome":
        same["observed_at"] = "2026-12-01T01:00:00.000+01:00"
    result = _write(engine, same)
    assert (result.stored, result.duplicates) == (0, 1), result


@pytest.mark.parametrize("etype", ["decision", "review", "change"])
def test_conflict_in_the_batch_keeps_the_first(engine: Engine, etype: str) -> None:
    _prepare(engine, etype)
    result = _write(engine, MAKERS[etype](), MAKERS[etype](**ALTERED[etype]))
    assert result.stored == 1 and result.duplicates == 0
    assert [ref for ref, _ in result.rejected] == [2]
    assert "conflict" in result.rejected[0][1] and "earlier in the same input" in result.rejected[0][1]
    assert _stored_payload(engine, etype) == validate_event(MAKERS[etype]()).payload


@pytest.mark.parametrize("etype", ["decision", "review", "change"])
def test_conflict_with_the_store_keeps_the_original(engine: Engine, etype: str) -> None:
    _prepare(engine, etype)
    assert _write(engine, MAKERS[etype]()).stored == 1
    head = _head(engine)
    result = _write(engine, MAKERS[etype](**ALTERED[etype]))
    assert result.stored == 0 and len(result.rejected) == 1
    assert "already stored" in result.rejected[0][1] and f"{etype} " in result.rejected[0][1]
    assert _stored_payload(engine, etype) == validate_event(MAKERS[etype]()).payload
    assert _head(engine) == head


def test_an_outcomes_identity_is_its_content(engine: Engine) -> None:
    """Outcomes have no id: an altered one is another outcome (a later one supersedes), never a conflict."""
    _prepare(engine, "outcome")
    result = _write(engine, _outcome(), _outcome(**ALTERED["outcome"]), _outcome())
    assert (result.stored, result.duplicates, result.rejected) == (2, 1, [])
    result = _write(engine, _outcome(**ALTERED["outcome"]), _outcome(observed_at="2026-12-02T00:00:00Z"))
    assert (result.stored, result.duplicates, result.rejected) == (1, 1, [])
    assert _count(engine, "outcomes") == 3


def test_ids_are_unique_per_event_type(engine: Engine) -> None:
    result = _write(engine, _decision("x"), _review("x", "x"), _change("x"))
    assert (result.stored, result.rejected) == (3, [])


def _stored_payload(engine: Engine, etype: str) -> dict[str, Any]:
    from collectors.store.rows import row_to_payload

    with engine.connect() as conn:
        (row,) = conn.execute(select(EVENT_TABLES[etype])).mappings().all()
    return row_to_payload(etype, row)


# ---- unknown decisions ------------------------------------------------------------------------

def test_unknown_decisions_are_handed_back_untouched(engine: Engine) -> None:
    review, outcome = validate_event(_review(decision_id="d-9")), validate_event(_outcome("d-9"))
    result = write_batch(engine, [("a:1", review), ("a:2", outcome), ("a:3", validate_event(_decision()))])
    assert result.stored == 1 and result.rejected == []
    assert result.unknown_decision == [("a:1", prepare(review)), ("a:2", prepare(outcome))]
    assert _head(engine)[0] == 1
    assert _write(engine, _decision("d-9")).stored == 1
    assert write_batch(engine, result.unknown_decision).stored == 2


def test_a_decision_later_in_the_same_batch_is_known(engine: Engine) -> None:
    result = _write(engine, _review(), _outcome(), _decision())
    assert (result.stored, result.unknown_decision) == (3, [])
    assert _states(engine)["d-1"].final_verdict == "edit"


# ---- the hash chain ---------------------------------------------------------------------------

def test_chain_head_advances_and_every_hash_chains(engine: Engine) -> None:
    batches = [[_decision("d-1"), _review("r-1", "d-1"), _change()],
               [_decision("d-2", "auto"), _outcome("d-1"), _review("r-2", "d-2", verdict="approve")]]
    chain, seq = GENESIS, 0
    for raw in batches:
        assert _write(engine, *raw).stored == len(raw)
        for event in raw:
            seq += 1
            chain = link_hash(chain, canonical_json(validate_event(event).payload))
        assert _head(engine) == (seq, chain)
    hashes: dict[int, str] = {}
    with engine.connect() as conn:
        for table in EVENT_TABLES.values():
            hashes.update({row.seq: row.hash for row in conn.execute(select(table.c.seq, table.c.hash))})
    assert sorted(hashes) == list(range(1, seq + 1))
    expected = GENESIS
    for n, raw_event in enumerate([e for batch in batches for e in batch], 1):
        expected = link_hash(expected, canonical_json(validate_event(raw_event).payload))
        assert hashes[n] == expected
    assert verify_chain(engine).ok


def test_a_batch_of_nothing_new_leaves_the_head(engine: Engine) -> None:
    assert _write(engine, _decision()).stored == 1
    head = _head(engine)
    _write(engine, _decision(), _review(decision_id="nope"))
    assert _head(engine) == head


# ---- derived state: incremental == cold, in any order and batch split -------------------------

_T0 = parse_timestamp("2026-11-24T00:00:00Z")
_TIMES = st.integers(0, 3).map(lambda h: _T0 + h * 3_600_000_000)  # few values: ties are common


def _iso(micros: int) -> str:
    from collectors.validate import format_timestamp

    return format_timestamp(micros)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Decisions with reviews (ties on decided_at, escalations, audits) and outcomes (ties on observed_at)."""
    decisions = [_decision(f"d{i}", draw(st.sampled_from(["auto", "review", "shadow"])))
                 for i in range(draw(st.integers(1, 3)))]
    ids = [d["id"] for d in decisions]
    events: list[dict[str, Any]] = list(decisions)
    review_ids = draw(st.lists(st.sampled_from([f"r{n:02d}" for n in range(12)]), unique=True, max_size=8))
    for rid in review_ids:
        decided = draw(_TIMES)
        review = _review(rid, draw(st.sampled_from(ids)), kind=draw(st.sampled_from(["primary", "escalation", "audit"])),
                         verdict=draw(st.sampled_from(["approve", "edit", "reject", "escalate"])),
                         enqueued_at=_iso(decided - draw(st.integers(0, 10**9))), decided_at=_iso(decided))
        cost = draw(st.one_of(st.none(), st.floats(0, 1e4), st.integers(0, 100)))
        if cost is not None:
            review["cost"] = cost
        seconds = draw(st.one_of(st.none(), st.floats(0, 1e5)))
        if seconds is not None:
            review["handle_seconds"] = seconds
        elif draw(st.booleans()):
            review["claimed_at"] = _iso(decided - draw(st.integers(0, 10**10)))
        events.append(review)
    for _ in range(draw(st.integers(0, 5))):
        outcome = _outcome(draw(st.sampled_from(ids)), observed_at=_iso(draw(_TIMES)),
                           agent_correct=draw(st.booleans()), final_correct=draw(st.booleans()))
        if draw(st.booleans()):
            outcome["error_cost"] = draw(st.floats(0, 1e6))
        if draw(st.booleans()):
            outcome["agent_error_cost"] = draw(st.floats(0, 1e6))
        events.append(outcome)
    events += draw(st.lists(st.sampled_from(events), max_size=3))  # re-sent duplicates
    return draw(st.permutations(events))


@st.composite
def splits(draw: st.DrawFn, n: int) -> list[int]:
    cuts = sorted(draw(st.sets(st.integers(1, max(n - 1, 1)), max_size=4)))
    return [c for c in cuts if 0 < c < n]


def _ingest(engine: Engine, events: list[ValidEvent], cuts: list[int]) -> None:
    """Write batch by batch, then retry handed-back events as ingest does, until nothing is left."""
    bounds = [0, *cuts, len(events)]
    retry: list[tuple[int, ValidEvent]] = []
    for a, b in itertools.pairwise(bounds):
        result = write_batch(engine, list(enumerate(events[a:b], a)))
        assert result.rejected == [], result.rejected
        retry += result.unknown_decision
    if retry:
        result = write_batch(engine, retry)
        assert result.rejected == [] and result.unknown_decision == [], result


def _empty(engine: Engine) -> None:
    """Back to a fresh store: every table emptied (derived ones too), the chain at its start."""
    tables = set(inspect(engine).get_table_names()) - {"alembic_version", "chain_head"}
    with engine.begin() as conn:
        for table in sorted(tables):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": GENESIS})


def _states(engine: Engine) -> dict[str, State]:
    table, decisions = DecisionState.__table__, EVENT_TABLES["decision"]
    query = select(decisions.c.id, table).join(decisions, decisions.c.seq == table.c.decision_seq)
    with engine.connect() as conn:
        return {row["id"]: State(**{k: v for k, v in row.items() if k != "id"})
                for row in conn.execute(query).mappings()}


def _contract_states(engine: Engine, raw: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Section 2 of the contract applied to the raw events, with outcome ties broken by stored seq."""
    with engine.connect() as conn:
        outcome_seq = {row.key: row.seq for row in conn.execute(text("SELECT key, seq FROM outcomes"))}
    unique = {(ev.type, ev.key): ev for ev in map(validate_event, raw)}
    expected: dict[str, dict[str, Any]] = {}
    for (etype, key), ev in unique.items():
        if etype != "decision":
            continue
        mine = [e.payload for (t, _k), e in unique.items() if t == "review" and e.payload["decision_id"] == key]
        deciding = [r for r in mine if r["kind"] != "audit" and r["verdict"] != "escalate"]
        latest = max(deciding, key=lambda r: (parse_timestamp(r["decided_at"]), r["id"]), default=None)
        verdict = latest["verdict"] if latest else ("auto" if ev.payload["route"] == "auto" else "pending")
        outcomes = [(parse_timestamp(e.payload["observed_at"]), outcome_seq[k], e.payload)
                    for (t, k), e in unique.items() if t == "outcome" and e.payload["decision_id"] == key]
        last = max(outcomes, key=lambda o: o[:2], default=None)
        rows = [{**r, "decided_at": parse_timestamp(r["decided_at"]),
                 "claimed_at": parse_timestamp(r["claimed_at"]) if "claimed_at" in r else None} for r in mine]
        expected[key] = {
            "final_verdict": verdict, "final_review_id": latest["id"] if latest else None,
            "outcome_seq": last[1] if last else None,
            "final_correct": last[2]["final_correct"] if last else None,
            "error_cost": last[2].get("error_cost") if last else None,
            "review_cost_sum": sum(r["cost"] for r in mine if "cost" in r),
            "review_seconds_sum": sum(review_seconds(r) for r in rows if "cost" not in r),
        }
    return expected


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_state_after_any_order_and_split_equals_the_cold_derivation(engine: Engine, data: st.DataObject) -> None:
    raw = data.draw(histories())
    events = [validate_event(e) for e in raw]
    _empty(engine)
    _ingest(engine, events, data.draw(splits(len(events))))

    stored = _states(engine)
    with engine.connect() as conn:
        derived = dict(derive_states(conn))
    assert stored == derived  # exact: same rules, sums in the same (seq) order

    expected = _contract_states(engine, raw)
    assert set(stored) == set(expected)
    for decision_id, want in expected.items():
        have = stored[decision_id]
        for name, value in want.items():
            got = getattr(have, name)
            if isinstance(value, float) or name.endswith("_sum"):
                assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-6), (decision_id, name, got, value)
            else:
                assert got == value, (decision_id, name, got, value)
    result = verify_chain(engine, deep=True)
    assert result.ok and result.decisions_checked == len(expected), result
