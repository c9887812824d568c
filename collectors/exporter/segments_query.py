"""The exporter's SQL for the fairness gauges: the few columns of each decision of a window that the
fairness rates read.

`collectors.advice.fairness` judges a `decision_frame`, which also prices reviews, joins the final
and audit reviews and parses each segment object in Python (about 0.4 s for 14k decisions). The
exporter needs only the final verdict, the outcome flags and the configured segment keys, extracted
by the database (`query.segment_value`: JSON_EXTRACT on SQLite, ->> on PostgreSQL): one query per window,
about ten times cheaper. The columns and their meaning are those of `decision_frame`, so the same
pure functions apply and the gauges equal `fairness_report` (tests/test_fairness.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, select

from collectors.advice.frame import SEGMENT_PREFIX, add_outcome_flags
from collectors.engine.query import segment_value
from collectors.store.models import Decision, DecisionState

_D = Decision.__table__
_S = DecisionState.__table__


def read_segment_frame(engine: Engine, start_us: int, end_us: int, keys: Sequence[str]) -> pd.DataFrame:
    """Decisions proposed in [start, end): final_verdict, has_outcome, agent_correct and final_correct
    (1.0/0.0, NaN without an outcome) and segment.KEY (None when absent) for each of `keys` (bare names)."""
    segments = [segment_value(key, engine.dialect.name).label(f"k{i}") for i, key in enumerate(keys)]
    query = (
        select(*segments, _S.c.final_verdict, _S.c.outcome_seq, _S.c.agent_correct, _S.c.final_correct)
        .select_from(_D.join(_S, _S.c.decision_seq == _D.c.seq))
        .where(_D.c.proposed_at >= start_us, _D.c.proposed_at < end_us)
    )
    with engine.connect() as conn:
        rows = list(map(tuple, conn.execute(query).all()))  # plain tuples: pandas probes Row objects slowly
    columns = [f"k{i}" for i in range(len(keys))]
    raw = pd.DataFrame.from_records(rows, columns=[*columns, "final_verdict", "outcome_seq", "agent_correct",
                                                   "final_correct"], coerce_float=False)
    frame = pd.DataFrame({"final_verdict": raw["final_verdict"].astype(object)})
    add_outcome_flags(frame, raw)
    for column, key in zip(columns, keys):
        values = raw[column].astype(object)
        frame[SEGMENT_PREFIX + key] = values.where(values.notna(), None)
    return frame
