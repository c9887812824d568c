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


def test_sample_gauges_are_well_formed_and_name_report_samples() -> None:
    """The sample sizes the alert rules gate on: keys of the report's samples, names apart from the KPIs'."""
    from collectors.engine.aggregates import SliceStats
    from collectors.engine.report import slice_samples
    from collectors.exporter.collector import _SAMPLE_HELP

    assert set(names.SAMPLE_METRICS) <= set(slice_samples(SliceStats(), SliceStats()))
    assert set(_SAMPLE_HELP) == set(names.SAMPLE_METRICS)
    assert names.SAMPLE_METRICS["agreement_units"] == "hitl_agreement_units"
    metrics = list(names.SAMPLE_METRICS.values())
    assert len(set(metrics)) == len(metrics) and not set(metrics) & set(names.KPI_METRICS.values())
    for metric in metrics:
        assert re.fullmatch(r"hitl_[a-z0-9_]+", metric) and not metric.endswith("_total"), metric
