"""Cold derivation of decision_state from the events alone (contract section 2).

The writer keeps `decision_state` current incrementally (`collectors.store.state`).
This module derives the same facts from scratch, written as the contract words
them (a maximum over keys, not a fold), so `hitl-tower verify --deep` and the
writer's property tests can check the incremental path against it. Sums run in
seq order, the order the writer adds them in, so floats agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from collectors.store.models import EVENT_TABLES, DecisionState
from collectors.store.state import State, review_seconds

_CHUNK = 1000


Row = Mapping[Any, Any]  # a row mapping: column name -> value


def derive_state(decision: Row, reviews: Iterable[Row], outcomes: Iterable[Row]) -> State:
    """The derived state of one decision row from its review and outcome rows (any order)."""
    reviews, outcomes = list(reviews), list(outcomes)
    state = State.initial(decision["seq"], decision["route"])
    for review in sorted(reviews, key=lambda r: r["seq"]):
        if review.get("cost") is not None:
            state.review_cost_sum += float(review["cost"])
        else:
            state.review_seconds_sum += review_seconds(review)
    deciding = [r for r in reviews if r["kind"] != "audit" and r["verdict"] != "escalate"]
    if deciding:
        final = max(deciding, key=lambda r: (r["decided_at"], r["id"]))
        state.final_verdict = final["verdict"]
        state.final_decided_at, state.final_review_id = final["decided_at"], final["id"]
    if outcomes:
        latest = max(outcomes, key=lambda o: (o["observed_at"], o["seq"]))
        state.outcome_seq, state.outcome_observed_at = latest["seq"], latest["observed_at"]
        state.agent_correct = bool(latest["agent_correct"])
        state.final_correct = bool(latest["final_correct"])
        state.error_cost, state.agent_error_cost = latest["error_cost"], latest["agent_error_cost"]
    return state


def derive_states(conn: Connection) -> Iterator[tuple[str, State]]:
    """(decision id, derived state) of every stored decision, in decision seq order.

    Streams three cursors ordered by decision seq and merge-joins them, so memory
    stays bounded by the events of one decision whatever the store's size.
    """
    decisions = EVENT_TABLES["decision"]
    streams = {etype: _by_decision(conn, etype) for etype in ("review", "outcome")}
    pending = {etype: next(stream, None) for etype, stream in streams.items()}
    query = select(decisions.c.seq, decisions.c.id, decisions.c.route).order_by(decisions.c.seq)
    for decision in conn.execute(query.execution_options(yield_per=_CHUNK)).mappings():
        mine: dict[str, list[Row]] = {"review": [], "outcome": []}
        for etype, stream in streams.items():
            row = pending[etype]
            while row is not None and row["dseq"] <= decision["seq"]:
                if row["dseq"] == decision["seq"]:
                    mine[etype].append(row)
                row = next(stream, None)
            pending[etype] = row
        yield decision["id"], derive_state(decision, mine["review"], mine["outcome"])


def _by_decision(conn: Connection, etype: str) -> Iterator[Row]:
    """Rows of reviews or outcomes with their decision's seq as `dseq`, ordered by (dseq, seq)."""
    table, decisions = EVENT_TABLES[etype], EVENT_TABLES["decision"]
    query = (select(table, decisions.c.seq.label("dseq"))
             .join(decisions, decisions.c.id == table.c.decision_id)
             .order_by(decisions.c.seq, table.c.seq))
    yield from conn.execute(query.execution_options(yield_per=_CHUNK)).mappings()


def check_states(conn: Connection, limit: int = 20) -> tuple[int, list[str], int]:
    """Compare stored decision_state with the cold derivation: (decisions checked, first problems, count).

    Both sides stream in decision seq order and are merge-joined, so memory stays bounded.
    """
    table = DecisionState.__table__
    query = select(table).order_by(table.c.decision_seq)
    stored = iter(conn.execute(query.execution_options(yield_per=_CHUNK)).mappings())
    row = next(stored, None)
    shown: list[str] = []
    checked = total = 0

    def report(message: str) -> None:
        nonlocal total
        total += 1
        if len(shown) < limit:
            shown.append(message)

    for decision_id, state in derive_states(conn):
        checked += 1
        while row is not None and row["decision_seq"] < state.decision_seq:
            report(f"decision_state row of seq {row['decision_seq']} names no stored decision")
            row = next(stored, None)
        label = f"decision {decision_id} (seq {state.decision_seq})"
        if row is None or row["decision_seq"] != state.decision_seq:
            report(f"{label} has no decision_state row")
            continue
        diffs = _state_diffs(row, state.as_row())
        if diffs:
            report(f"{label}: decision_state differs from the events: {'; '.join(diffs)}")
        row = next(stored, None)
    while row is not None:
        report(f"decision_state row of seq {row['decision_seq']} names no stored decision")
        row = next(stored, None)
    return checked, shown, total


def _state_diffs(stored: Mapping[Any, Any], derived: Mapping[str, Any]) -> list[str]:
    diffs = []
    for name, want in derived.items():
        have = stored[name]
        if not same_as_derived(have, want):
            diffs.append(f"{name} is {have!r}, derived {want!r}")
    return diffs


def same_as_derived(have: Any, want: Any) -> bool:
    """A stored value against the one derived from the events: floats to a relative 1e-9 (sums added
    in another order differ in the last bits), anything else exactly."""
    if isinstance(want, float) and isinstance(have, (int, float)) and not isinstance(have, bool):
        return math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-9)
    return bool(have == want)


def rebuild_state(engine: Engine) -> int:
    """Rewrite the whole decision_state table from the events; returns the number of decisions.

    A repair tool: holds the chain's write lock so no batch lands meanwhile.
    """
    with engine.begin() as conn:
        conn.execute(text("UPDATE chain_head SET seq = seq WHERE id = 1"))
        conn.execute(delete(DecisionState))
        count, chunk = 0, []
        for _id, state in derive_states(conn):
            chunk.append(state.as_row())
            if len(chunk) == _CHUNK:
                conn.execute(insert(DecisionState), chunk)
                count, chunk = count + len(chunk), []
        if chunk:
            conn.execute(insert(DecisionState), chunk)
        return count + len(chunk)
