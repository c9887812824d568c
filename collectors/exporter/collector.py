"""The exporter's custom Collector: maps a `Snapshot` to Prometheus metric families, no math.

Names come from `collectors.exporter.names`. KPI gauges carry the labels
`window` and every slice label; the labels a series is not sliced on are
empty (absent in PromQL). A null KPI has no sample. Test it on a fresh
`CollectorRegistry()` with `get_sample_value`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from collectors.exporter import names
from collectors.exporter.snapshot import Snapshot
from collectors.kpis.spec import KPIS

KPI_LABELS: tuple[str, ...] = ("window", *names.SLICE_LABELS)

_HEALTH_HELP = {
    names.UP: "1 if the last KPI refresh read the store successfully (and none is overdue), else 0.",
    names.STALE: "1 if the values served are from an earlier refresh because the last one failed or the one in "
                 "progress is overdue (exporter.refresh_timeout_seconds), else 0.",
    names.LAST_SUCCESS: "Unix time of the last successful KPI refresh.",
    names.COLLECT_DURATION: "Duration of the last KPI refresh attempt (queries and KPI computation).",
    names.NEWEST_EVENT_AGE: "Age, at the last refresh attempt, of the newest decision, review or outcome "
                            "timestamp in the store.",
}


_SAMPLE_HELP = {
    "agreement_units": "Decisions of the window reviewed by two or more distinct reviewers: the units "
                       "hitl_agreement_alpha is computed from.",
    "primary_reviews": "Primary reviews decided in the window: the reviews behind the latency percentiles "
                       "and hitl_sla_breach_ratio.",
}


class SnapshotCollector(Collector):
    """Yields the metric families of one snapshot: self-health, windowed KPIs, fairness, drift, counters,
    histogram."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Every metric family of the snapshot; families without samples are left out."""
        yield from self._health()
        yield from self._kpis()
        yield from self._segments()
        yield from self._drift()
        yield from self._counters()

    def _health(self) -> Iterator[Metric]:
        health = self.snapshot.health
        values = {
            names.UP: 1.0 if health.up else 0.0,
            names.STALE: 1.0 if health.stale else 0.0,
            names.LAST_SUCCESS: health.last_success_seconds,
            names.COLLECT_DURATION: health.collect_seconds,
            names.NEWEST_EVENT_AGE: health.newest_event_age_seconds,
        }
        for name, value in values.items():
            if value is not None:
                yield GaugeMetricFamily(name, _HEALTH_HELP[name], value=value)

    def _kpis(self) -> Iterator[Metric]:
        for spec in KPIS:
            family = GaugeMetricFamily(names.KPI_METRICS[spec.id], f"{spec.help} Per window ending at the "
                                       "last refresh, in total (slice labels empty) and per slice.",
                                       labels=KPI_LABELS)
            yield from self._windowed(family, spec.id, samples=False)
        for sample_id, metric in names.SAMPLE_METRICS.items():
            family = GaugeMetricFamily(metric, f"{_SAMPLE_HELP[sample_id]} Per window ending at the last refresh, "
                                       "in total (slice labels empty) and per slice; the alert rules' "
                                       "minimum-sample gate.", labels=KPI_LABELS)
            yield from self._windowed(family, sample_id, samples=True)

    def _windowed(self, family: GaugeMetricFamily, key: str, samples: bool) -> Iterator[Metric]:
        """`family` with the value of `key` in each window's total and slices (their KPIs, or with `samples`
        their sample sizes), where it is not null; yielded only if it has any sample."""
        for window in self.snapshot.windows:
            value = (window.total_samples if samples else window.total).get(key)
            if value is not None:
                family.add_metric([window.window, *("" for _ in names.SLICE_LABELS)], value)
            for part in window.slices:
                value = (part.samples if samples else part.kpis).get(key)
                if value is not None:
                    family.add_metric([window.window, *(part.value if label == part.label else ""
                                                        for label in names.SLICE_LABELS)], value)
        if family.samples:
            yield family

    def _segments(self) -> Iterator[Metric]:
        rate = GaugeMetricFamily(names.SEGMENT_RATE, "Fairness rate (label rate) of the decisions of one segment "
                                 "value, per window ending at the last refresh; segment labels empty: the whole "
                                 "window. No sample when the rate's denominator is empty.", labels=names.SEGMENT_LABELS)
        samples = GaugeMetricFamily(names.SEGMENT_SAMPLES, "Denominator of the fairness rate (decisions behind it).",
                                    labels=names.SEGMENT_LABELS)
        flagged = GaugeMetricFamily(names.SEGMENT_GAP_FLAGGED, "1 when the segment value's Wilson interval "
                                    "(fairness.interval_level) excludes the whole window's rate and its sample "
                                    "reaches fairness.min_samples, else 0.", labels=names.SEGMENT_LABELS)
        for window in self.snapshot.windows:
            for s in window.segments:
                key = [window.window, s.key, s.value, s.rate]
                samples.add_metric(key, s.samples)
                if s.ratio is not None:
                    rate.add_metric(key, s.ratio)
                    if s.flagged is not None:
                        flagged.add_metric(key, 1.0 if s.flagged else 0.0)
        yield from (family for family in (rate, samples, flagged) if family.samples)

    def _drift(self, labels: tuple[str, ...] = ("model_version", "action_type")) -> Iterator[Metric]:
        psi = GaugeMetricFamily(names.DRIFT_PSI, "PSI of confidence over the alert window against its reference "
                                "window; no sample below alerts.psi_min_decisions decisions in either.", labels=labels)
        ece = GaugeMetricFamily(names.DRIFT_ECE, "ECE of the alert window minus ECE of its reference window.",
                                labels=labels)
        outcomes = GaugeMetricFamily(names.DRIFT_OUTCOMES, "Outcomes behind the ECE drift: the smaller count of "
                                     "the two windows (the alerts' minimum-sample gate).", labels=labels)
        detected = GaugeMetricFamily(names.DRIFT_DETECTED, "1 while the sequential detector (ADWIN) reports a "
                                     "calibration change within the alert window or the drift it found "
                                     "persists, else 0.", labels=labels)
        shifted = GaugeMetricFamily(names.DRIFT_SHIFT_DETECTED, "1 while the confidence-shift detector (ADWIN "
                                    "on confidence, effect-size gated) reports a shift within the alert window, "
                                    "else 0.", labels=labels)
        for s in self.snapshot.drift:
            key = [s.model_version, s.action_type]
            if s.psi is not None:
                psi.add_metric(key, s.psi)
            if s.ece_drift is not None:
                ece.add_metric(key, s.ece_drift)
            outcomes.add_metric(key, s.outcomes)
            if s.detected is not None:
                detected.add_metric(key, 1.0 if s.detected else 0.0)
            if s.shift_detected is not None:
                shifted.add_metric(key, 1.0 if s.shift_detected else 0.0)
        yield from (family for family in (psi, ece, outcomes, detected, shifted) if family.samples)

    def _counters(self) -> Iterator[Metric]:
        counters = self.snapshot.counters
        if counters is None:
            return
        decisions = CounterMetricFamily(names.DECISIONS_TOTAL, "Decisions stored, since the store began.",
                                        labels=("risk_class", "route", "model_version", "action_type"))
        for labels, count in sorted(counters.decisions.items()):
            decisions.add_metric(labels, count)
        reviews = CounterMetricFamily(names.REVIEWS_TOTAL, "Reviews stored (every kind), since the store began; "
                                      "risk_class is the reviewed decision's.", labels=("kind", "verdict", "risk_class"))
        for review_labels, count in sorted(counters.reviews.items()):
            reviews.add_metric(review_labels, count)
        outcomes = CounterMetricFamily(names.OUTCOMES_TOTAL, "Outcome events stored (superseded ones included), "
                                       "since the store began.", labels=("agent_correct", "model_version"))
        for outcome_labels, count in sorted(counters.outcomes.items()):
            outcomes.add_metric(outcome_labels, count)
        latency = HistogramMetricFamily(names.REVIEW_LATENCY_HISTOGRAM,
                                        "Time from enqueue to decision of primary reviews, since the store began.",
                                        labels=("risk_class",))
        for risk_class, hist in sorted(counters.latency.items()):
            buckets = [(floatToGoString(b), n) for b, n in zip(hist.bounds, hist.cumulative)]
            latency.add_metric([risk_class], [*buckets, ("+Inf", hist.count)], hist.sum_seconds)
        yield from (family for family in (decisions, reviews, outcomes, latency) if family.samples)
