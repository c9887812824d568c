"""The store opens, migrates once, and reports unreachable databases clearly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from collectors.store.db import StoreError, needs_migration, open_store


def test_open_store_migrates_to_head(db_url: str) -> None:
    engine = open_store(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {"decisions", "reviews", "outcomes", "changes", "chain_head", "alembic_version"} <= tables
    assert not needs_migration(engine)
    engine.dispose()
    open_store(db_url).dispose()  # second open is a no-op, not an error


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot reach database"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_sqlite_directory_is_a_store_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_an_older_store_is_upgraded_on_first_use_even_by_read_only_commands(db_url: str) -> None:
    from alembic import command

    from collectors.store.db import _alembic_config

    engine = open_store(db_url)
    command.downgrade(_alembic_config(engine), "0001")
    assert needs_migration(engine)
    engine.dispose()
    engine = open_store(db_url, create=False)
    assert not needs_migration(engine)
    engine.dispose()


def test_read_only_open_of_a_database_without_schema_is_an_error(db_url: str) -> None:
    from collectors.store.db import create_store_engine

    if db_url.startswith("sqlite"):
        create_store_engine(db_url).connect().close()  # an empty SQLite file
    with pytest.raises(StoreError, match="no HITL Control Tower schema"):
        open_store(db_url, create=False)


def test_rowid_key_migration_keeps_every_row_and_the_chain(sqlite_url: str) -> None:
    """0004 rebuilds SQLite's event tables around INTEGER PRIMARY KEY: same rows, same chain, one b-tree less."""
    from alembic import command
    from engine_helpers import DAY, T0, decision, load, outcome, review
    from sqlalchemy import text

    from collectors.store.db import _alembic_config
    from collectors.store.verify import verify_chain

    def contents(engine) -> dict[str, list[tuple[object, ...]]]:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]
                    for t in ("decisions", "reviews", "outcomes", "decision_state", "chain_head")}

    def seq_indexes(engine) -> list[str]:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:  # an automatic index on a table's key shows as sqlite_autoindex_T_N
            return [r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'sqlite_autoindex_%' "
                "AND tbl_name IN ('decisions', 'reviews', 'outcomes', 'changes', 'decision_state')"))]

    engine = load(sqlite_url, [decision("d1", T0, route="review"), decision("d2", T0 + DAY),
                               review("r1", "d1", T0 + 60_000_000, "edit"), outcome("d1", T0 + DAY, False)])
    before = contents(engine)
    assert len(seq_indexes(engine)) == 4  # the unique ids of decisions, reviews, outcomes, changes
    command.downgrade(_alembic_config(engine), "0003")
    assert len(seq_indexes(engine)) == 9  # ... and a second b-tree per table for the BIGINT key
    assert contents(engine) == before
    command.upgrade(_alembic_config(engine), "head")
    assert contents(engine) == before and len(seq_indexes(engine)) == 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM decision_state WHERE final_verdict = 'pending'")).scalar() == 1  # d2
        plan = " ".join(str(r[-1]) for r in conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT decision_seq FROM decision_state WHERE final_verdict = 'pending'")))
    assert "ix_decision_state_pending" in plan  # the partial index survived the rebuild
    assert verify_chain(engine, deep=True).ok
    engine.dispose()


def test_the_migrations_build_exactly_the_models(db_url: str) -> None:
    """Alembic's autogenerate finds nothing to change after the migrations: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from collectors.store.models import Base

    engine = open_store(db_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_outcomes_are_unique_by_observed_at_then_key_and_probed_through_that_index(db_url: str) -> None:
    """0005: the digest key follows observed_at in the unique index, so outcome inserts append to it."""
    from alembic import command
    from engine_helpers import DAY, T0, decision, load, outcome
    from sqlalchemy import text

    from collectors.store.db import _alembic_config
    from collectors.store.verify import verify_chain
    from collectors.store.writer import _stored_seqs

    engine = load(db_url, [decision("d1", T0), outcome("d1", T0 + DAY, False), outcome("d1", T0 + 2 * DAY)])
    uniques = inspect(engine).get_unique_constraints("outcomes")
    assert [u["column_names"] for u in uniques] == [["observed_at", "key"]]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT observed_at, key, seq FROM outcomes ORDER BY seq")).all()
        (observed_at, key, seq), other = rows[0], rows[1]
        probe = [(observed_at, key), (observed_at + 1, key), (observed_at, "x"), (other[0], other[1])]
        assert sorted(_stored_seqs(conn, "outcome", probe)) == [seq, other[2]]
    command.downgrade(_alembic_config(engine), "0004")
    assert [u["column_names"] for u in inspect(engine).get_unique_constraints("outcomes")] == [["key"]]
    command.upgrade(_alembic_config(engine), "head")
    assert [u["column_names"] for u in inspect(engine).get_unique_constraints("outcomes")] == [["observed_at", "key"]]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT observed_at, key, seq FROM outcomes ORDER BY seq")).all() == rows
    assert verify_chain(engine, deep=True).ok
    engine.dispose()


def test_slice_keys_become_digests_and_back(db_url: str) -> None:
    """0006: rollup_slices.key goes from the JSON array of the six slice values to its SHA-256 (hex), and back."""
    import orjson
    from alembic import command
    from engine_helpers import T0, decision, load
    from sqlalchemy import text

    from collectors.store.db import _alembic_config
    from collectors.store.rollup import SLICE_FIELDS, slice_key
    from collectors.store.verify import verify_chain
    from collectors.store.writer import write_batch
    from collectors.validate import validate_event

    engine = load(db_url, [decision("d1", T0), decision("d2", T0, queue="q\u00e9", agent_id="\u00e9\"x")])
    query = text(f"SELECT id, key, {', '.join(SLICE_FIELDS)} FROM rollup_slices ORDER BY id")

    def slices() -> list[tuple[int, str, tuple[str | None, ...]]]:
        with engine.connect() as conn:
            return [(row[0], row[1], tuple(row[2:])) for row in conn.execute(query)]

    digests = slices()
    assert len(digests) == 2 and all(key == slice_key(values) for _id, key, values in digests)
    command.downgrade(_alembic_config(engine), "0005")
    assert [(i, k, v) for i, k, v in slices()] == [(i, orjson.dumps(list(v)).decode(), v) for i, _k, v in digests]
    command.upgrade(_alembic_config(engine), "head")
    assert slices() == digests
    result = write_batch(engine, [(1, validate_event(decision("d3", T0, queue="q\u00e9", agent_id="\u00e9\"x")))])
    assert result.stored == 1 and slices() == digests  # the same slice, found by its migrated key
    assert verify_chain(engine, deep=True).ok
    engine.dispose()


def test_outcome_keys_are_recomputed_with_numbers_in_one_form(db_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """0007: stored outcomes with extras get the key of `outcome_key`; of two stored before the fix with the
    same content (1 vs 1.0), the one holding the new key already, or else the first, takes it and the other
    keeps its old key, which verify accepts. Downgrade gives the old keys back."""
    import hashlib

    from alembic import command
    from engine_helpers import DAY, T0, decision, outcome
    from sqlalchemy import text

    from collectors import validate
    from collectors.store.db import _alembic_config
    from collectors.store.verify import verify_chain
    from collectors.store.writer import write_batch
    from collectors.validate import canonical_json, outcome_key, validate_event

    engine = open_store(db_url)
    command.downgrade(_alembic_config(engine), "0006")
    extras = [{"n": 1}, {"n": 1.0}, {"k": 0}, {"k": -0.0}, {"big": [2**53 + 1]}, {"t": True}]
    events = [decision("d1", T0), *(outcome("d1", T0 + DAY, **extra) for extra in extras), outcome("d1", T0)]
    with monkeypatch.context() as patch:  # the key as it was before 0007: the digest of the canonical JSON
        patch.setattr(validate, "outcome_key", lambda payload: hashlib.sha256(canonical_json(payload)).hexdigest())
        assert write_batch(engine, [(i, validate_event(e)) for i, e in enumerate(events)]).stored == 8
    query = text("SELECT key FROM outcomes ORDER BY seq")

    def keys() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(query).scalars())

    old = keys()
    payloads = [validate_event(e).payload for e in events[1:]]
    assert old == [hashlib.sha256(canonical_json(p)).hexdigest() for p in payloads]
    assert len(set(old)) == 7
    command.upgrade(_alembic_config(engine), "head")
    new = [outcome_key(p) for p in payloads]
    # {"n": 1.0} held its new key already; {"k": 0} came first; the others had one key each
    assert keys() == [old[0], new[1], new[2], old[3], new[4], new[5], new[6]]
    assert new[0] == new[1] and new[2] == new[3] and new[4] == old[4] and new[6] == old[6]
    assert verify_chain(engine, deep=True).ok
    again = write_batch(engine, [(1, validate_event(outcome("d1", T0 + DAY, n=1))),
                                 (2, validate_event(outcome("d1", T0 + DAY, k=-0.0)))])
    assert (again.stored, again.duplicates) == (0, 2)
    command.downgrade(_alembic_config(engine), "0006")
    assert keys() == old
    engine.dispose()


_OPEN_WHEN_TOLD = """
import sys
from collectors.store.db import open_store
print("ready", flush=True)
sys.stdin.readline()
open_store(sys.argv[1]).dispose()
print("opened", flush=True)
"""


def test_a_new_store_opened_by_several_processes_at_once_is_migrated_once(db_url: str) -> None:
    """Producers starting together on a new store: one migrates, the others wait and find it done."""
    import subprocess
    import sys

    children = [subprocess.Popen([sys.executable, "-c", _OPEN_WHEN_TOLD, db_url], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for child in children:  # every child has imported everything before any opens the store
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 4, [err[-500:] for _out, err in results]
    assert all(out == "opened\n" for out, _err in results)
    engine = open_store(db_url)
    assert not needs_migration(engine)
    engine.dispose()
