"""Shared fixtures: a fresh store per test on SQLite and on the real PostgreSQL server.

PostgreSQL tests run in a database made for this pytest run, each test in its
own schema, so runs and tests never collide. Set HITL_TEST_PG_URL to
point at another server (default: postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw new examples on every developer run (that is how they find the odd case);
# CI (.ci/run sets HYPOTHESIS_PROFILE=ci) draws the same ones each time, so a landing never hangs
# on a draw nobody has seen before. The explicit @settings of a test keep their example counts.
# No test fails on wall-clock time (performance lives in bench/): hypothesis' 200 ms deadline per
# example failed two property tests of a CI run on a loaded machine (DeadlineExceeded, FlakyFailure).
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PG_ADMIN_URL = os.environ.get(
    "HITL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _psycopg_dsn(sqlalchemy_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Put the real `__main__` back after each test.

    Streamlit's AppTest installs each page it runs as `__main__` and leaves it there. A process
    spawned later in the same interpreter (the ingest parse pool) re-imports `__main__` on start-up,
    so it would run that page, fail for want of its store, and break the pool.
    """
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test run; dropped at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"hitl_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(_psycopg_dsn(PG_ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - CI always has PostgreSQL
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_psycopg_dsn(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_schema_url(pg_database: str) -> str:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_psycopg_dsn(pg_database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty store, once on SQLite (a file) and once on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return _pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite store in a temporary folder."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def config():  # type: ignore[no-untyped-def]
    """The shipped default config."""
    from collectors.config import TowerConfig

    return TowerConfig()


@pytest.fixture(scope="session")
def synth_url_30d(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 days x 300 decisions of the demo world (planted incidents) ending now, built once per run.

    Shared by the decision-support tests and their pages: read it, never write to it.
    """
    from tests.app_helpers import build_synth_store

    return build_synth_store(tmp_path_factory.mktemp("synth30"), days=30, decisions_per_day=300)


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Empty Streamlit's data and resource caches before and after a test (pages cache store reads)."""
    import streamlit

    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
    yield
    streamlit.cache_data.clear()
    streamlit.cache_resource.clear()
