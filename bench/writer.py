"""The SQLite writer alone, beside bare inserts of the same rows, in one process.

    python bench/writer.py                        # 1M events from bench/ingest.py's generator
    python bench/writer.py --events 200000
    python bench/writer.py --file events.jsonl

`bench/ingest.py` times whole loads (reading, worker processes, writer). This one isolates the
writer's process: every line is prepared first (timed, in this process), then

- ours: `collectors.store.writer.write_prepared` in batches of 10k into a fresh store (idempotency
  lookups, hash chain, event rows, decision states, rollups), timed per 100k events, so a
  slowdown as the store grows shows;
- peer: the same prepared rows with their chain hashes, one plain `executemany` INSERT per table
  and batch into a fresh store of the same schema and indexes, one transaction per batch: what
  SQLite and the driver cost for the rows alone. The difference is our per-batch upkeep;
- peer, json_each: the same rows handed over as one JSON array per table and batch, unpacked by
  SQLite's json_each in C (one bound parameter instead of one per cell): whether the driver's
  per-cell binding, the largest part of the peer, can be skipped this way.

The cyclic GC is off for both, as in `hitl-tower ingest`. Figures are noisy (PERFORMANCE.md):
read the ratio of the two lines of one run. Not a test.

Last, the CPU budget of a load: preparing a line (a worker's job), sending it from a worker to the
writer (pickle out and in), and writing it, in CPU microseconds per event, and the best rate any
split of that work over this machine's CPUs could reach (the sum over the CPUs, and never above
the writer alone, which is one process).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 10_000
REPORT_EVERY = 100_000


def prepared_events(path: Path) -> tuple[list[tuple[int, Any]], float]:
    """(number, prepared event) of every line, and the seconds preparing them took."""
    from collectors.store.line_preparers import prepare_line

    events: list[tuple[int, Any]] = []
    started = time.perf_counter()
    with path.open("rb") as fh:
        for number, line in enumerate(fh):
            event = prepare_line(line.rstrip(b"\n"))
            if event is not None:
                events.append((number, event))
    return events, time.perf_counter() - started


def run_ours(events: list[tuple[int, Any]], db: Path) -> float:
    """Seconds `write_prepared` takes for all events; prints the rate of every 100k."""
    from collectors.store.db import open_store
    from collectors.store.writer import write_prepared

    engine = open_store(f"sqlite:///{db}")
    stored, started = 0, time.perf_counter()
    lap, since = started, 0
    for i in range(0, len(events), BATCH):
        stored += write_prepared(engine, events[i:i + BATCH]).stored
        done = min(i + BATCH, len(events))
        if done % REPORT_EVERY == 0 or done == len(events):
            now = time.perf_counter()
            print(f"  ours, events {since:>9,}-{done:<9,} {(now - lap) / (done - since) * 1e6:6.2f} us/event",
                  flush=True)
            lap, since = now, done
    engine.dispose()
    if stored != len(events):
        raise SystemExit(f"the writer stored {stored} of {len(events)} events")
    return time.perf_counter() - started


def run_peer(events: list[tuple[int, Any]], db: Path, json_each: bool = False) -> float:
    """Seconds plain executemany INSERTs of the same rows (with chain hashes) take.

    json_each: instead, each table's batch goes to SQLite as one JSON array (orjson) that one
    `INSERT ... SELECT value->>0, ... FROM json_each(?)` unpacks in C: one parameter per batch instead
    of one per cell. Timed with the array's making."""
    import orjson

    from collectors.store.chain import GENESIS, link_hash
    from collectors.store.db import open_store
    from collectors.store.prepared import COLUMNS, HASH_INDEX

    engine = open_store(f"sqlite:///{db}")
    conn: Any = engine.raw_connection().driver_connection  # sqlite3.Connection, the store's pragmas
    tables = {"decision": "decisions", "review": "reviews", "outcome": "outcomes", "change": "changes"}
    sql = {etype: f"INSERT INTO {table} ({', '.join(COLUMNS[etype])}) "
                  f"VALUES ({', '.join(['?'] * len(COLUMNS[etype]))})" for etype, table in tables.items()}
    if json_each:
        sql = {etype: f"INSERT INTO {table} ({', '.join(COLUMNS[etype])}) SELECT "
                      f"{', '.join(f'value->>{i}' for i in range(len(COLUMNS[etype])))} FROM json_each(?)"
               for etype, table in tables.items()}
    started = time.perf_counter()
    chain, seq = GENESIS, 0
    for i in range(0, len(events), BATCH):
        rows: dict[str, list[list[Any]]] = {etype: [] for etype in tables}
        for _number, (etype, _key, canonical, values, _decision) in events[i:i + BATCH]:
            seq += 1
            chain = link_hash(chain, canonical)
            row = list(values)
            row[0], row[HASH_INDEX[etype]] = seq, chain
            rows[etype].append(row)
        for etype, batch in rows.items():
            if batch and json_each:
                conn.execute(sql[etype], (orjson.dumps(batch).decode(),))
            elif batch:
                conn.executemany(sql[etype], batch)
        conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    engine.dispose()
    return seconds


