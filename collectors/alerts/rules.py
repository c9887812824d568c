"""The built-in alert rules: one table, thresholds from config, mirrored by config/prometheus/alerts.yml.

Each rule watches one observation source (per slice), fires when the value is
past its threshold for `for_seconds` (consecutive evaluations, like
Prometheus' `for:`), needs `min_samples` behind the value, and resolves only
once the value is back past the hysteresis bound: threshold - (1 - h) x
|threshold| for higher-is-bad values (h = alerts.resolve_hysteresis, 0.8: 80%
of a positive threshold), threshold + (1 - h) x |threshold| for lower-is-bad
ones such as agreement. A test checks that alerts.yml uses the same names,
severities, thresholds, bounds, gates and `for` durations.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collectors.config import TowerConfig

Direction = Literal["above", "below"]
Severity = Literal["warning", "critical"]
# What an alert's value (and threshold) measures, so each reader shows it in its unit: a score (ECE drift, PSI,
# alpha), a rate (a share: SLA breaches), a duration in seconds (backlog age), points (a difference of rates:
# the intervention spike) or a detector's signal (1: signalled, 0: not; no measure at all)
ValueKind = Literal["score", "rate", "duration", "points", "signal"]
VALUE_KINDS: tuple[ValueKind, ...] = ("score", "rate", "duration", "points", "signal")
RUNBOOK = "docs/alerts.md"


@dataclass(frozen=True)
class Observation:
    """One slice's value of a source at an evaluation, with the sample size behind it."""

    labels: Mapping[str, str]
    value: float | None
    samples: int
    details: Mapping[str, object] = field(default_factory=dict)  # extra figures for the description


@dataclass(frozen=True)
class Rule:
    """An alert: what it watches, its threshold and gates, and how it reads to on-call."""

    alertname: str
    severity: Severity
    source: str  # key of the observations it reads (collectors.alerts.observe)
    threshold: float
    direction: Direction
    for_seconds: int
    min_samples: int  # observations with fewer samples are ignored (0: no gate)
    hysteresis: float
    summary: str  # str.format template: labels, {value}, {threshold}; {value:duration} for seconds
    description: str
    sample_name: str  # what `samples` counts, for the description
    kind: ValueKind = "score"  # what the value measures: the CLI, the dashboard and the resolution text read it

    @property
    def signal_only(self) -> bool:
        """A detector's alert: its value is 1 when it signalled, not a measure."""
        return self.kind == "signal"

    @property
    def resolve_bound(self) -> float:
        """The value an active alert must get back past to resolve."""
        margin = (1 - self.hysteresis) * abs(self.threshold)
        return self.threshold - margin if self.direction == "above" else self.threshold + margin

    def breached(self, value: float) -> bool:
        """Past the threshold (strictly): the condition that makes an alert pending, then firing."""
        return value > self.threshold if self.direction == "above" else value < self.threshold

    def holds(self, value: float) -> bool:
        """Still past the resolve bound: what keeps a firing alert firing."""
        return value > self.resolve_bound if self.direction == "above" else value < self.resolve_bound

    def gated(self, observation: Observation) -> bool:
        """True when the observation has a value and enough samples to be judged."""
        return observation.value is not None and observation.samples >= self.min_samples

    @property
    def runbook_url(self) -> str:
        """Link to this alert's section of docs/alerts.md."""
        return f"{RUNBOOK}#{self.alertname.lower()}"

    def labels(self, observation: Observation) -> dict[str, str]:
        """Alert labels: alertname, severity and the observation's slice labels."""
        return {"alertname": self.alertname, "severity": self.severity, **observation.labels}

    def annotations(self, observation: Observation) -> dict[str, str]:
        """summary, description and runbook_url, filled from the observation."""
        values = {**observation.labels, **observation.details, "value": observation.value,
                  "threshold": self.threshold, "bound": self.resolve_bound,
                  "samples": observation.samples, "min_samples": self.min_samples,
                  "sample_name": self.sample_name}
        return {"summary": _FORMATTER.vformat(self.summary, (), values),
                "description": _FORMATTER.vformat(self.description, (), values),
                "runbook_url": self.runbook_url}


    def resolution(self, observation: Observation | None) -> str:
        """Why an alert resolved, for on-call: recovered, or no longer judged (too few samples, no data)."""
        if observation is None or observation.value is None:
            return "resolved: no value for this slice any more (no data in the window, or the rule is gone)"
        if observation.samples < self.min_samples:
            return (f"resolved for lack of data, not recovered: {observation.samples} {self.sample_name}, "
                    f"below the {self.min_samples} needed to judge (last value {observation.value:.4g})")
        if self.signal_only:
            return "resolved: the detector's signal has expired"
        return f"resolved: value {observation.value:.4g} is back past {self.resolve_bound:g}"


