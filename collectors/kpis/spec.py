"""The KPI registry: one spec per KPI of the contract's section 3, in the contract's order.

The report, the Prometheus exporter, the docs and the dashboard all read
`KPIS`; the arithmetic of each KPI lives in the module of its family
(`rates`, `calibration`, `overrides`, `agreement`, `latency`, `cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Family = Literal["rates", "calibration", "overrides", "agreement", "latency", "cost"]
Unit = Literal["count", "ratio", "score", "seconds", "currency", "coefficient"]
Direction = Literal["up", "down", "neutral"]

FAMILIES: tuple[Family, ...] = ("rates", "calibration", "overrides", "agreement", "latency", "cost")


@dataclass(frozen=True)
class KpiSpec:
    """What a KPI is: its id (the JSON key), family, unit, help text and which way is good."""

    id: str
    family: Family
    unit: Unit
    help: str
    good: Direction  # up: higher is better; down: lower is better; neutral: context decides


KPIS: tuple[KpiSpec, ...] = (
    KpiSpec("decisions", "rates", "count",
            "Decisions proposed in the window.", "neutral"),
    KpiSpec("intervention_rate", "rates", "ratio",
            "Share of resolved decisions whose final verdict is edit or reject.", "neutral"),
    KpiSpec("auto_rate", "rates", "ratio",
            "Share of resolved decisions whose final verdict is auto (no human before execution).",
            "neutral"),
    KpiSpec("pending", "rates", "count",
            "Decisions of the window still pending now (in a queue, or escalated and undecided).",
            "down"),
    KpiSpec("pending_oldest_age_seconds", "rates", "seconds",
            "Age now of the oldest pending decision of the window.", "down"),
    KpiSpec("ece", "calibration", "ratio",
            "Expected calibration error of agent confidence over decisions with an outcome "
            "(10 equal-width bins).", "down"),
    KpiSpec("brier", "calibration", "score",
            "Mean squared error of confidence against agent_correct over decisions with an outcome.",
            "down"),
    KpiSpec("psi", "calibration", "score",
            "Population stability index of confidence, reference window against this window.",
            "down"),
    KpiSpec("ece_drift", "calibration", "ratio",
            "ECE of this window minus ECE of the reference window; positive means worse calibration.",
            "down"),
    KpiSpec("override_count", "overrides", "count",
            "Decisions with an outcome whose final verdict is edit or reject.", "neutral"),
    KpiSpec("override_error_delta", "overrides", "ratio",
            "Over overrides: agent error rate minus final error rate; positive means humans fixed "
            "more than they broke.", "up"),
    KpiSpec("harmful_override_rate", "overrides", "ratio",
            "Share of overrides where the agent was right and the final action wrong.", "down"),
    KpiSpec("cost_avoided", "overrides", "currency",
            "Over overrides: agent error cost minus error cost of what was actually done.", "up"),
    KpiSpec("agreement_alpha", "agreement", "coefficient",
            "Krippendorff's nominal alpha over the verdicts of decisions seen by 2 or more reviewers.",
            "up"),
    KpiSpec("latency_p50_seconds", "latency", "seconds",
            "Median time from enqueue to decision of primary reviews decided in the window.", "down"),
    KpiSpec("latency_p90_seconds", "latency", "seconds",
            "90th percentile time from enqueue to decision of primary reviews decided in the window.",
            "down"),
    KpiSpec("latency_p99_seconds", "latency", "seconds",
            "99th percentile time from enqueue to decision of primary reviews decided in the window.",
            "down"),
    KpiSpec("sla_breach_rate", "latency", "ratio",
            "Share of primary reviews decided in the window whose latency exceeds their risk class's SLA.",
            "down"),
    KpiSpec("cost_per_decision", "cost", "currency",
            "Review costs (every kind, whenever decided) plus model costs of the window's decisions, "
            "per decision.", "down"),
)

KPI_IDS: tuple[str, ...] = tuple(spec.id for spec in KPIS)


def kpi_spec(kpi_id: str) -> KpiSpec:
    """The spec of a KPI by id (KeyError for an unknown id)."""
    for spec in KPIS:
        if spec.id == kpi_id:
            return spec
    raise KeyError(kpi_id)


# KPIs whose id does not read as words; any other id (or advice rate) reads as its words
KPI_NAMES = {"ece": "ECE", "ece_drift": "ECE drift", "psi": "PSI", "brier": "Brier score",
             "sla_breach_rate": "SLA breach rate"}


def kpi_name(kpi_id: str) -> str:
    """A KPI (or advice rate) as a reader names it, for the dashboard and the advice's sentences alike:
    KPI_NAMES', else its id in words without a unit suffix (the value carries the unit):
    "latency_p90_seconds" -> "latency p90"."""
    return KPI_NAMES.get(kpi_id) or kpi_id.removesuffix("_seconds").replace("_", " ")


FIELD_NAMES = {"agent_id": "agent"}  # slice fields that do not read as words


def slice_text(slices: Mapping[str, str]) -> str:
    """Slice values as a sentence names them: {"risk_class": "low", "segment.region": "EU"} -> "risk class
    low, region EU"."""
    return ", ".join(f"{FIELD_NAMES.get(k, k.removeprefix('segment.').replace('_', ' '))} {v}"
                     for k, v in slices.items())
