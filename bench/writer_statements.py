"""Where the writer's time goes, by statement: thread CPU time of each kind of write over a load.

    python bench/writer_statements.py [FILE]     # default: the first 200k events of bench/ingest.py's file

Wraps the writer's `_insert`, `execute` and `_store_states` with a CPU clock and runs
`bench/writer.py`'s own load (`run_ours`) into a fresh SQLite store. Under
`valgrind --tool=callgrind` (slow: ~50x) the total instruction count compares two versions of
the writer whatever else the machine is doing (docs/performance.md, tenth session).
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import writer as bench_writer

import collectors.store.writer as store_writer


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(tempfile.gettempdir()) / "hitl-bench-200k.jsonl"
    if not path.exists():
        from ingest import write_events  # bench/ingest.py's generator

        write_events(path, 200_000)
    print(f"writer: {store_writer.__file__}")
    events, _ = bench_writer.prepared_events(path)
    spent: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def timed(name: str, label: Callable[[tuple[Any, ...]], str]) -> None:
        inner = getattr(store_writer, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.thread_time()
            try:
                return inner(*a, **k)
            finally:
                spent[label(a)] += time.thread_time() - started
                calls[label(a)] += 1
        setattr(store_writer, name, wrapper)

    timed("_insert", lambda a: f"insert {a[1]}")
    timed("execute", lambda a: f"execute {a[1][:40]}")
    timed("_store_states", lambda a: "store_states (UPDATE of stored decisions)")
    with tempfile.TemporaryDirectory() as folder:
        started = time.thread_time()
        bench_writer.run_ours(events, Path(folder) / "store.db")
        total = time.thread_time() - started
    for what, seconds in spent.most_common():
        print(f"{seconds / len(events) * 1e6:8.2f} us/event  {calls[what]:5d} calls  {what}")
    print(f"{total / len(events) * 1e6:8.2f} us/event  writer in all ({len(events):,} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
