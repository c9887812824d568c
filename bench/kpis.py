"""KPI benchmark: `compute_report` cold, from rollups and warm, beside DuckDB and a numpy floor, in one run.

    python bench/kpis.py                              # 1M decisions
    python bench/kpis.py --decisions 1000000 --decisions 10000000

For each size, synthetic traffic (`collectors.synth`: 90 days, ~0.7 reviews and
~0.55 outcomes per decision) is loaded once with the batch writer into SQLite
(bench/out/kpis-N/store.db) and PostgreSQL (database hitl_bench_kpis_N on
--pg-url's server) and exported to Parquet; later runs reuse them (--rebuild
to start over) and print how long the build took. Then, each in its own child
process (peak RSS from wait4), on the report of the last 30 days, total and
--by risk_class --by model_version, reference the 30 days before:

- report, cold path: `compute_report(use_rollups=False)`, the four raw SQL queries;
- report, fresh process: `compute_report` with the rollups (what `hitl-tower report` does);
- rebuild-rollups: the cold rebuild of every rollup row;
- warm refresh: a `LiveReport` reports once, 10k new events are written (timed apart),
  and it reports again (the refresh);
- peer: DuckDB over the Parquet export, the same KPIs from the raw events;
- floor: one numpy pass over the needed per-decision and per-review columns
  (derived columns given, so it does none of the joins; agreement left out).

Seconds are those of the operation inside the child (imports and start-up apart).
Figures are noisy (PERFORMANCE.md): read the ratios of one run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from child_process import run_child  # bench/child_process.py (the script's folder is on sys.path)

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OUT = Path(__file__).with_name("out")
DAYS = 90
WINDOW_DAYS = 30
BY = ["risk_class", "model_version"]
NEW_EVENTS = 10_000
SLAS = {"low": 86400.0, "medium": 14400.0, "high": 3600.0, "critical": 900.0}
DAY_US = 86_400_000_000


def windows() -> dict[str, int]:
    """The report window (last 30 days of the data), its reference (the 30 days before) and now."""
    from collectors.synth import DEFAULT_START

    end = int(DEFAULT_START.timestamp()) * 1_000_000 + DAYS * DAY_US
    start = end - WINDOW_DAYS * DAY_US
    return {"ws": start, "we": end, "rs": start - WINDOW_DAYS * DAY_US, "re": start, "now": end}


def _events(n: int):  # type: ignore[no-untyped-def]
    from collectors.synth import generate

    return generate(seed=11, days=DAYS, decisions_per_day=max(1, n // DAYS))


# ---- children ------------------------------------------------------------------------------------

def child_build(url: str, n: str) -> dict[str, Any]:
    """Load the synthetic events into the store at url with the ingest loader (batch writer)."""
    import orjson

    from collectors.ingest import Loader
    from collectors.store.db import open_store

    engine = open_store(url)
    started = time.perf_counter()
    loader = Loader(engine, batch_size=20_000)
    loader.load_lines("synth", (orjson.dumps(e) for e in _events(int(n))))
    summary = loader.finish()
    assert summary.rejected == 0, summary
    return {"seconds": time.perf_counter() - started, "note": f"{summary.stored} events"}


def child_copy(sqlite_url: str, pg: str) -> dict[str, Any]:
    """Copy every table of the SQLite store into the PostgreSQL store (COPY), then ANALYZE.

    The same rows as a build through the writer (which the 1M runs do: ~5 min per million
    decisions here), in a fraction of the time: for 10M decisions the writer would take hours.
    """
    import sqlite3

    import psycopg
    from sqlalchemy.engine import make_url

    from collectors.store.db import open_store
    from collectors.store.models import Base

    open_store(pg).dispose()  # the schema, by the migrations
    dsn = make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False)
    source = sqlite3.connect(make_url(sqlite_url).database or "")
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(dsn) as conn:
        tables = list(Base.metadata.sorted_tables)
        conn.execute("TRUNCATE " + ", ".join(t.name for t in tables))
        for table in tables:
            cols = [c.name for c in table.columns]
            names = ", ".join(f'"{c}"' for c in cols)
            cursor = source.execute(f"SELECT {names} FROM {table.name}")
            with conn.cursor().copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                while batch := cursor.fetchmany(50_000):
                    for row in batch:
                        copy.write_row(row)
                    rows += len(batch)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return {"seconds": time.perf_counter() - started, "note": f"copied {rows} rows from SQLite"}


def child_export(url: str, folder: str) -> dict[str, Any]:
    """Export the raw event tables to Parquet (the peer's input), in chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import text

    from collectors.store.db import open_store

    columns = {
        "decisions": "seq, id, proposed_at, risk_class, queue, model_version, agent_id, action_type, route, "
                     "confidence, model_cost",
        "reviews": "seq, id, decision_id, reviewer_id, kind, enqueued_at, claimed_at, decided_at, verdict, "
                   "handle_seconds, cost",
        "outcomes": "seq, decision_id, observed_at, agent_correct, final_correct, error_cost, agent_error_cost",
    }
    engine = open_store(url)
    started = time.perf_counter()
    with engine.connect() as conn:
        for table, cols in columns.items():
            result = conn.execution_options(yield_per=500_000).execute(text(f"SELECT {cols} FROM {table}"))
            names = [c.strip() for c in cols.split(",")]
            writer = None
            for rows in result.partitions(200_000):
                arrays = [pa.array(list(col)) for col in zip(*rows)]
                if table == "outcomes":
                    arrays[3], arrays[4] = arrays[3].cast(pa.bool_()), arrays[4].cast(pa.bool_())
                batch = pa.RecordBatch.from_arrays(arrays, names=names)
                if writer is None:
                    schema = batch.schema
                    for i, field in enumerate(schema):  # all-null chunks: fix the types from the first
                        if pa.types.is_null(field.type):
                            schema = schema.set(i, field.with_type(pa.float64()))
                    writer = pq.ParquetWriter(Path(folder) / f"{table}.parquet", schema)
                writer.write_batch(batch.cast(writer.schema) if batch.schema != writer.schema else batch)
            if writer is not None:
                writer.close()
    return {"seconds": time.perf_counter() - started}


def _config():  # type: ignore[no-untyped-def]
    from collectors.config import TowerConfig

    return TowerConfig()


def child_report(url: str, mode: str) -> dict[str, Any]:
    """One report in a fresh process: cold path or with rollups."""
    from collectors.engine.report import compute_report
    from collectors.store.db import open_store

    w = windows()
    engine = open_store(url)
    started = time.perf_counter()
    report = compute_report(engine, _config(), w["ws"], w["we"], BY, (w["rs"], w["re"]), w["now"],
                            use_rollups=mode == "rollups")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "total": report.total.kpis, "rows": len(report.rows)}