def transfer_us(events: list[tuple[int, Any]], chunk: int = 2_000) -> float:
    """CPU microseconds per event to send prepared events between processes (pickle out and in)."""
    import pickle

    sample = events[:50 * chunk]
    started = time.perf_counter()
    for i in range(0, len(sample), chunk):
        pickle.loads(pickle.dumps(sample[i:i + chunk], protocol=pickle.HIGHEST_PROTOCOL))
    return (time.perf_counter() - started) / len(sample) * 1e6


def print_budget(prepare_us: float, transfer: float, writer_us: float) -> None:
    """The per-event CPU cost of a load by part, and the rate ceiling it implies on this machine."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    total = prepare_us + transfer + writer_us
    ceiling = min(cpus / total, 1 / writer_us) * 1e6
    print(f"CPU budget per event: prepare {prepare_us:.2f} us + transfer {transfer:.2f} us + write "
          f"{writer_us:.2f} us = {total:.2f} us")
    print(f"ceiling on {cpus} CPU(s), with every part perfectly parallel: {ceiling:,.0f} events/s "
          f"(100k events/s needs {cpus * 10:.0f} us of CPU per event at most, and the writer under 10 us)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1M)")
    parser.add_argument("--file", type=Path, help="JSON Lines file to use instead of generated events")
    args = parser.parse_args(argv)
    gc.disable()
    with tempfile.TemporaryDirectory(prefix="hitl-bench-writer-") as tmp:
        work = Path(tmp)
        path = args.file
        if path is None:
            sys.path.insert(0, str(Path(__file__).parent))
            from ingest import write_events

            path = work / "events.jsonl"
            write_events(path, args.events)
        events, prepare_seconds = prepared_events(path)
        n = len(events)
        print(f"{n:,} events; preparing them in this process: {prepare_seconds / n * 1e6:.2f} us/event", flush=True)
        transfer = transfer_us(events)
        gc.freeze()
        ours = run_ours(events, work / "ours.db")
        peer = run_peer(events, work / "peer.db")
        unpacked = run_peer(events, work / "json_each.db", json_each=True)
    print(f"ours: write_prepared                 {n / ours:>9,.0f} events/s  {ours:6.1f} s  "
          f"{ours / n * 1e6:5.2f} us/event")
    print(f"peer: executemany of the same rows   {n / peer:>9,.0f} events/s  {peer:6.1f} s  "
          f"{peer / n * 1e6:5.2f} us/event")
    print(f"peer: json_each of the same rows     {n / unpacked:>9,.0f} events/s  {unpacked:6.1f} s  "
          f"{unpacked / n * 1e6:5.2f} us/event  (SQLite unpacking a JSON array per batch)")
    print(f"ours / peer: {ours / peer:.2f}x; the writer's upkeep (idempotency, state, rollups) "
          f"{(ours - peer) / n * 1e6:.2f} us/event")
    print_budget(prepare_seconds / n * 1e6, transfer, ours / n * 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