def humanize_duration(seconds: float) -> str:
    """Seconds as on-call reads them: "18h 22m", "4h", "1d 3h", "12m 5s", "45.5s".

    The same text as the template alerts.yml uses for durations, so both paths
    read alike: Prometheus' `humanizeDuration` ("18h 22m 29s", "4h 0m 0s"),
    then `reReplaceAll "(h [0-9]+m) [0-9]+s$" "${1}"` (no seconds once there
    are hours) and `reReplaceAll " 0[hms]" ""` (no zero parts). Whole seconds
    are truncated as Prometheus does; under a minute keeps 4 significant digits.
    """
    v = float(seconds)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0s"
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 1:
        whole = int(v)
        secs, mins, hours, days = whole % 60, whole // 60 % 60, whole // 3600 % 24, whole // 86400
        if days or hours:
            parts = [(days, "d"), (hours, "h"), (mins, "m")]
        elif mins:
            parts = [(mins, "m"), (secs, "s")]
        else:
            return f"{sign}{v:.4g}s"
        return sign + " ".join(f"{n}{unit}" for n, unit in parts if n)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if v >= 1:
            break
        prefix, v = p, v * 1000
    return f"{sign}{v:.4g}{prefix}s"


class _Formatter(string.Formatter):
    """str.format that prints an unknown field as '?' and a None as 'n/a' instead of raising.

    The format spec `duration` prints seconds with humanize_duration ({value:duration}: "18h 22m").
    """

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(key, "?") if isinstance(key, str) else "?"

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or isinstance(value, str):
            return "n/a" if value is None else value
        if format_spec == "duration":
            return humanize_duration(value)
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


Transition = Literal["pending", "fired", "resolved", "cleared"]


def transition(rule: Rule, state: str | None, active_at: int | None, value: float | None,
               now_us: int) -> Transition | None:
    """The change one evaluation makes to an alert, Prometheus-style (None: no change).

    `state` is None (inactive), "pending" or "firing"; `value` is None when the
    observation is missing or below the min-sample gate. Inactive -> pending
    when breached ("fired" at once when `for` is 0); pending -> fired once
    breached at every evaluation for `for_seconds` since `active_at`, else
    cleared as soon as it is not; firing -> resolved once the value is no
    longer past the hysteresis bound (or missing).
    """
    if state is None:
        if value is None or not rule.breached(value):
            return None
        return "fired" if rule.for_seconds == 0 else "pending"
    if state == "pending":
        if value is None or not rule.breached(value):
            return "cleared"
        held_us = now_us - (active_at if active_at is not None else now_us)
        return "fired" if held_us >= rule.for_seconds * 1_000_000 else None
    return None if value is not None and rule.holds(value) else "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of an alert: SHA-256 of its sorted labels."""
    return hashlib.sha256(json.dumps(sorted(labels.items()), separators=(",", ":")).encode()).hexdigest()


_DRIFT = "{model_version} / {action_type}"
_GATE = "{samples} {sample_name} behind it (at least {min_samples} needed)"
_BOUNDS = "fires past {threshold:g}, resolves back past {bound:g}"