def child_rebuild(url: str) -> dict[str, Any]:
    from collectors.store.db import open_store
    from collectors.store.rollup import rebuild_rollups

    engine = open_store(url)
    started = time.perf_counter()
    count = rebuild_rollups(engine)
    return {"seconds": time.perf_counter() - started, "note": f"{count} decisions"}


def child_refresh(url: str, tag: str) -> dict[str, Any]:
    """A LiveReport reports, 10k new events arrive through the writer, it reports again."""
    import itertools

    from collectors.engine.live import LiveReport
    from collectors.engine.report import compute_report
    from collectors.store.db import open_store
    from collectors.store.writer import write_batch
    from collectors.synth import DEFAULT_START, generate
    from collectors.validate import validate_event

    w = windows()
    engine = open_store(url)
    live = LiveReport(engine, _config())
    started = time.perf_counter()
    live.report(w["ws"], w["we"], BY, (w["rs"], w["re"]), w["now"])
    first = time.perf_counter() - started
    when = DEFAULT_START + timedelta(days=DAYS - 2)
    fresh = itertools.islice(generate(seed=int(tag, 16) % 10_000, days=0.5, decisions_per_day=40_000,
                                      start=when, id_prefix=f"w{tag}-"), NEW_EVENTS)
    batch = [(i, validate_event(e)) for i, e in enumerate(fresh)]
    started = time.perf_counter()
    result = write_batch(engine, batch)
    ingest = time.perf_counter() - started
    assert result.stored == NEW_EVENTS and not result.rejected, result
    started = time.perf_counter()
    report = live.report(w["ws"], w["we"], BY, (w["rs"], w["re"]), w["now"])
    refresh = time.perf_counter() - started
    check = compute_report(engine, _config(), w["ws"], w["we"], BY, (w["rs"], w["re"]), w["now"])
    pairs = list(zip([report.total, *report.rows], [check.total, *check.rows]))
    exact = len(report.rows) == len(check.rows) and all(a.kpis == b.kpis for a, b in pairs)
    worst = max((_relative_gap(a.kpis[k], b.kpis[k]) for a, b in pairs for k in a.kpis), default=0.0)
    return {"seconds": refresh, "first": first, "ingest": ingest, "same": exact or worst <= 1e-9,
            "exact": exact, "worst_relative_gap": worst}


