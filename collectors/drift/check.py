"""Drift per (model_version, action_type): windowed psi and ece_drift from the engine, plus two ADWINs.

`check_drift` asks the engine (`compute_report`, by model_version and
action_type) for the window ending now and its reference window, and never
computes a KPI itself: psi and ece_drift are the report's. It adds the
minimum-sample gates of config (`alerts.psi_min_decisions` decisions in
both windows for psi, `alerts.min_outcomes` outcomes in both windows for
ece_drift) and each slice's sequential detector states: ADWIN on calibration
error and ADWIN on confidence (the confidence-shift detector).

Why psi has its own gate: PSI of two samples of n decisions from the same
distribution is about (2/n) x chi-square with 9 degrees of freedom, mean
9 x 2/n: 0.09 at n = 200, 0.05 at 340. Below ~1000 decisions per window the
warning level 0.1 is within noise, so smaller slices give no psi alert (the
ADWINs and ece_drift still watch them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.config import duration_seconds
from collectors.drift.confidence import ConfidenceMonitor, ConfidenceState
from collectors.drift.sequential import SequentialMonitor, SequentialState, Slice

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig
    from collectors.engine.report import ReportRow

DRIFT_BY = ("model_version", "action_type")


@dataclass(frozen=True)
class SliceDrift:
    """Drift figures of one (model_version, action_type) slice, with their sample sizes and gates."""

    model_version: str
    action_type: str
    decisions: int
    reference_decisions: int
    outcomes: int
    reference_outcomes: int
    psi: float | None  # the report's psi, ungated
    ece: float | None
    ece_drift: float | None  # the report's ece_drift, ungated
    min_decisions: int
    min_outcomes: int
    sequential: SequentialState | None = None
    shift: ConfidenceState | None = None  # the confidence-shift detector's state

    @property
    def labels(self) -> dict[str, str]:
        """The slice as alert / metric labels."""
        return {"model_version": self.model_version, "action_type": self.action_type}

    @property
    def gate_decisions(self) -> int:
        """Decisions behind psi: the smaller of the two windows."""
        return min(self.decisions, self.reference_decisions)

    @property
    def gate_outcomes(self) -> int:
        """Outcomes behind ece_drift: the smaller of the two windows (hitl_drift_outcomes)."""
        return min(self.outcomes, self.reference_outcomes)

    @property
    def gated_psi(self) -> float | None:
        """psi when both windows hold at least min_decisions (alerts.psi_min_decisions), else None."""
        return self.psi if self.gate_decisions >= self.min_decisions else None

    @property
    def gated_ece_drift(self) -> float | None:
        """ece_drift when both windows hold at least min_outcomes outcomes, else None."""
        return self.ece_drift if self.gate_outcomes >= self.min_outcomes else None

    @property
    def detected(self) -> bool:
        """True while the sequential detector reports a recent change (hitl_drift_detected)."""
        return self.sequential is not None and self.sequential.detected

    @property
    def shift_detected(self) -> bool:
        """True while the confidence-shift detector reports a recent shift
        (hitl_drift_confidence_shift_detected)."""
        return self.shift is not None and self.shift.detected


@dataclass(frozen=True)
class DriftReport:
    """Drift of every slice at one instant, over [start, end) against its reference window."""

    now_us: int
    start_us: int
    end_us: int
    reference_start_us: int
    reference_end_us: int
    slices: tuple[SliceDrift, ...]


def alert_window_us(config: TowerConfig) -> int:
    """Length of the alert window (config alerts.window) in microseconds."""
    return duration_seconds(config.alerts.window) * 1_000_000


def configured_reference(config: TowerConfig) -> tuple[int, int] | None:
    """The fixed reference window of config, or None for the contract's default."""
    if config.reference_window is None:
        return None
    from collectors.validate import parse_timestamp

    return parse_timestamp(config.reference_window.start), parse_timestamp(config.reference_window.end)


def check_drift(engine: Engine, config: TowerConfig, now_us: int | None = None,
                monitor: SequentialMonitor | None = None) -> DriftReport:
    """Drift of each (model_version, action_type) over the alert window ending at `now_us`.

    `monitor` keeps the ADWIN detectors between calls (pass the same one each
    time; its confidence-shift monitor is added from config when missing);
    without it a fresh one replays the bounded recent history.
    """
    from collectors.engine.report import compute_report

    now = now_us if now_us is not None else time.time_ns() // 1000
    window = alert_window_us(config)
    report = compute_report(engine, config, now - window, now, by=DRIFT_BY,
                            reference=configured_reference(config), now_us=now)
    monitor = monitor if monitor is not None else SequentialMonitor.from_config(config.alerts)
    if monitor.shifts is None:
        monitor.shifts = ConfidenceMonitor.from_config(config.alerts)
    monitor.refresh(engine, now)
    monitor.shifts.refresh(engine, now)
    states = monitor.states(now, window, config.alerts.min_outcomes)
    shifts = monitor.shifts.states(now, window)
    rows: dict[Slice, ReportRow] = {(str(row.key[0]), str(row.key[1])): row for row in report.rows}
    slices = [_slice(key, rows.get(key), states.get(key), shifts.get(key), config)
              for key in sorted(set(rows) | set(states) | set(shifts))]
    return DriftReport(now, report.start_us, report.end_us, report.reference_start_us,
                       report.reference_end_us, tuple(slices))


def _slice(key: Slice, row: ReportRow | None, state: SequentialState | None, shift: ConfidenceState | None,
           config: TowerConfig) -> SliceDrift:
    kpis = row.kpis if row is not None else {}
    samples = row.samples if row is not None else {}
    return SliceDrift(
        model_version=key[0], action_type=key[1],
        decisions=samples.get("decisions", 0), reference_decisions=samples.get("reference_decisions", 0),
        outcomes=samples.get("outcomes", 0), reference_outcomes=samples.get("reference_outcomes", 0),
        psi=_float(kpis.get("psi")), ece=_float(kpis.get("ece")), ece_drift=_float(kpis.get("ece_drift")),
        min_decisions=config.alerts.psi_min_decisions, min_outcomes=config.alerts.min_outcomes,
        sequential=state, shift=shift,
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
