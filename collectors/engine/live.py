"""A report kept warm between refreshes: what a dashboard or the metrics exporter holds on to.

Everything additive comes from the rollups (`collectors.store.rollup`), so a
refresh reads O(hours x slices) rows for it. The exact latency percentiles
need every primary-review latency of the window: `LiveReport` keeps them in
memory (numpy arrays, ~20 bytes a review) and on each refresh reads only the
primary reviews stored since the last one (reviews.seq above its watermark,
a primary-key range), so a refresh costs O(new events + buckets), not
O(history). The numbers are those of `compute_report`, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from collectors.engine.report import Key, Report, compute_report
from collectors.kpis.latency import LatencySample

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from collectors.config import TowerConfig

_SLICE_FIELDS = ("risk_class", "queue", "model_version", "agent_id", "action_type", "route")
_SELECT = ("SELECT r.decided_at, r.decided_at - r.enqueued_at, "
           + ", ".join(f"d.{c}" for c in _SLICE_FIELDS)
           + " FROM reviews r JOIN decisions d ON d.id = r.decision_id WHERE r.kind = 'primary' AND ")


class LiveReport:
    """Reports of one store, with the latencies of the last window read kept for the next refresh."""

    def __init__(self, engine: Engine, config: TowerConfig) -> None:
        self.engine = engine
        self.config = config
        self._range: tuple[int, int] | None = None  # decided_at range held in memory
        self._watermark = 0  # chain seq up to which reviews are held
        self._decided = np.empty(0, dtype=np.int64)
        self._latency_us = np.empty(0, dtype=np.int64)
        self._slice = np.empty(0, dtype=np.int64)
        self._slices: list[tuple[Any, ...]] = []
        self._slice_index: dict[tuple[Any, ...], int] = {}

    def report(self, start_us: int, end_us: int, by: Sequence[str] = (),
               reference: tuple[int, int] | None = None, now_us: int | None = None) -> Report:
        """The same report as `compute_report`, refreshed with the events stored since the last call."""
        return compute_report(self.engine, self.config, start_us, end_us, by, reference, now_us,
                              latencies=self._latencies)

    def _latencies(self, conn: Connection, start_us: int, end_us: int, by: tuple[str, ...]
                   ) -> tuple[LatencySample, dict[Key, LatencySample]]:
        if any(name not in _SLICE_FIELDS for name in by):
            from collectors.engine import query
            from collectors.engine.report import _latency_samples

            return _latency_samples(query.primary_latencies(conn, start_us, end_us, by), self.config)
        head = int(conn.exec_driver_sql("SELECT seq FROM chain_head WHERE id = 1").scalar_one())
        if self._range is None or start_us < self._range[0] or end_us > self._range[1]:
            self._load(conn, start_us, end_us, head)
        elif head > self._watermark:
            self._add_new(conn, head)
        return self._samples(start_us, end_us, by)

    def _rows(self, conn: Connection, where: str, params: tuple[int, int]) -> None:
        if conn.dialect.paramstyle != "qmark":
            where = where.replace("?", "%s")
        decided, latency, slices = [], [], []
        index, known = self._slice_index, self._slices
        lo, hi = self._range  # type: ignore[misc]
        for row in conn.exec_driver_sql(_SELECT + where, params).fetchall():
            if not lo <= row[0] < hi:
                continue
            key = row[2:]
            code = index.get(key)
            if code is None:
                code = index[key] = len(known)
                known.append(tuple(key))
            decided.append(row[0])
            latency.append(row[1])
            slices.append(code)
        self._decided = np.concatenate([self._decided, np.asarray(decided, dtype=np.int64)])
        self._latency_us = np.concatenate([self._latency_us, np.asarray(latency, dtype=np.int64)])
        self._slice = np.concatenate([self._slice, np.asarray(slices, dtype=np.int64)])

    def _load(self, conn: Connection, start_us: int, end_us: int, head: int) -> None:
        self._range = (start_us, end_us)
        self._decided = self._latency_us = self._slice = np.empty(0, dtype=np.int64)
        self._rows(conn, "r.decided_at >= ? AND r.decided_at < ?", (start_us, end_us))
        self._watermark = head

    def _add_new(self, conn: Connection, head: int) -> None:
        self._rows(conn, "r.seq > ? AND r.seq <= ?", (self._watermark, head))
        self._watermark = head

    def _samples(self, start_us: int, end_us: int, by: tuple[str, ...]
                 ) -> tuple[LatencySample, dict[Key, LatencySample]]:
        inside = (self._decided >= start_us) & (self._decided < end_us)
        seconds = self._latency_us[inside] / 1_000_000
        slices = self._slice[inside]
        sla_of_slice = np.fromiter((self.config.sla.for_risk_class(s[0]) for s in self._slices),
                                   dtype=np.float64, count=len(self._slices))
        slas = sla_of_slice[slices]
        total = LatencySample(seconds, slas)
        if not by:
            return total, {}
        at = [_SLICE_FIELDS.index(name) for name in by]
        keys: dict[Key, int] = {}
        key_of_slice = np.fromiter((keys.setdefault(tuple(s[i] for i in at), len(keys)) for s in self._slices),
                                   dtype=np.int64, count=len(self._slices))
        codes = key_of_slice[slices]
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
        per_key = {}
        for key, code in keys.items():
            where = order[bounds[code]:bounds[code + 1]]
            if where.size:
                per_key[key] = LatencySample(seconds[where], slas[where])
        return total, per_key
