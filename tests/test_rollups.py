"""The per-hour rollups give the cold path's numbers, however events arrive, on both databases.

Counts (decisions, verdicts, bins, overrides, agreement coincidences) must be
equal exactly. Float sums (confidence, squared error, costs) are added and
subtracted in another order than the cold SQL sums them, so they are compared
with a relative tolerance of 1e-9 (in practice they differ in the last bits
only); a KPI that is a difference of two such sums (cost_avoided, ece_drift)
gets an absolute floor of 1e-9 too.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from engine_helpers import DAY, HOUR, T0, decision, load, outcome, review
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from test_engine_vs_reference import CONFIG, scenarios
from typer.testing import CliRunner

from collectors.cli import app
from collectors.engine.report import compute_report, report_to_dict
from collectors.store import rollup
from collectors.store.db import open_store
from collectors.store.writer import write_batch
from collectors.validate import validate_event

PLAIN_FIELDS = ["risk_class", "queue", "model_version", "agent_id", "action_type", "route"]
TABLES = ("decisions", "reviews", "outcomes", "changes", "decision_state", "kpi_rollup", "agreement_rollup",
          "rollup_slices")
MINUTE = 60_000_000


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, (str, bool, int)) and isinstance(b, (str, bool, int)):
        return a == b and type(a) is type(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(warm: dict[str, Any], cold: dict[str, Any]) -> None:
    """Same rows, same keys, counts equal, floats within the tolerance above."""
    assert warm["by"] == cold["by"] and len(warm["rows"]) == len(cold["rows"])
    for got, want in zip([warm["total"], *warm["rows"]], [cold["total"], *cold["rows"]]):
        assert list(got) == list(want)
        for name, value in want.items():
            assert _close(got[name], value), (name, got[name], value)
    for got, want in zip([warm["samples"]["total"], *warm["samples"]["rows"]],
                         [cold["samples"]["total"], *cold["samples"]["rows"]]):
        assert got == want


def both(engine: Engine, start: int, end: int, by: list[str], **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    now = T0 + 40 * HOUR
    warm = report_to_dict(compute_report(engine, CONFIG, start, end, by=by, now_us=now, **kw))
    cold = report_to_dict(compute_report(engine, CONFIG, start, end, by=by, now_us=now, use_rollups=False, **kw))
    return warm, cold


def rollup_rows(engine: Engine) -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """kpi_rollup and agreement_rollup rows keyed by (hour, slice values[, unit size]), zero rows left out."""
    with engine.connect() as conn:
        slices = {row[0]: tuple(row[1:]) for row in conn.execute(text(
            "SELECT id, risk_class, queue, model_version, agent_id, action_type, route FROM rollup_slices"))}
        kpi = {(r[0], slices[r[1]]): tuple(r[2:]) for r in conn.execute(text("SELECT * FROM kpi_rollup"))
               if any(r[2:])}
        agreement = {(r[0], slices[r[1]], r[2]): tuple(r[3:])
                     for r in conn.execute(text("SELECT * FROM agreement_rollup")) if any(r[3:])}
    return kpi, agreement


def assert_same_rollups(a: Engine | tuple[Any, Any], b: Engine | tuple[Any, Any]) -> None:
    (kpi_a, agr_a), (kpi_b, agr_b) = (rollup_rows(x) if isinstance(x, Engine) else x for x in (a, b))
    assert agr_a == agr_b
    assert kpi_a.keys() == kpi_b.keys()
    for key, row in kpi_a.items():
        assert all(_close(x, y) for x, y in zip(row, kpi_b[key])), (key, row, kpi_b[key])


@pytest.fixture
def store(db_url: str) -> Engine:
    engine = open_store(db_url)
    yield engine
    engine.dispose()


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE chain_head SET seq = 0, hash = :h WHERE id = 1"), {"h": "0" * 64})
        conn.execute(text("UPDATE rollup_meta SET valid = :v WHERE id = 1"), {"v": True})


# Windows: whole hours, and ones cut inside hours at either or both ends, and within one hour.
windows = st.sampled_from([
    (0, 10 * HOUR), (0, HOUR), (-12 * HOUR, 22 * HOUR), (0, 24 * HOUR),
    (30 * MINUTE, 10 * HOUR), (0, 9 * HOUR + 1), (HOUR - 1, 3 * HOUR + 17 * MINUTE),
    (2 * HOUR + MINUTE, 2 * HOUR + 59 * MINUTE), (-5 * HOUR - 1, 4 * HOUR + 1),
])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios(), split=st.lists(st.integers(1, 12), min_size=1, max_size=6),
       window_list=st.lists(windows, min_size=1, max_size=3, unique=True),
       by=st.lists(st.sampled_from(PLAIN_FIELDS), max_size=2, unique=True))
def test_rollup_report_equals_cold_report(store: Engine, scenario: dict[str, Any], split: list[int],
                                          window_list: list[tuple[int, int]], by: list[str]) -> None:
    _reset(store)
    valid = [(i, validate_event(e)) for i, e in enumerate(scenario["events"])]
    i, sizes = 0, iter(split * (len(valid) + 1))
    while i < len(valid):  # random batch splits: states (and rollups) change across batches
        size = next(sizes)
        result = write_batch(store, valid[i:i + size])
        assert not result.rejected and not result.unknown_decision
        i += size
    for start, end in window_list:
        warm, cold = both(store, T0 + start, T0 + end, by, reference=scenario["reference"])
        assert_same(warm, cold)
    incremental = rollup_rows(store)
    rollup.rebuild_rollups(store)
    assert_same_rollups(incremental, store)


def _sample_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(40):
        at = T0 + i * 37 * MINUTE
        d = f"d{i}"
        events.append(decision(d, at, confidence=(i % 11) / 10, risk_class=["low", "high"][i % 2],
                               queue=[None, "q1", "q2"][i % 3], route=["auto", "review"][i % 2],
                               model_cost=0.25 * (i % 4)))
        if i % 2:
            events.append(review(f"r{i}a", d, at + 2 * HOUR, ["approve", "edit", "reject"][i % 3],
                                 reviewer="alice", enqueued=at + 5 * MINUTE, handle_seconds=30.0 + i))
            if i % 3 == 1:
                events.append(review(f"r{i}b", d, at + 3 * HOUR, "reject", kind="audit", reviewer="bob",
                                     enqueued=at + HOUR, cost=2.5))
        if i % 4 != 3:
            events.append(outcome(d, at + DAY, agent_correct=i % 5 != 0, final_correct=i % 7 != 0,
                                  error_cost=float(i % 3), agent_error_cost=None if i % 2 else 4.0))
    return events


def test_rebuild_equals_incremental_and_report(db_url: str) -> None:
    engine = load(db_url, _sample_events(), batch=7)
    incremental = rollup_rows(engine)
    rollup.rebuild_rollups(engine)
    assert_same_rollups(incremental, engine)
    for by in ([], ["risk_class"], ["queue", "route"]):
        assert_same(*both(engine, T0, T0 + DAY, by))
    engine.dispose()


def test_rebuild_in_sql_floors_hours_before_1970_and_breaks_vote_ties_by_code_point(db_url: str) -> None:
    """The rebuild's SQL against the writer's Python on the edge cases of its two definitions.

    Hours of instants before the epoch are floored (SQL's / and % truncate toward zero); a
    reviewer's two votes at one instant are ordered by review id as Python compares strings
    ("B" < "a" by code point, the other way round in a language collation).
    """
    before_epoch = -90 * MINUTE  # 1969-12-31T22:30:00Z: hour -2, where truncation would say -1
    events = [decision("d1", before_epoch, queue=None), decision("d2", HOUR - 1, queue="q"),
              decision("d3", -1, confidence=0.05, route="auto"),
              review("a", "d1", T0, "approve", reviewer="alice"), review("B", "d1", T0, "reject", reviewer="alice"),
              review("r2", "d1", T0, "edit", reviewer="bob"), review("r3", "d1", T0, "reject", reviewer="carol"),
              review("r4", "d2", T0, "approve", reviewer="alice"), review("r5", "d2", T0, "approve", reviewer="bob"),
              outcome("d1", T0 + DAY, agent_correct=False, final_correct=True, error_cost=2.0),
              outcome("d3", T0 + DAY, agent_correct=True)]
    engine = load(db_url, events, batch=3)
    incremental = rollup_rows(engine)
    assert {key[0] for key in incremental[0]} == {-2, -1, 0}
    # d1: alice votes "a" (approve), bob edit, carol reject: no match; "B" (reject) would make one
    assert sorted(incremental[1].values()) == [(1, 0, 1, 1, 1, 0), (1, 2, 2, 0, 0, 0)]
    rollup.rebuild_rollups(engine)
    assert_same_rollups(incremental, engine)
    engine.dispose()


def test_store_loaded_before_the_rollups_falls_back_to_cold_until_rebuilt(db_url: str) -> None:
    """Downgrading to 0001 and upgrading again is what an older store goes through."""
    from alembic import command

    from collectors.store.db import _alembic_config

    engine = load(db_url, _sample_events())
    expected = report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY, by=["risk_class"], now_us=T0 + DAY,
                                             use_rollups=False))
    command.downgrade(_alembic_config(engine), "0001")
    command.upgrade(_alembic_config(engine), "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT valid FROM rollup_meta")).scalar() in (False, 0)
        assert conn.execute(text("SELECT count(*) FROM kpi_rollup")).scalar() == 0
    fallback = report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY, by=["risk_class"], now_us=T0 + DAY))
    assert fallback == expected  # the cold path itself, not an empty rollup
    result = CliRunner().invoke(app, ["rebuild-rollups", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "rollups rebuilt: 40 decisions" in result.output
    warm = report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY, by=["risk_class"], now_us=T0 + DAY))
    assert_same(warm, expected)
    engine.dispose()


def test_a_batch_writes_only_the_rollup_rows_of_the_decisions_it_touches(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = load(db_url, _sample_events())
    with engine.connect() as conn:
        before_rows = conn.execute(text("SELECT count(*) FROM kpi_rollup")).scalar()
    written: list[tuple[str, int]] = []
    upsert = rollup._upsert

    def counting(conn: Any, table: str, keys: Any, columns: Any, rows: list[Any]) -> int:
        written.append((table, len(rows)))
        return upsert(conn, table, keys, columns, rows)

    monkeypatch.setattr(rollup, "_upsert", counting)
    # Three new events: a review of d0 (hour 0), an outcome for d2 (hour 1), a new decision (hour 30).
    new = [review("late-1", "d0", T0 + 5 * HOUR, "edit", reviewer="carol"),
           outcome("d2", T0 + 2 * DAY, agent_correct=False),
           decision("d-new", T0 + 30 * HOUR)]
    result = write_batch(engine, [(i, validate_event(e)) for i, e in enumerate(new)])
    assert result.stored == 3
    assert written == [("kpi_rollup", 3)]  # d0's and d2's rows, and the new decision's: not O(history)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kpi_rollup")).scalar() == before_rows + 1
    # A second reviewer on d3 makes it an agreement unit (one row); the review changes neither its
    # final verdict (approve again) nor its cost (no time given), so no kpi row changes. A third
    # reviewer on d1 moves its unit from size 2 to size 3 (two rows).
    written.clear()
    write_batch(engine, [(0, validate_event(review("late-2", "d3", T0 + 6 * HOUR, "approve", reviewer="dave")))])
    assert written == [("kpi_rollup", 0), ("agreement_rollup", 1)]
    written.clear()
    write_batch(engine, [(0, validate_event(review("late-3", "d1", T0 + 6 * HOUR, "approve", reviewer="dave")))])
    assert written == [("kpi_rollup", 1), ("agreement_rollup", 2)]
    assert_same(*both(engine, T0, T0 + 2 * DAY, ["risk_class"]))
    incremental = rollup_rows(engine)
    rollup.rebuild_rollups(engine)
    assert_same_rollups(incremental, engine)
    engine.dispose()


def test_an_outcome_that_replaces_a_much_larger_contribution_leaves_no_rounding_residue(db_url: str) -> None:
    """A later outcome turns a squared error of ~1 into 1e-12 and an override's costs of 1e12 into 0.1.

    Subtracting the old terms from a rollup's running sums kept a residue as large as what was left:
    brier 9.99978e-13 instead of 1.00000e-12, cost_avoided 0.20002 instead of 0.2, in whole-hour
    windows only (the cold path was exact). Such rows are recounted from the events now; the found
    values must equal the cold path's to 1e-12, far inside the usual 1e-9.
    """
    first = [decision("d1", T0 + 9 * HOUR, confidence=0.999999),
             review("r1", "d1", T0 + 9 * HOUR + 10 * MINUTE, "edit", enqueued=T0 + 9 * HOUR),
             outcome("d1", T0 + 11 * HOUR, agent_correct=False, final_correct=False, error_cost=1e12,
                     agent_error_cost=0.3),
             decision("d2", T0 + 9 * HOUR + MINUTE, confidence=0.5)]  # same row: its sums stay too
    engine = load(db_url, first)
    write_batch(engine, [(0, validate_event(outcome("d1", T0 + 12 * HOUR, error_cost=0.1, agent_error_cost=0.3)))])
    warm, cold = both(engine, T0, T0 + DAY, [])
    assert cold["total"]["brier"] == pytest.approx((0.999999 - 1) ** 2, rel=1e-9)
    for kpi in ("brier", "ece", "cost_avoided", "override_error_delta"):
        assert math.isclose(warm["total"][kpi], cold["total"][kpi], rel_tol=1e-12), kpi
    incremental = rollup_rows(engine)
    rollup.rebuild_rollups(engine)
    assert rollup_rows(engine) == incremental  # recounted rows are the rebuild's, bit for bit
    engine.dispose()


def test_segment_slices_and_invalid_rollups_use_the_cold_path(sqlite_url: str) -> None:
    engine = load(sqlite_url, [decision("d1", T0, segment={"region": "eu"}), decision("d2", T0 + HOUR)])
    with engine.begin() as conn:  # poison the rollups: a report that read them would be wrong
        conn.execute(text("UPDATE kpi_rollup SET decisions = decisions + 100"))
    by_segment = report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY, by=["segment.region"]))
    assert by_segment["total"]["decisions"] == 2
    assert report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY))["total"]["decisions"] == 202
    with engine.begin() as conn:
        rollup.set_valid(conn, False)
    assert report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY))["total"]["decisions"] == 2
    engine.dispose()


def test_live_report_refreshes_with_new_events_and_matches_compute_report(db_url: str) -> None:
    from collectors.engine.live import LiveReport

    events = _sample_events()
    engine = load(db_url, events[:60])
    live = LiveReport(engine, CONFIG)
    now = T0 + 40 * HOUR
    for by in ([], ["risk_class", "queue"]):
        assert report_to_dict(live.report(T0, T0 + DAY, by, now_us=now)) == report_to_dict(
            compute_report(engine, CONFIG, T0, T0 + DAY, by, now_us=now))
    valid = [(i, validate_event(e)) for i, e in enumerate(events[60:])]
    assert write_batch(engine, valid).stored == len(valid)
    for by in (["risk_class", "queue"], [], ["segment.region"]):
        got = report_to_dict(live.report(T0, T0 + DAY, by, now_us=now))
        assert got == report_to_dict(compute_report(engine, CONFIG, T0, T0 + DAY, by, now_us=now))
    assert got["total"]["latency_p50_seconds"] is not None
    # A window outside the one held is read afresh.
    assert report_to_dict(live.report(T0 - DAY, T0 + 2 * DAY, ["route"], now_us=now)) == report_to_dict(
        compute_report(engine, CONFIG, T0 - DAY, T0 + 2 * DAY, ["route"], now_us=now))
    engine.dispose()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 72), st.sampled_from(["low", "high"]), st.sampled_from([None, "q1"]),
                          st.sampled_from(["auto", "review", "shadow"]), st.integers(0, 9),
                          st.one_of(st.none(), st.floats(0, 5))), max_size=40))
def test_initial_contributions_equal_the_entries_of_initial_states(decisions: list[Any]) -> None:
    """The column-wise fast path for new decisions sums to what per-decision entries give."""
    from collectors.store.state import State

    attrs = [(i, f"d{i}", hour * rollup.HOUR_US + i, risk, queue, "m", "a", "act", route, b, (b + 0.5) / 10, cost)
             for i, (hour, risk, queue, route, b, cost) in enumerate(decisions)]
    ids = {key: n for n, key in enumerate(sorted({a[3:9] for a in attrs}, key=str), start=1)}
    expected = rollup.group(*rollup.contributions(attrs, [State.initial(a[0], a[8]) for a in attrs], 1, ids))
    got = rollup.group(*rollup.initial_contributions(attrs, ids))
    assert got[0].tolist() == expected[0].tolist()
    assert got[1].tolist() == expected[1].tolist()
    assert got[2].shape == expected[2].shape
    assert got[2].ravel().tolist() == pytest.approx(expected[2].ravel().tolist(), rel=1e-12)


# ---- loads that rebuild the rollups at their end -------------------------------------------------

def test_a_load_that_rebuilds_the_rollups_ends_with_the_rows_of_one_that_keeps_them(db_url: str,
                                                                                     tmp_path: Any) -> None:
    from collectors import synth
    from collectors.ingest import ingest
    from collectors.store.rollup import rollups_valid

    events = list(synth.generate(seed=4, days=3, decisions_per_day=400))
    path = tmp_path / "events.jsonl"
    total = synth.write_jsonl(path, events)["total"]
    kept = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    summary = ingest(kept, [str(path)], batch_size=500, rollups="keep")
    assert summary.stored == total and summary.rollups_rebuilt is None

    rebuilt = open_store(db_url)
    first_half = tmp_path / "first.jsonl"
    first_half.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:total // 2]))
    batch = list(enumerate(validate_event(e) for e in events))
    write_batch(rebuilt, batch[:50])  # rollups kept so far: the rebuild must redo these rows too
    summary = ingest(rebuilt, [str(first_half), str(path)], batch_size=500, rollups="rebuild")
    assert summary.stored == total - 50 and summary.duplicates == total // 2 + 50
    assert summary.rollups_rebuilt is not None
    with rebuilt.connect() as conn:
        assert rollups_valid(conn)
    assert_same_rollups(kept, rebuilt)
    with rebuilt.connect() as conn:
        first, last = conn.execute(text("SELECT min(proposed_at), max(proposed_at) FROM decisions")).one()
    for by in ([], ["risk_class", "route"]):
        warm, cold = both(rebuilt, first, last + 1, by)
        assert_same(warm, cold)
        assert warm["samples"]["total"]["decisions"] == len([e for e in batch if e[1].type == "decision"])
    kept.dispose()
    rebuilt.dispose()


def test_a_batch_that_skips_the_rollups_marks_them_invalid_in_its_own_transaction(sqlite_url: str,
                                                                                   tmp_path: Any) -> None:
    from collectors.ingest import Loader
    from collectors.store.prepared import prepare
    from collectors.store.rollup import rollups_valid
    from collectors.store.writer import write_prepared

    engine = load(sqlite_url, _sample_events())
    kept = rollup_rows(engine)
    late = decision("skipped", T0 + 2 * HOUR)
    write_prepared(engine, [(0, prepare(validate_event(late)))], rollups=False)
    assert rollup_rows(engine) == kept  # stale now, and flagged so in the same commit:
    with engine.connect() as conn:
        assert not rollups_valid(conn)
    warm, cold = both(engine, T0 - DAY, T0 + 3 * DAY, [])  # so reports read the raw tables
    assert warm == cold and warm["samples"]["total"]["decisions"] == 41
    assert Loader(engine).finish().rollups_rebuilt is not None  # any load, even of nothing, repairs them
    with engine.connect() as conn:
        assert rollups_valid(conn)
    reference = load(f"sqlite:///{tmp_path / 'reference.db'}", [*_sample_events(), late])
    assert_same_rollups(engine, reference)
    engine.dispose()
    reference.dispose()


def test_auto_rebuilds_only_on_postgresql_for_inputs_big_next_to_the_store(db_url: str, tmp_path: Any) -> None:
    from collectors.ingest import BYTES_PER_EVENT, STDIN, rebuild_pays

    engine = load(db_url, _sample_events())  # 40 decisions, 46 reviews, 30 outcomes
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT seq FROM chain_head")).scalar_one()
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(b"x" * (BYTES_PER_EVENT * stored // 2 - 1))
    big.write_bytes(b"x" * (BYTES_PER_EVENT * stored // 2))
    postgres = engine.dialect.name == "postgresql"
    assert rebuild_pays(engine, [str(big)], min_bytes=0) is postgres
    assert not rebuild_pays(engine, [str(small)], min_bytes=0)
    assert rebuild_pays(engine, [str(small), str(small)], min_bytes=0) is postgres  # the files add up
    assert not rebuild_pays(engine, [str(big)], min_bytes=big.stat().st_size + 1)  # too small to bother
    assert not rebuild_pays(engine, [STDIN, str(tmp_path / "missing"), str(tmp_path)], min_bytes=0)
    engine.dispose()


def test_the_cli_says_when_it_rebuilt_the_rollups(sqlite_url: str, tmp_path: Any) -> None:
    import orjson

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _sample_events()))
    rebuilt = CliRunner().invoke(app, ["ingest", str(path), "--db", sqlite_url, "--rollups", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.startswith("97 stored, 0 duplicate, 0 rejected (97 lines from 1 file, 0 blank, ")
    assert ", rollups rebuilt in " in rebuilt.stdout
    again = CliRunner().invoke(app, ["ingest", str(path), "--db", sqlite_url])  # auto: kept on SQLite
    assert again.exit_code == 0 and "rollups rebuilt" not in again.stdout
    wrong = CliRunner().invoke(app, ["ingest", str(path), "--db", sqlite_url, "--rollups", "later"])
    assert wrong.exit_code == 2
    assert "Invalid value for '--rollups'" in wrong.output and "'later' is not one of 'auto'," in wrong.output


def test_slices_of_values_at_the_length_limit_fit_the_unique_index(db_url: str) -> None:
    """rollup_slices.key is a digest: five slice values of 256 four-byte characters (a JSON array of
    over 5 KB, past PostgreSQL's ~2.7 KB b-tree limit) still make one slice, and the reports read it.
    The characters are random: PostgreSQL compresses an index entry first, and a repeated one fits."""
    import random

    rng = random.Random(7)

    def incompressible() -> str:
        return "".join(chr(rng.randrange(0x10000, 0x110000)) for _ in range(256))

    long = {f: incompressible() for f in PLAIN_FIELDS if f != "route"}
    d1, d2 = incompressible(), incompressible()  # ids at the limit fit their unique index too
    engine = load(db_url, [decision(d1, T0, **long), review(incompressible(), d1, T0 + HOUR),
                           decision(d2, T0 + HOUR, **long), outcome(d1, T0 + 2 * HOUR)])
    values = tuple(long.get(f, "review") for f in PLAIN_FIELDS)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM rollup_slices")).scalars().all() == [rollup.slice_key(values)]
    assert len(rollup.slice_key(values)) == 64
    warm, cold = both(engine, T0, T0 + DAY, PLAIN_FIELDS)
    assert_same(warm, cold)
    assert [row["model_version"] for row in warm["rows"]] == [long["model_version"]]
    from collectors.store.verify import verify_chain

    assert verify_chain(engine, deep=True).ok
    engine.dispose()


def test_rebuild_rollups_on_a_missing_sqlite_store_exits_2_and_creates_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A mistyped --db made rebuild-rollups create an empty store and report 'rollups rebuilt: 0
    decisions', exit 0: nothing was repaired and a stray database file was left behind."""
    path = tmp_path / "typo.db"
    result = CliRunner().invoke(app, ["rebuild-rollups", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.stderr
    assert not path.exists()
