"""Every KPI has exactly one well-formed Prometheus name."""

from __future__ import annotations

import re

from collectors.exporter import names
from collectors.kpis.spec import KPI_IDS, kpi_spec


def test_every_kpi_has_one_metric() -> None:
    assert set(names.KPI_METRICS) == set(KPI_IDS)
    assert len(set(names.KPI_METRICS.values())) == len(KPI_IDS)


def test_names_follow_prometheus_conventions() -> None:
    for kpi_id, metric in names.KPI_METRICS.items():
        assert re.fullmatch(r"hitl_[a-z0-9_]+", metric), metric
        assert not metric.endswith("_total"), f"{metric} is a gauge, not a counter"
        unit = kpi_spec(kpi_id).unit
        if unit == "seconds":
            assert metric.endswith("_seconds"), metric
        if unit == "ratio":
            assert metric.endswith("_ratio"), metric
