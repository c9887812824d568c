"""What the alert rules look at: engine reports and drift, turned into per-slice observations.

Nothing here computes a KPI: every value is a field of a `compute_report`
result or of `check_drift` (which itself reads the report and ADWIN). The
windows are those of the Prometheus rules, so both alert paths judge the
same numbers. Per source: report and slice; value; samples behind it.

- ece_drift, psi, adwin, confidence_shift: `check_drift` over alerts.window,
  per (model_version, action_type); ece_drift, psi, 1 if ADWIN on calibration
  error signalled within the window, 1 if the confidence-shift detector
  confirmed a shift within it; outcomes and decisions (the smaller window),
  outcomes and decisions the detectors have seen.
- agreement, sla: alerts.window, per queue; agreement_alpha, sla_breach_rate;
  the items reviewed by two or more reviewers (alpha's units), the primary
  reviews decided (the rate's denominator).
- backlog: the longest exporter window, per queue; pending_oldest_age_seconds;
  pending decisions.
- intervention_spike: alerts.window and the window before, per model_version;
  intervention_rate now minus before; decisions (the smaller window).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.alerts.rules import Observation
from collectors.config import duration_seconds
from collectors.drift import SequentialMonitor, alert_window_us, check_drift
from collectors.exporter.names import label_value
from collectors.validate import format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig
    from collectors.drift import DriftReport
    from collectors.engine.report import Report

Observations = dict[str, list[Observation]]


def observe(engine: Engine, config: TowerConfig, now_us: int, monitor: SequentialMonitor) -> Observations:
    """Observations of every source at `now_us` (five reports and the drift check)."""
    from collectors.engine.report import compute_report

    window = alert_window_us(config)
    longest = max(duration_seconds(w) for w in config.exporter.windows) * 1_000_000
    label = {"window": config.alerts.window}
    drift = check_drift(engine, config, now_us, monitor)
    by_queue = compute_report(engine, config, now_us - window, now_us, by=("queue",), now_us=now_us)
    backlog = by_queue if longest == window else compute_report(
        engine, config, now_us - longest, now_us, by=("queue",), now_us=now_us)
    current = compute_report(engine, config, now_us - window, now_us, by=("model_version",), now_us=now_us)
    before = compute_report(engine, config, now_us - 2 * window, now_us - window, by=("model_version",),
                            now_us=now_us)
    return {**drift_observations(drift, config),
            **queue_observations(by_queue, backlog, label),
            "intervention_spike": spike_observations(current, before, label)}


def drift_observations(drift: DriftReport, config: TowerConfig) -> Observations:
    """ece_drift, psi, adwin and confidence_shift observations per (model_version, action_type)."""
    out: Observations = {"ece_drift": [], "psi": [], "adwin": [], "confidence_shift": []}
    for s in drift.slices:
        details = {"ece": s.ece, "outcomes": s.outcomes, "reference_outcomes": s.reference_outcomes,
                   "decisions": s.decisions, "reference_decisions": s.reference_decisions}
        out["ece_drift"].append(Observation(s.labels, s.ece_drift, s.gate_outcomes, details))
        out["psi"].append(Observation(s.labels, s.psi, s.gate_decisions, details))
        if s.sequential is not None:
            last = s.sequential.last_detection
            out["adwin"].append(Observation(
                s.labels, 1.0 if s.detected else 0.0, s.sequential.seen,
                {"delta": config.alerts.adwin_delta, "mean_error": s.sequential.mean_error,
                 "mean_before": last.mean_before if last else None,
                 "state": "persisting" if s.sequential.persisting else "new",
                 "detected_at": format_timestamp(last.at_us) if last else None}))
        if s.shift is not None:
            shift = s.shift.last_shift
            out["confidence_shift"].append(Observation(
                s.labels, 1.0 if s.shift_detected else 0.0, s.shift.seen,
                {"delta": config.alerts.adwin_delta, "min_delta": config.alerts.confidence_shift_min_delta,
                 "mean_before": shift.mean_before if shift else None,
                 "mean_after": shift.mean_after if shift else None,
                 "shift": shift.delta if shift else None, "mean_confidence": s.shift.mean_confidence,
                 "detected_at": format_timestamp(shift.at_us) if shift else None}))
    return out


def queue_observations(report: Report, backlog: Report, label: dict[str, str]) -> Observations:
    """agreement and sla per queue over the alert window; backlog per queue over the longest window.

    Queues are labelled as the exporter labels them (`names.label_value`), so both alert paths name a
    slice alike."""
    out: Observations = {"agreement": [], "sla": [], "backlog": []}
    for row in report.rows:
        labels = {"queue": label_value(row.key[0]), **label}
        decisions = row.samples["decisions"]
        # Each value's samples are what it is computed from: alpha's units, the breach rate's reviews.
        out["agreement"].append(Observation(labels, row.kpis["agreement_alpha"], row.samples["agreement_units"],
                                            {"units": row.samples["agreement_units"], "decisions": decisions}))
        out["sla"].append(Observation(labels, row.kpis["sla_breach_rate"], row.samples["primary_reviews"],
                                      {"reviews": row.samples["primary_reviews"], "decisions": decisions}))
    for row in backlog.rows:
        pending = int(row.kpis["pending"] or 0)
        # Decisions routed to no queue are judged too, as the exporter names them (`__none__`).
        out["backlog"].append(Observation({"queue": label_value(row.key[0])}, row.kpis["pending_oldest_age_seconds"],
                                          pending, {"pending": pending}))
    return out


def spike_observations(current: Report, before: Report, label: dict[str, str]) -> list[Observation]:
    """Intervention rate of each model_version now minus in the window before."""
    previous = {row.key: row for row in before.rows}
    out = []
    for row in current.rows:
        if row.key[0] is None:
            continue
        old = previous.get(row.key)
        now_rate = row.kpis["intervention_rate"]
        old_rate = old.kpis["intervention_rate"] if old is not None else None
        value = None if now_rate is None or old_rate is None else float(now_rate) - float(old_rate)
        samples = min(row.samples["decisions"], old.samples["decisions"] if old is not None else 0)
        out.append(Observation({"model_version": row.key[0], **label}, value, samples,
                               {"current": now_rate, "previous": old_rate}))
    return out
