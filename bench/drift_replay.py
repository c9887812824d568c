"""Start-up cost of the sequential drift detectors: their replay queries, with and without the lookback.

    python bench/drift_replay.py sqlite:///bench/out/kpis-10000000/store.db
    python bench/drift_replay.py postgresql+psycopg://postgres@127.0.0.1:5432/hitl_bench_kpis_10000000

A fresh exporter or `hitl-tower alerts` replays the newest 5,000 outcomes and decisions of each
(model_version, action_type) before its first drift figures. Printed: seconds and rows of each
replay query over the whole store and within `alerts.replay_lookback` (30 days), as of the store's
newest decision. Not a test; figures are noisy (PERFORMANCE.md).
"""

from __future__ import annotations

import sys
import time

from collectors.config import TowerConfig, duration_seconds
from collectors.drift import query
from collectors.store.db import open_store


def main(url: str) -> int:
    engine = open_store(url, create=False)
    alerts = TowerConfig().alerts
    lookback = duration_seconds(alerts.replay_lookback) * 1_000_000
    with engine.connect() as conn:
        until = int(conn.exec_driver_sql("SELECT max(proposed_at) FROM decisions").scalar() or 0)
        decisions, outcomes = query.last_decision_seq(conn), query.last_outcome_seq(conn)
        for label, since in (("whole store", None), (f"lookback {alerts.replay_lookback}", until - lookback)):
            started = time.perf_counter()
            confidences = query.latest_confidences(conn, decisions, until, alerts.confidence_shift_replay_decisions,
                                                   since)
            middle = time.perf_counter()
            errors = query.latest_errors(conn, outcomes, until, alerts.adwin_replay_outcomes, since)
            done = time.perf_counter()
            print(f"{label:16} confidences {middle - started:6.1f} s ({len(confidences):,} rows)   "
                  f"calibration errors {done - middle:6.1f} s ({len(errors):,} rows)", flush=True)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
