"""Ingest benchmark: `hitl-tower ingest` beside peers on the same events, in one run.

    python bench/ingest.py                      # 1M events; SQLite, PostgreSQL and the peers
    python bench/ingest.py --events 200000 --no-postgres

Generates the events with `collectors.synth` (decisions, reviews, outcomes and
changes in time order), writes them as one JSON Lines file and runs, each in
its own child process so that peak memory (ru_maxrss) is per run:

- `hitl-tower ingest` into a fresh SQLite file (with its default worker processes,
  then with `--workers 0`, validating in the writer's process) and into throwaway
  PostgreSQL databases (created on --pg-url's server and dropped afterwards), with
  the default `--rollups auto` (which rebuilds the rollups at the end of a load this
  big) and with `--rollups keep` (upkeep batch by batch);
- peer: a bare `executemany` of the same rows into SQLite (orjson.loads per line,
  no validation, no idempotency, no hash chain, no derived state);
- peer: DuckDB `read_json` of the same file with an explicit schema;
- floor: SQLite's own share of our load, the rows `hitl-tower ingest` stored (events and
  decision states) copied by `INSERT ... SELECT` into a fresh store of the same schema and
  indexes, 10k events per transaction, no Python per row (timed inside the child, schema
  creation excluded): what SQLite itself costs, the rest of our time is Python's;
- `hitl-tower ingest` into SQLite on a quarter of the file, to show memory is flat.

Figures are noisy (PERFORMANCE.md): read the ratios measured in one run. This is
a figure, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# The contract's columns per type, for the peers (which store timestamps as given).
PEER_COLUMNS = {
    "decision": ("id", "proposed_at", "agent_id", "model_version", "policy_version", "risk_class", "queue",
                 "action_type", "confidence", "route", "model_cost", "segment", "policy_checks"),
    "review": ("id", "decision_id", "reviewer_id", "kind", "enqueued_at", "claimed_at", "decided_at",
               "verdict", "reason_code", "handle_seconds", "cost", "audit_probability"),
    "outcome": ("decision_id", "observed_at", "agent_correct", "final_correct", "error_cost", "agent_error_cost"),
    "change": ("id", "changed_at", "actor", "kind", "scope", "before", "after", "reason"),
}
JSON_FIELDS = {"segment", "policy_checks", "scope", "before", "after"}
DUCKDB_TYPES = {
    "type": "VARCHAR", "id": "VARCHAR", "proposed_at": "TIMESTAMPTZ", "agent_id": "VARCHAR",
    "model_version": "VARCHAR", "policy_version": "VARCHAR", "risk_class": "VARCHAR", "queue": "VARCHAR",
    "action_type": "VARCHAR", "confidence": "DOUBLE", "route": "VARCHAR", "model_cost": "DOUBLE",
    "segment": "JSON", "policy_checks": "JSON", "decision_id": "VARCHAR", "reviewer_id": "VARCHAR",
    "kind": "VARCHAR", "enqueued_at": "TIMESTAMPTZ", "claimed_at": "TIMESTAMPTZ", "decided_at": "TIMESTAMPTZ",
    "verdict": "VARCHAR", "reason_code": "VARCHAR", "handle_seconds": "DOUBLE", "cost": "DOUBLE",
    "audit_probability": "DOUBLE", "observed_at": "TIMESTAMPTZ", "agent_correct": "BOOLEAN",
    "final_correct": "BOOLEAN", "error_cost": "DOUBLE", "agent_error_cost": "DOUBLE",
    "changed_at": "TIMESTAMPTZ", "actor": "VARCHAR", "scope": "JSON", "before": "JSON", "after": "JSON",
    "reason": "VARCHAR",
}


@dataclass
class Run:
    """One measured child process."""

    name: str
    events: int
    seconds: float
    peak_mb: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# ---- data --------------------------------------------------------------------------------------

def write_events(path: Path, count: int) -> int:
    """Write the first `count` synthetic events (enough days of traffic to reach it) to `path`."""
    from collectors.synth import generate, write_jsonl

    per_day = 6000  # ~2.1 events per decision: about 12.6k events a day
    days = max(1, count // (per_day * 2) + 2)
    events = itertools.islice(generate(seed=1, days=days, decisions_per_day=per_day), count)
    return int(write_jsonl(path, events)["total"])


def first_lines(source: Path, target: Path, count: int) -> int:
    with open(source, "rb") as src, open(target, "wb") as dst:
        n = 0
        for line in itertools.islice(src, count):
            dst.write(line)
            n += 1
    return n


# ---- measuring ---------------------------------------------------------------------------------

def measure(name: str, argv: list[str], events: int) -> Run:
    """Run a child to completion: wall time, and its own peak RSS from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{stderr[-2000:]}")
    # the summary line (ingest prints the chain head after it), else the child's last line
    lines = stdout.strip().splitlines()
    note = next((line for line in lines if " stored, " in line), lines[-1] if lines else "")
    return Run(name, events, seconds, usage.ru_maxrss / 1024, note)  # ru_maxrss is in KiB on Linux


