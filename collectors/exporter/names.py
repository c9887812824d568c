"""Prometheus names of the KPIs: one table shared by the exporter, the alert rules and Grafana.

Names take the `hitl_` prefix and base units (`_seconds`, `_ratio`); none
ends in `_total`, because these are windowed gauges, not counters. Every KPI
gauge carries a `window` label (e.g. 1h, 24h, 7d) and the slice labels
below; a slice label left empty (absent in PromQL) means "all values", and
each series is sliced on at most one label, so

    hitl_intervention_ratio{window="24h", risk_class="", queue="", model_version="", action_type=""}
                                                                # the whole window
    hitl_intervention_ratio{window="24h", risk_class="high"}    # one slice (the others are empty)

Each series is a slice on at most one label, so the series count is bounded by
windows x (1 + the sum of each label's capped cardinality).
"""

from __future__ import annotations

PREFIX = "hitl_"

#: Slice labels, in the order the exporter emits them; never an id.
SLICE_LABELS: tuple[str, ...] = ("risk_class", "queue", "model_version", "action_type")

#: Value of a slice label whose real values passed the configured cardinality cap.
OVERFLOW_VALUE = "__other__"
#: Value of a slice label for decisions without the field (null); "" means "all values".
NULL_VALUE = "__none__"
#: Value of a slice label for a real empty string.
EMPTY_VALUE = "__empty__"


def label_value(raw: str | None) -> str:
    """A value from the store as a label value that no sentinel can be taken for; null is NULL_VALUE.

    "" (all values), NULL_VALUE, OVERFLOW_VALUE and EMPTY_VALUE mean something else, so a real
    empty string becomes EMPTY_VALUE and a real value starting with two underscores gets one more
    (`__none__` -> `___none__`). Without this, a queue named "" or "__none__" shared a series with
    the whole window or with the decisions without a queue, and Prometheus kept one of the two.
    The mapping is one-to-one: every sentinel starts with exactly two underscores.
    """
    if raw is None:
        return NULL_VALUE
    if not raw:
        return EMPTY_VALUE
    return "_" + raw if raw.startswith("__") else raw

KPI_METRICS: dict[str, str] = {
    "decisions": "hitl_window_decisions",
    "intervention_rate": "hitl_intervention_ratio",
    "auto_rate": "hitl_auto_approval_ratio",
    "pending": "hitl_pending_decisions",
    "pending_oldest_age_seconds": "hitl_pending_oldest_age_seconds",
    "ece": "hitl_calibration_ece_ratio",
    "brier": "hitl_calibration_brier_score",
    "psi": "hitl_confidence_psi",
    "ece_drift": "hitl_calibration_ece_drift_ratio",
    "override_count": "hitl_window_overrides",
    "override_error_delta": "hitl_override_error_delta_ratio",
    "harmful_override_rate": "hitl_harmful_override_ratio",
    "cost_avoided": "hitl_override_cost_avoided",
    "agreement_alpha": "hitl_agreement_alpha",
    "latency_p50_seconds": "hitl_review_latency_p50_seconds",
    "latency_p90_seconds": "hitl_review_latency_p90_seconds",
    "latency_p99_seconds": "hitl_review_latency_p99_seconds",
    "sla_breach_rate": "hitl_sla_breach_ratio",
    "cost_per_decision": "hitl_cost_per_decision",
}

#: Sample sizes behind KPIs that are not themselves KPIs (keys of the report's `samples`), exported as
#: gauges with the KPI labels so that alert rules gate on what a value is computed from.
SAMPLE_METRICS: dict[str, str] = {
    "agreement_units": "hitl_agreement_units",  # items reviewed by 2+ reviewers: agreement_alpha's units
    "primary_reviews": "hitl_window_primary_reviews",  # primary reviews decided: latency and SLA's denominator
}

# Cumulative counters over the whole store, so PromQL can compute its own rates.
DECISIONS_TOTAL = "hitl_decisions_total"  # labels: risk_class, route, model_version, action_type
REVIEWS_TOTAL = "hitl_reviews_total"  # labels: kind, verdict, risk_class
OUTCOMES_TOTAL = "hitl_outcomes_total"  # labels: agent_correct, model_version
REVIEW_LATENCY_HISTOGRAM = "hitl_review_latency_seconds"  # histogram of primary-review latency

# Drift detectors (labels: model_version, action_type).
DRIFT_PSI = "hitl_drift_confidence_psi"
DRIFT_ECE = "hitl_drift_ece_drift_ratio"
DRIFT_DETECTED = "hitl_drift_detected"  # 1 while ADWIN on calibration error reports a change or it persists
DRIFT_SHIFT_DETECTED = "hitl_drift_confidence_shift_detected"  # 1 while ADWIN on confidence reports a shift
DRIFT_OUTCOMES = "hitl_drift_outcomes"  # outcomes behind the drift figures (the minimum-sample gate)

# Fairness per segment value (labels: window, segment_key, segment_value, rate; the keys of
# config fairness.segment_keys, at most fairness.max_values values each plus OVERFLOW_VALUE;
# segment_key and segment_value empty: the whole window).
SEGMENT_RATE = "hitl_segment_rate_ratio"
SEGMENT_SAMPLES = "hitl_segment_rate_samples"  # the rate's denominator
SEGMENT_GAP_FLAGGED = "hitl_segment_gap_flagged"  # 1 when the value's interval excludes the overall rate
SEGMENT_LABELS: tuple[str, ...] = ("window", "segment_key", "segment_value", "rate")

# Self-health of the exporter.
UP = "hitl_tower_up"
LAST_SUCCESS = "hitl_tower_last_success_timestamp_seconds"
COLLECT_DURATION = "hitl_tower_collect_duration_seconds"
STALE = "hitl_tower_stale"
NEWEST_EVENT_AGE = "hitl_tower_newest_event_age_seconds"