def _relative_gap(a: Any, b: Any) -> float:
    """0 for equal values, inf for a null against a number, else |a - b| / max(|a|, |b|): floats summed in
    another order (a refresh merges per-hour sums; a cold report sums in the database) differ in the last bits."""
    if a == b:
        return 0.0
    if not isinstance(a, float) or not isinstance(b, float):
        return float("inf")
    return abs(a - b) / max(abs(a), abs(b))


def _duckdb_kpis(folder: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The KPIs (total and per risk_class x model_version) from the Parquet files; and the floor's input."""
    import duckdb

    w = windows()
    p = {k: Path(folder) / f"{k}.parquet" for k in ("decisions", "reviews", "outcomes")}
    con = duckdb.connect()
    con.execute(f"""
    CREATE TEMP TABLE wd AS
    WITH d AS (SELECT * FROM read_parquet('{p['decisions']}') WHERE proposed_at >= {w['rs']} AND proposed_at < {w['we']}),
    r AS (SELECT r.* FROM read_parquet('{p['reviews']}') r SEMI JOIN d ON r.decision_id = d.id),
    fin AS (SELECT decision_id, arg_max(verdict, (decided_at, id)) AS verdict FROM r
            WHERE kind <> 'audit' AND verdict <> 'escalate' GROUP BY decision_id),
    cost AS (SELECT decision_id, sum(cost) AS explicit,
             sum(CASE WHEN cost IS NULL THEN coalesce(handle_seconds, (decided_at - claimed_at) / 1e6, 0) END) AS secs
             FROM r GROUP BY decision_id),
    o AS (SELECT decision_id, arg_max(struct_pack(a := agent_correct, f := final_correct, e := error_cost,
                                                  ae := agent_error_cost), (observed_at, seq)) AS o
          FROM read_parquet('{p['outcomes']}') o SEMI JOIN d ON o.decision_id = d.id GROUP BY decision_id)
    SELECT d.proposed_at >= {w['ws']} AS cur, d.risk_class, d.model_version, d.confidence,
           least(floor(10 * d.confidence), 9)::INTEGER AS bin, coalesce(d.model_cost, 0) AS model_cost,
           coalesce(fin.verdict, CASE WHEN d.route = 'auto' THEN 'auto' ELSE 'pending' END) AS fv, d.proposed_at,
           o.o IS NOT NULL AS has_o, coalesce(o.o.a, false) AS ac, coalesce(o.o.f, false) AS fc,
           coalesce(o.o.e, 0) AS ec, o.o.ae AS aec, coalesce(cost.explicit, 0) AS rcost, coalesce(cost.secs, 0) AS rsecs
    FROM d LEFT JOIN fin ON fin.decision_id = d.id LEFT JOIN o ON o.decision_id = d.id
           LEFT JOIN cost ON cost.decision_id = d.id
    """)
    groups = con.execute("""
    SELECT GROUPING(risk_class, model_version) = 0 AS sliced, risk_class, model_version, bin, cur,
      count(*), count(*) FILTER (fv <> 'pending'), count(*) FILTER (fv IN ('edit', 'reject')),
      count(*) FILTER (fv = 'auto'), count(*) FILTER (fv = 'pending'), min(proposed_at) FILTER (fv = 'pending'),
      count(*) FILTER (has_o), coalesce(sum(confidence) FILTER (has_o), 0), count(*) FILTER (has_o AND ac),
      coalesce(sum((confidence - ac::INTEGER) ^ 2) FILTER (has_o), 0),
      count(*) FILTER (has_o AND fv IN ('edit', 'reject')),
      count(*) FILTER (has_o AND fv IN ('edit', 'reject') AND NOT ac),
      count(*) FILTER (has_o AND fv IN ('edit', 'reject') AND NOT fc),
      count(*) FILTER (has_o AND fv IN ('edit', 'reject') AND ac AND NOT fc),
      coalesce(sum(coalesce(aec, 0)) FILTER (has_o AND fv IN ('edit', 'reject')), 0),
      coalesce(sum(ec) FILTER (has_o AND fv IN ('edit', 'reject')), 0),
      sum(model_cost) + sum(rcost) + sum(rsecs) * 60.0 / 3600
    FROM wd GROUP BY GROUPING SETS ((bin, cur), (risk_class, model_version, bin, cur))
    """).fetchall()
    sla = " ".join(f"WHEN '{k}' THEN {v}" for k, v in SLAS.items())
    latency = con.execute(f"""
    SELECT GROUPING(risk_class, model_version) = 0, risk_class, model_version,
           quantile_cont(lat, [0.5, 0.9, 0.99]), count(*), count(*) FILTER (lat > sla)
    FROM (SELECT d.risk_class, d.model_version, (r.decided_at - r.enqueued_at) / 1e6 AS lat,
                 CASE d.risk_class {sla} ELSE 14400.0 END AS sla
          FROM read_parquet('{p['reviews']}') r JOIN read_parquet('{p['decisions']}') d ON d.id = r.decision_id
          WHERE r.kind = 'primary' AND r.decided_at >= {w['ws']} AND r.decided_at < {w['we']})
    GROUP BY GROUPING SETS ((), (risk_class, model_version))
    """).fetchall()
    agreement = con.execute(f"""
    WITH d AS (SELECT id, risk_class, model_version FROM read_parquet('{p['decisions']}')
               WHERE proposed_at >= {w['ws']} AND proposed_at < {w['we']}),
    lr AS (SELECT r.decision_id, r.reviewer_id, arg_max(r.verdict, (r.decided_at, r.id)) AS v
           FROM read_parquet('{p['reviews']}') r SEMI JOIN d ON r.decision_id = d.id GROUP BY 1, 2),
    u AS (SELECT decision_id, count(*) AS m FROM lr GROUP BY 1 HAVING count(*) >= 2),
    c AS (SELECT lr.decision_id, v, count(*) AS k, any_value(u.m) AS m FROM lr JOIN u USING (decision_id) GROUP BY 1, 2)
    SELECT GROUPING(risk_class, model_version) = 0, risk_class, model_version, v,
           sum(k), sum(k * (k - 1) / (m - 1))
    FROM c JOIN d ON d.id = c.decision_id GROUP BY GROUPING SETS ((v), (risk_class, model_version, v))
    """).fetchall()
    kpis = _peer_kpis(groups, latency, agreement)
    floor_input = con.execute("SELECT * FROM wd").fetchnumpy()
    lat = con.execute(f"""
    SELECT d.risk_class, d.model_version, r.decided_at - r.enqueued_at AS lat_us
    FROM read_parquet('{p['reviews']}') r JOIN read_parquet('{p['decisions']}') d ON d.id = r.decision_id
    WHERE r.kind = 'primary' AND r.decided_at >= {w['ws']} AND r.decided_at < {w['we']}""").fetchnumpy()
    return kpis, {"wd": floor_input, "lat": lat}


def _peer_kpis(groups: list[Any], latency: list[Any], agreement: list[Any]) -> dict[str, Any]:
    """Final arithmetic of the peer's aggregates: the total's KPIs (rows are computed the same way)."""
    import math

    cur = [g for g in groups if not g[0] and g[4]]
    ref = [g for g in groups if not g[0] and not g[4]]
    n = sum(g[5] for g in cur)
    resolved, interv = sum(g[6] for g in cur), sum(g[7] for g in cur)
    n_o = sum(g[11] for g in cur)
    ece = sum(g[11] / n_o * abs(g[13] / g[11] - g[12] / g[11]) for g in cur if g[11]) if n_o else None
    pop_c = {g[3]: g[5] for g in cur}
    pop_r = {g[3]: g[5] for g in ref}
    nr = sum(pop_r.values())
    psi = 0.0
    for b in range(10):
        q, pp = max(pop_c.get(b, 0) / n, 1e-4), max(pop_r.get(b, 0) / nr, 1e-4)
        psi += (q - pp) * math.log(q / pp)
    total_lat = next(row for row in latency if not row[0])
    values = {row[3]: row[4] for row in agreement if not row[0]}
    o_cc = sum(row[5] for row in agreement if not row[0])
    nv = sum(values.values())
    alpha = 1 - (nv - 1) * (nv - o_cc) / (nv * nv - sum(v * v for v in values.values()))
    return {"decisions": n, "intervention_rate": interv / resolved, "ece": ece, "psi": psi,
            "latency_p50_seconds": total_lat[3][0], "latency_p99_seconds": total_lat[3][2],
            "agreement_alpha": alpha, "cost_per_decision": sum(g[21] for g in cur) / n}


def child_duckdb(folder: str) -> dict[str, Any]:
    started = time.perf_counter()
    kpis, _ = _duckdb_kpis(folder)
    return {"seconds": time.perf_counter() - started, "total": kpis}


def child_floor(folder: str) -> dict[str, Any]:
    """The floor: the window's derived columns already in memory, one vectorised pass."""
    import numpy as np

    _, data = _duckdb_kpis(folder)
    wd, lat = data["wd"], data["lat"]
    slices = {k: i for i, k in enumerate(sorted(set(zip(wd["risk_class"], wd["model_version"]))))}
    code = np.fromiter((slices[k] for k in zip(wd["risk_class"], wd["model_version"])), np.int64, len(wd["cur"]))
    fv = {v: i for i, v in enumerate(["pending", "auto", "approve", "edit", "reject"])}
    verdict = np.fromiter((fv[v] for v in wd["fv"]), np.int8, len(wd["cur"]))
    lat_code = np.fromiter((slices.get(k, 0) for k in zip(lat["risk_class"], lat["model_version"])), np.int64,
                           len(lat["lat_us"]))
    sla = np.fromiter((SLAS.get(r, 14400.0) for r in lat["risk_class"]), np.float64, len(lat["lat_us"]))
    started = time.perf_counter()
    cur, b, conf = wd["cur"].astype(np.int64), wd["bin"].astype(np.int64), wd["confidence"]
    has, ac, fc = wd["has_o"], wd["ac"], wd["fc"]
    cell = (code * 10 + b) * 2 + cur
    size = len(slices) * 20
    over = has & (verdict >= 3)
    aec = np.nan_to_num(np.asarray(wd["aec"], dtype=np.float64))
    sums = [np.bincount(cell, weights=w, minlength=size) for w in (
        None, verdict != 0, verdict >= 3, verdict == 1, verdict == 0, has, np.where(has, conf, 0.0), has & ac,
        np.where(has, (conf - ac) ** 2, 0.0), over, over & ~ac, over & ~fc, over & ac & ~fc,
        np.where(over, aec, 0.0), np.where(over, wd["ec"], 0.0), wd["model_cost"] + wd["rcost"] + wd["rsecs"] / 60)]
    seconds = lat["lat_us"] / 1e6
    order = np.argsort(lat_code, kind="stable")
    bounds = np.searchsorted(lat_code[order], np.arange(len(slices) + 1))
    quantiles = [np.percentile(seconds, [50, 90, 99])]
    for s in range(len(slices)):
        part = seconds[order[bounds[s]:bounds[s + 1]]]
        if part.size:
            quantiles.append(np.percentile(part, [50, 90, 99]))
    breach = np.bincount(lat_code, weights=seconds > sla, minlength=len(slices))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "note": f"{len(sums)} sums x {size} cells, {len(quantiles)} percentile sets, "
                                        f"{int(breach.sum())} breaches"}


