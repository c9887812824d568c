"""Dashboard page-load benchmark: every page, cold and warm, on the demo store and on a 1M-decision store.

    python bench/dashboard.py                       # demo-sized store + 1M decisions
    python bench/dashboard.py --decisions 1000000 --window "last 30d"
    python bench/dashboard.py --db sqlite:///hitl-demo.db     # an existing store

Each page runs through Streamlit's AppTest (the page script, every engine call
it makes through `collectors.dashboard_data` / `collectors.advice`, and its
plotly figures; not the browser's rendering), in a child process of its own:

- first: the first load in a fresh process (Python imports, the engine's
  connection pool, empty caches): the first visitor after a restart;
- cold: the data caches emptied (`st.cache_data.clear()` and the Steer pages'
  shared frames), the server warm: a visit after the cache TTL, or a window
  or filter not seen before (each page in its own process, so no page here
  profits from another's frame, as the second Steer page of a visit would);
- warm: the same page again within the cache TTL (what a page switch, a
  filter change back or the Overview's auto-refresh mostly costs).

Beside them, as the reference, `hitl-tower report`'s engine call
(`compute_report` with rollups, total + by risk_class) on the same window in
the same child: a page is its KPI reads plus drawing, so "x report" tells how
much a page adds to the engine's own cost. Peak memory is the child's RSS.

Stores: the demo store (`collectors.demo_run.generate_and_ingest`, 30 days
x 2,000 decisions, as `hitl-tower demo` builds it) and synthetic traffic of
--decisions over 90 days (`collectors.synth`, ~11k decisions a day at 1M),
built once under bench/out/ and reused. Figures are noisy (PERFORMANCE.md):
read them against the reference of the same run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from child_process import run_child  # bench/child_process.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("out")
MAIN = ROOT / "app" / "main.py"
PAGES = ("overview", "calibration", "operations", "overrides_cost", "agreement", "fairness", "alerts",
         "cost_curves", "autonomy", "changes", "quality", "triage")


# ---- children ------------------------------------------------------------------------------------

def child_build(url: str, kind: str, n: str) -> dict[str, Any]:
    """Build the store: the demo's (kind demo) or n decisions over 90 days (kind synth)."""
    import orjson

    from collectors.store.db import open_store

    engine = open_store(url)
    started = time.perf_counter()
    if kind == "demo":
        from collectors.demo_run import generate_and_ingest

        summary = generate_and_ingest(engine, seed=7, days=30, decisions_per_day=2000)
    else:
        from collectors.ingest import Loader
        from collectors.synth import generate

        loader = Loader(engine, batch_size=20_000)
        loader.load_lines("synth", (orjson.dumps(e) for e in generate(seed=11, days=90,
                                                                       decisions_per_day=int(n) // 90)))
        summary = loader.finish()
    assert summary.rejected == 0, summary
    return {"seconds": time.perf_counter() - started, "events": summary.stored}


def child_page(url: str, page: str, window: str) -> dict[str, Any]:
    """Load one page cold then warm with AppTest; the engine's report of the window as the reference."""
    import logging

    os.environ["HITL_TOWER_DB_URL"] = url
    logging.disable(logging.WARNING)  # AppTest's "missing ScriptRunContext" chatter
    from streamlit.testing.v1 import AppTest

    from collectors.config import load_config
    from collectors.dashboard_data import window_bounds
    from collectors.engine.report import compute_report
    from collectors.store.db import decision_time_range, open_store

    def load() -> tuple[float, list[str]]:
        at = AppTest.from_file(str(MAIN), default_timeout=1800)
        at.session_state["window"] = window
        at.switch_page(f"views/{page}.py")
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
        problems = [str(e.value)[:200] for e in at.exception] + [str(e.value)[:200] for e in at.error]
        return seconds, problems

    import streamlit as st

    from app import common

    first, problems = load()
    st.cache_data.clear()
    common._frames().clear()  # the Steer pages' shared window frames expire with the data cache
    cold, _ = load()
    warm, _ = load()
    engine = open_store(url, create=False)
    start, end = window_bounds(decision_time_range(engine)[1], window)  # type: ignore[index]
    started = time.perf_counter()
    compute_report(engine, load_config(), start, end, by=["risk_class"])
    report = time.perf_counter() - started
    return {"first": first, "cold": cold, "warm": warm, "report": report, "problems": problems}


CHILDREN = {"build": child_build, "page": child_page}


# ---- parent --------------------------------------------------------------------------------------

def measure(*args: str) -> dict[str, Any]:
    """Run one child; its JSON result plus peak_mb (its own peak RSS)."""
    return run_child(__file__, *args, cwd=ROOT)


def store(args: argparse.Namespace, kind: str, n: int) -> str:
    """The store's URL, built under bench/out/ unless it is there already."""
    folder = args.out / ("dashboard-demo" if kind == "demo" else f"dashboard-{n}")
    url = f"sqlite:///{folder / 'store.db'}"
    marker = folder / "built.json"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for f in folder.glob("store.db*"):
            f.unlink()
        print(f"  building the {kind} store ({n:,} decisions) ...", flush=True)
        marker.write_text(json.dumps(measure("build", url, kind, str(n))))
    built = json.loads(marker.read_text())
    print(f"  store {url}: {built['events']:,} events, built in {built['seconds']:.0f} s", flush=True)
    return url


def bench_store(label: str, url: str, window: str) -> None:
    print(f"\n{label}, window {window!r}: seconds per page load (AppTest), reference = compute_report of the window")
    print(f"{'page':16} {'first s':>8} {'cold s':>8} {'warm s':>8} {'report s':>9} {'cold x report':>14} "
          f"{'peak MB':>8}  problems")
    for page in PAGES:
        r = measure("page", url, page, window)
        ratio = r["cold"] / r["report"] if r["report"] else float("nan")
        print(f"{page:16} {r['first']:8.2f} {r['cold']:8.2f} {r['warm']:8.2f} {r['report']:9.2f} {ratio:14.1f} {r['peak_mb']:8.0f}  "
              f"{'; '.join(r['problems']) or '-'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(CHILDREN[argv[1]](*argv[2:]), default=str))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000, help="size of the large store (0: none)")
    parser.add_argument("--window", action="append", help='window(s) to load, default "last 7d" (the default)')
    parser.add_argument("--db", help="measure this store instead of building the demo and large ones")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    windows = args.window or ["last 7d"]
    started = time.time()
    stores = [("given store", args.db)] if args.db else [("demo store (30 d x 2,000)", store(args, "demo", 60_000))]
    if not args.db and args.decisions:
        stores.append((f"{args.decisions:,} decisions over 90 days", store(args, "synth", args.decisions)))
    for label, url in stores:
        for window in windows:
            bench_store(label, url, window)
    print(f"\n(total {time.time() - started:.0f} s; started {time.strftime('%H:%M UTC', time.gmtime(started))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
