"""Decision-support benchmark: the per-decision frame and every advice part, beside a plain-SQL floor.

    python bench/advice.py                        # 300k decisions over 30 days
    python bench/advice.py --decisions 1000000

Synthetic traffic (`collectors.synth`, seed 11, 30 days, ~0.7 reviews and
~0.5 outcomes per decision) is loaded once into SQLite
(bench/out/advice-N/store.db; later runs reuse it). Then, in this process, on
the whole 30-day window:

- frame: `collectors.advice.frame.decision_frame` (one joined query, JSON
  columns parsed, derived columns), best of 3;
- floor (peer): the same joined rows read by plain sqlite3 into pandas with
  `pandas.read_sql_query`, no JSON parsing or derived columns, best of 3;
- each part of `report --advice` (thresholds, autonomy, changes, quality,
  fairness, triage), each reading its own frame as the CLI does, once;
- peak RSS of the process (ru_maxrss).

Figures are noisy on a shared machine (PERFORMANCE.md): read the ratios. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import time
from pathlib import Path

OUT = Path(__file__).with_name("out")
DAYS = 30
FLOOR_SQL = """
SELECT d.seq, d.id, d.proposed_at, d.agent_id, d.model_version, d.policy_version, d.risk_class, d.queue,
       d.action_type, d.confidence, d.route, d.model_cost, d.segment, d.policy_checks,
       s.final_verdict, s.final_decided_at, f.reason_code, s.outcome_seq, s.agent_correct, s.final_correct,
       s.error_cost, s.agent_error_cost, s.review_cost_sum, s.review_seconds_sum, a.audits, a.audit_probability
FROM decisions d JOIN decision_state s ON s.decision_seq = d.seq
LEFT JOIN reviews f ON f.id = s.final_review_id
LEFT JOIN (SELECT decision_id, count(*) AS audits, max(audit_probability) AS audit_probability
           FROM reviews WHERE kind = 'audit' GROUP BY decision_id) a ON a.decision_id = d.id
WHERE d.proposed_at >= ? AND d.proposed_at < ? ORDER BY d.seq
"""


def build(n: int) -> Path:
    """The cached SQLite store of n decisions (built with the ingest loader on first use)."""
    import orjson

    from collectors.ingest import Loader
    from collectors.store.db import open_store
    from collectors.synth import generate

    path = OUT / f"advice-{n}" / "store.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    engine = open_store(f"sqlite:///{path}")
    loader = Loader(engine, batch_size=20_000)
    loader.load_lines("synth", (orjson.dumps(e) for e in generate(seed=11, days=DAYS,
                                                                   decisions_per_day=max(1, n // DAYS))))
    summary = loader.finish()
    print(f"built {path} ({summary.stored} events) in {time.perf_counter() - started:.0f} s")
    return path


def best_of(fn, runs: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Fastest of `runs` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=300_000)
    args = parser.parse_args()

    import pandas as pd

    from collectors.advice.combined import PARTS, compute_advice
    from collectors.advice.frame import decision_frame
    from collectors.config import TowerConfig
    from collectors.store.db import decision_time_range, open_store

    path = build(args.decisions)
    config = TowerConfig()
    engine = open_store(f"sqlite:///{path}", create=False)
    span = decision_time_range(engine)
    assert span is not None
    start, end = span[0], span[1] + 1

    t_frame, frame = best_of(lambda: decision_frame(engine, config, start, end))
    with sqlite3.connect(path) as conn:
        t_floor, floor = best_of(lambda: pd.read_sql_query(FLOOR_SQL, conn, params=(start, end)))
    rows = len(frame)  # type: ignore[arg-type]
    assert rows == len(floor), (rows, len(floor))  # type: ignore[arg-type]
    print(f"{rows:,} decisions, 30-day window, SQLite {path.stat().st_size / 2**20:.0f} MB")
    print(f"{'step':<28}{'seconds':>9}{'vs floor':>10}")
    print(f"{'floor: sqlite3 + read_sql':<28}{t_floor:>9.2f}{1.0:>10.2f}")
    print(f"{'decision_frame':<28}{t_frame:>9.2f}{t_frame / t_floor:>10.2f}")
    for part in PARTS:
        started = time.perf_counter()
        compute_advice(engine, config, start, end, [part])
        seconds = time.perf_counter() - started
        print(f"{'advice: ' + part:<28}{seconds:>9.2f}{seconds / t_floor:>10.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