CHILDREN = {"build": child_build, "copy": child_copy, "export": child_export, "report": child_report, "rebuild": child_rebuild,
            "refresh": child_refresh, "duckdb": child_duckdb, "floor": child_floor}


def _run_child(argv: list[str]) -> None:
    result = CHILDREN[argv[0]](*argv[1:])
    print(json.dumps(result, default=str))


# ---- parent --------------------------------------------------------------------------------------

def measure(*args: str) -> dict[str, Any]:
    """Run one child; its JSON result plus peak_mb (its own peak RSS)."""
    return run_child(__file__, *args)


def pg_url(admin: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def ensure_pg(admin: str, name: str, fresh: bool) -> bool:
    """Create the database if missing (drop it first if fresh); True when it was created."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
        return not exists


def build(n: int, args: argparse.Namespace) -> tuple[Path, str, str, dict[str, Any]]:
    """The SQLite store, the PostgreSQL store and the Parquet export of n decisions (reused if built).

    Each stage leaves a marker (stage-NAME.json with its timing) when it completes, so an
    interrupted build resumes at the stage it was in; --rebuild starts over.
    """
    folder = args.out / f"kpis-{n}"
    sqlite_url = f"sqlite:///{folder / 'store.db'}"
    pg_name = f"hitl_bench_kpis_{n}"
    pg = pg_url(args.pg_url, pg_name)
    if args.rebuild and folder.exists():
        for f in folder.glob("*"):
            f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    legacy = folder / "built.json"  # one marker for all stages (earlier versions of this script)
    built: dict[str, Any] = json.loads(legacy.read_text()) if legacy.exists() else {}

    def stage(name: str, run: Any) -> None:
        marker = folder / f"stage-{name}.json"
        if name not in built and not marker.exists():
            marker.write_text(json.dumps(run()))
        if name not in built:
            built[name] = json.loads(marker.read_text())

    def sqlite_build() -> dict[str, Any]:
        for f in folder.glob("store.db*"):
            f.unlink()
        print(f"  building {n:,} decisions on sqlite ...", flush=True)
        return measure("build", sqlite_url, str(n))

    def pg_build() -> dict[str, Any]:
        ensure_pg(args.pg_url, pg_name, fresh=True)
        if args.pg_copy:
            print("  copying the SQLite store into postgresql ...", flush=True)
            return measure("copy", sqlite_url, pg)
        print(f"  building {n:,} decisions on postgresql ...", flush=True)
        return measure("build", pg, str(n))

    def export() -> dict[str, Any]:
        print("  exporting Parquet ...", flush=True)
        return measure("export", sqlite_url, str(folder))

    stage("sqlite", sqlite_build)
    if not args.no_postgres:
        stage("postgresql", pg_build)
    stage("parquet", export)
    return folder, sqlite_url, pg, built


def bench(n: int, args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    folder, sqlite_url, pg, built = build(n, args)
    for name, run in built.items():
        print(f"  build {name}: {run['seconds']:.0f} s ({run.get('note', '')}), peak {run['peak_mb']:.0f} MB")
    results: list[tuple[str, str, dict[str, Any]]] = []
    results.append(("peer: DuckDB over Parquet", "duckdb", measure("duckdb", str(folder))))
    results.append(("floor: numpy pass", "numpy", measure("floor", str(folder))))
    engines = [("sqlite", sqlite_url)] + ([] if args.no_postgres else [("postgresql", pg)])
    for name, url in engines:
        print(f"  measuring {name} ...", flush=True)
        results.append(("report, cold path (raw SQL)", name, measure("report", url, "cold")))
        results.append(("report, fresh process (rollups)", name, measure("report", url, "rollups")))
        results.append(("rebuild-rollups (cold rebuild)", name, measure("rebuild", url)))
        tag = uuid.uuid4().hex[:8]
        refresh = measure("refresh", url, tag)
        results.append(("warm refresh after 10k events", name, refresh))
        results.append(("  (write of those 10k events)", name, {**refresh, "seconds": refresh["ingest"]}))
    return results


def print_table(n: int, results: list[tuple[str, str, dict[str, Any]]]) -> None:
    duck = next(r for w, e, r in results if e == "duckdb")["seconds"]
    floor = next(r for w, e, r in results if e == "numpy")["seconds"]
    print(f"\n{n:,} decisions, window {WINDOW_DAYS} days of {DAYS}, total + by risk_class x model_version")
    print(f"{'what':34} {'engine':11} {'seconds':>9} {'x DuckDB':>9} {'x floor':>9} {'peak MB':>8}")
    for what, engine, r in results:
        print(f"{what:34} {engine:11} {r['seconds']:9.3f} {r['seconds'] / duck:9.2f} {r['seconds'] / floor:9.0f} "
              f"{r['peak_mb']:8.0f}")
    ours = [r for w, e, r in results if w.startswith("report, cold")]
    peer = next(r for w, e, r in results if e == "duckdb")["total"]
    for r in ours:
        diffs = {k: (r["total"][k], v) for k, v in peer.items()
                 if v is not None and abs(r["total"][k] - v) > 1e-6 * max(1.0, abs(v))}
        print("peer check:", "DuckDB agrees on " + ", ".join(peer) if not diffs else f"DIFFERS {diffs}")
    for w, e, r in results:
        if w.startswith("warm refresh"):
            print(f"warm refresh on {e}: first report {r['first']:.2f} s, refreshed report equals compute_report: "
                  f"{r['same']} (" + ("bit for bit)" if r.get("exact") else
                                      f"largest relative gap {r.get('worst_relative_gap', 0.0):.1e}: float sums "
                                      "in another order)"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _run_child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, action="append", help="store size(s); default 1000000")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the stores even if built")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-copy", action="store_true",
                        help="fill PostgreSQL by copying the SQLite store's tables (COPY) instead of the writer")
    parser.add_argument("--build-only", action="store_true",
                        help="build (or keep) the stores and the Parquet export, measure nothing")
    args = parser.parse_args(argv)
    for n in args.decisions or [1_000_000]:
        print(f"== {n:,} decisions", flush=True)
        if args.build_only:
            for name, run in build(n, args)[3].items():
                print(f"  build {name}: {run['seconds']:.0f} s, peak {run['peak_mb']:.0f} MB")
            continue
        print_table(n, bench(n, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