def ingest_argv(path: Path, url: str) -> list[str]:
    """The `hitl-tower ingest` command line (the installed script, else the module's entry point)."""
    exe = shutil.which("hitl-tower")
    head = [exe] if exe else [sys.executable, "-c", "from collectors.cli import main; main()"]
    return [*head, "ingest", str(path), "--db", url]


def child_argv(mode: str, path: Path | str, target: str) -> list[str]:
    return [sys.executable, __file__, "--child", mode, str(path), target]


def _child(mode: str, path: str, target: str) -> None:
    if mode == "generate":
        print(write_events(Path(path), int(target)))
        return
    if mode == "pg-create":
        print(pg_database(target, path))
        return
    if mode == "pg-drop":
        drop_pg_database(target, path)
        return
    if mode == "executemany":
        count = _bare_executemany(path, target)
    elif mode == "duckdb":
        count = _duckdb_read_json(path, target)
    elif mode == "sqlite-copy":
        count, seconds = _sqlite_copy(path, target)
        print(f"{count} rows copied in {seconds:.3f} s")
        return
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(f"{count} rows")


def _bare_executemany(path: str, target: str) -> int:
    """The peer: orjson per line, one executemany per table every 10k lines, commits, no checks."""
    import sqlite3

    import orjson

    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for etype, cols in PEER_COLUMNS.items():
        conn.execute(f"CREATE TABLE {etype}s ({', '.join(cols)}, extra)")
    sql = {t: f"INSERT INTO {t}s VALUES ({', '.join(['?'] * (len(c) + 1))})" for t, c in PEER_COLUMNS.items()}
    known = {t: set(c) | {"type"} for t, c in PEER_COLUMNS.items()}
    dumps, loads = orjson.dumps, orjson.loads
    rows: dict[str, list[tuple[object, ...]]] = {t: [] for t in PEER_COLUMNS}
    count = 0

    def flush() -> None:
        for etype, batch in rows.items():
            if batch:
                conn.executemany(sql[etype], batch)
                batch.clear()
        conn.commit()

    with open(path, "rb") as fh:
        for line in fh:
            obj = loads(line)
            etype = obj["type"]
            get = obj.get
            values = [dumps(v).decode() if k in JSON_FIELDS and v is not None else v
                      for k, v in ((k, get(k)) for k in PEER_COLUMNS[etype])]
            extra = {k: v for k, v in obj.items() if k not in known[etype]}
            values.append(dumps(extra).decode() if extra else None)
            rows[etype].append(tuple(values))
            count += 1
            if count % 10_000 == 0:
                flush()
    flush()
    conn.close()
    return count


def _sqlite_copy(source: str, target: str) -> tuple[int, float]:
    """The floor: copy a store's events and decision states into a fresh store, in C only."""
    from collectors.store.db import open_store

    # The schema by the migrations, and a driver connection with the store's own pragmas.
    engine = open_store(f"sqlite:///{target}")
    conn: Any = engine.raw_connection().driver_connection  # sqlite3.Connection
    conn.isolation_level = None  # BEGIN and COMMIT below, as written
    conn.execute("ATTACH ? AS source", (source,))
    tables = ("decisions", "reviews", "outcomes", "changes")
    for table, column in (*((t, "hash") for t in tables), ("decision_state", "final_verdict")):
        # Read every page once (a column outside any index), so the copy measures writing only.
        conn.execute(f"SELECT sum(length({column})) FROM source.{table}").fetchone()
    last = conn.execute("SELECT seq FROM source.chain_head").fetchone()[0]
    started = time.perf_counter()
    for low in range(0, last, 10_000):
        conn.execute("BEGIN")
        for table in tables:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM source.{table} WHERE seq > ? AND seq <= ?",
                         (low, low + 10_000))
        conn.execute("INSERT INTO main.decision_state SELECT * FROM source.decision_state "
                     "WHERE decision_seq > ? AND decision_seq <= ?", (low, low + 10_000))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    engine.dispose()
    return last, seconds