def build_rules(config: TowerConfig) -> tuple[Rule, ...]:
    """Every built-in rule with its thresholds from `config.alerts`."""
    a = config.alerts
    h = a.resolve_hysteresis
    w = a.window

    def drift(severity: Severity, threshold: float) -> Rule:
        return Rule("HitlCalibrationDrift", severity, "ece_drift", threshold, "above", 1800, a.min_outcomes,
                    h,
                    f"Calibration drift on {_DRIFT}: ECE drift {{value:.3f}} (threshold {{threshold:.2f}})",
                    f"ECE over the last {w} minus ECE of the reference window is {{value:.3f}} "
                    f"(ece {{ece:.3f}}); {_GATE}; {_BOUNDS}.", "outcomes (the smaller window)")

    def psi(severity: Severity, threshold: float) -> Rule:
        return Rule("HitlConfidencePsi", severity, "psi", threshold, "above", 1800, a.psi_min_decisions, h,
                    f"Confidence distribution shift on {_DRIFT}: PSI {{value:.3f}} "
                    "(threshold {threshold:.2f})",
                    f"PSI of confidence, last {w} against the reference window, is {{value:.3f}}; "
                    f"{_GATE}; {_BOUNDS}.", "decisions (the smaller window)")

    return (
        drift("warning", a.ece_drift_warn),
        drift("critical", a.ece_drift_alert),
        psi("warning", a.psi_warn),
        psi("critical", a.psi_alert),
        Rule("HitlCalibrationChange", "warning", "adwin", 0.0, "above", 300, a.min_outcomes, h,
             f"Sequential detector (ADWIN) saw a calibration change on {_DRIFT}: mean error "
             "{mean_before:+.3f} before, {mean_error:+.3f} now",
             "ADWIN (delta {delta}) signalled a rise of the mean of confidence - agent_correct "
             "at the outcome observed {detected_at}: mean error {mean_before:+.3f} before, "
             "{mean_error:+.3f} now ({state}); {samples} outcomes seen. Keeps firing past 24 h after the signal while outcomes "
             f"keep coming and the mean error stays {a.calibration_persist_delta:g} or more "
             "(calibration_persist_delta) above its level before it.", "outcomes seen by the detector", kind="signal"),
        Rule("HitlConfidenceShift", "warning", "confidence_shift", 0.0, "above", 300,
             a.confidence_shift_min_decisions, h,
             f"Sequential detector (ADWIN) saw a confidence shift on {_DRIFT}: mean confidence "
             "{mean_before:.3f} -> {mean_after:.3f}",
             "ADWIN (delta {delta}) on confidence signalled a shift of the mean confidence from "
             "{mean_before:.3f} to {mean_after:.3f} ({shift:+.3f}; shifts under {min_delta} raise nothing), "
             "confirmed at the decision proposed {detected_at}; mean confidence now {mean_confidence:.3f}; "
             "{samples} decisions seen. Resolves 24 h after that decision.",
             "decisions seen by the detector", kind="signal"),
        # Gated on alpha's own units (items reviewed by two or more reviewers), not on the queue's
        # decisions: a queue of 600 decisions with 7 double-reviewed items has an alpha of noise.
        Rule("HitlAgreementCollapse", "warning", "agreement", a.agreement_alpha_min, "below", 3600,
             a.agreement_min_units, h,
             "Reviewer agreement collapsed in queue {queue}: alpha {value:.3f} "
             "(threshold {threshold:g}, resolves above {bound:g})",
             f"Krippendorff's alpha over the last {w} is {{value:.3f}} ({{decisions}} decisions); "
             f"{_GATE}; {_BOUNDS}.",
             "items reviewed by two or more reviewers"),
        # Gated on the rate's denominator, the primary reviews decided in the window, not on decisions
        # (most of which an auto-approving queue never reviews).
        Rule("HitlSlaBreachRate", "warning", "sla", a.sla_breach_rate_max, "above", 1800, a.sla_min_reviews, h,
             "SLA breaches in queue {queue}: {value:.0%} of primary reviews over SLA "
             "(threshold {threshold:.0%}, resolves below {bound:.0%})",
             f"Share of primary reviews decided in the last {w} over their SLA is {{value:.3f}} "
             f"({{decisions}} decisions); {_GATE}; {_BOUNDS}.", "primary reviews decided in the window", kind="rate"),
        Rule("HitlBacklogAge", "critical", "backlog", a.backlog_age_seconds_max, "above", 900, 0, h,
             "Backlog in queue {queue}: oldest pending item is {value:duration} old "
             "(threshold {threshold:duration})",
             "Decisions pending: {pending}; the oldest was proposed {value:duration} ago; "
             "fires past {threshold:duration}, resolves back past {bound:duration}.",
             "pending decisions", kind="duration"),
        Rule("HitlInterventionRateSpike", "warning", "intervention_spike", a.intervention_rate_spike, "above",
             1800, a.min_decisions, h,
             f"Intervention rate spike on {{model_version}}: {{value:+.3f}} against the previous {w} "
             "(threshold +{threshold:g})",
             f"Intervention rate over the last {w} is {{current:.3f}} against {{previous:.3f}} in the "
             f"{w} before; {_GATE}; {_BOUNDS}.", "decisions (the smaller window)", kind="points"),
    )