def _duckdb_read_json(path: str, target: str) -> int:
    import duckdb

    conn = duckdb.connect(target)
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in DUCKDB_TYPES.items()) + "}"
    conn.execute(f"CREATE TABLE events AS SELECT * FROM read_json('{path}', format = 'newline_delimited', "
                 f"columns = {columns})")
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    conn.close()
    return int(count)


# ---- PostgreSQL --------------------------------------------------------------------------------

def pg_database(admin_url: str, name: str) -> str:
    """Create the throwaway database `name` on the server of `admin_url`; its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1M)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server to make a throwaway database on")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    work = args.workdir or Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _helper(mode: str, path: str, target: str) -> str:
    """Run a helper step in a child (the parent stays small: children inherit its peak RSS)."""
    done = subprocess.run(child_argv(mode, Path(path), target), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def _run(args: argparse.Namespace, work: Path) -> int:
    data = work / "events.jsonl"
    t = time.perf_counter()
    total = int(_helper("generate", str(data), str(args.events)))
    quarter = work / "quarter.jsonl"
    small = first_lines(data, quarter, total // 4)
    print(f"{total:,} events ({data.stat().st_size / 1e6:,.0f} MB JSON Lines) generated in "
          f"{time.perf_counter() - t:.1f} s; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")

    for stale in ("ingest.db", "ingest-inline.db", "ingest-quarter.db", "peer.db", "peer.duckdb", "floor.db"):
        for leftover in work.glob(f"{stale}*"):  # a kept --workdir: each run starts from an empty store
            leftover.unlink()
    runs: list[Run] = []
    runs.append(measure("hitl-tower ingest -> SQLite", ingest_argv(data, f"sqlite:///{work / 'ingest.db'}"), total))
    runs.append(measure("hitl-tower ingest --workers 0 -> SQLite",
                        [*ingest_argv(data, f"sqlite:///{work / 'ingest-inline.db'}"), "--workers", "0"], total))
    if not args.no_postgres:
        # The default (--rollups auto) rebuilds the rollups after a load this big; keep, beside it,
        # upkeeps them batch by batch as a small load does.
        for label, extra in (("", []), (" --rollups keep", ["--rollups", "keep"])):
            name = f"hitl_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            url = _helper("pg-create", name, args.pg_url)
            try:
                runs.append(measure(f"hitl-tower ingest{label} -> PostgreSQL", [*ingest_argv(data, url), *extra],
                                    total))
            finally:
                _helper("pg-drop", name, args.pg_url)
    runs.append(measure("peer: bare executemany -> SQLite", child_argv("executemany", data, str(work / "peer.db")),
                        total))
    import importlib.util

    if importlib.util.find_spec("duckdb") is None:
        print("(duckdb not installed: pip install -e '.[bench]' for the DuckDB peer)")
    else:
        runs.append(measure("peer: DuckDB read_json (schema)", child_argv("duckdb", data, str(work / "peer.duckdb")),
                            total))
    floor = measure("floor: SQLite's share (C-only copy of our rows)",
                    child_argv("sqlite-copy", work / "ingest.db", str(work / "floor.db")), total)
    floor.seconds = float(floor.note.split(" in ")[1].split()[0])  # the copy alone, not the schema's creation
    runs.append(floor)
    small_run = measure(f"hitl-tower ingest -> SQLite, {small:,} events", ingest_argv(
        quarter, f"sqlite:///{work / 'ingest-quarter.db'}"), small)

    print(f"{'run':<48} {'events/s':>10} {'seconds':>9} {'peak RSS':>10}")
    for run in [*runs, small_run]:
        print(f"{run.name:<48} {run.rate:>10,.0f} {run.seconds:>9.1f} {run.peak_mb:>7.0f} MB")
    ours = runs[0]
    print()
    for run in runs[1:]:
        print(f"{run.name}: {run.rate / ours.rate:.2f}x the events/s of hitl-tower ingest -> SQLite")
    print(f"memory: peak RSS {small_run.peak_mb:.0f} MB at {small:,} events, {ours.peak_mb:.0f} MB at "
          f"{total:,} events ({ours.peak_mb / small_run.peak_mb:.2f}x for 4x the file)")
    for run in runs:
        if run.name.startswith("hitl-tower"):
            print(f"{run.name} summary: {run.note}")
    goal = 100_000
    print(f"goal >= {goal:,} events/s into SQLite: {'met' if ours.rate >= goal else 'not met'} "
          f"({ours.rate:,.0f} events/s, wall time including start-up and schema creation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
