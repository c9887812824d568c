"""Drift detection per (model_version, action_type).

- windowed, from the engine's report: psi of confidence (label-free early
  warning) and ece_drift (calibration drift once outcomes arrive), each behind
  a minimum-sample gate from config;
- sequential: ADWIN over each decision's calibration error (confidence -
  agent_correct) in outcome order, which catches an accuracy drop at
  unchanged confidence that psi cannot see;
- sequential, label-free: ADWIN over each decision's confidence in decision
  order, behind an effect-size gate, which catches a confidence shift within
  about 100 decisions where psi needs a good share of its 24 h window.

`check_drift(engine, config, now_us, monitor)` returns all of them for every slice.
"""

from __future__ import annotations

from collectors.drift.check import DRIFT_BY, DriftReport, SliceDrift, alert_window_us, check_drift
from collectors.drift.confidence import ConfidenceMonitor, ConfidenceShiftDetector, ConfidenceState, Shift
from collectors.drift.sequential import (
    CalibrationChangeDetector,
    Detection,
    SequentialMonitor,
    SequentialState,
    walk,
)

__all__ = [
    "DRIFT_BY",
    "CalibrationChangeDetector",
    "ConfidenceMonitor",
    "ConfidenceShiftDetector",
    "ConfidenceState",
    "Detection",
    "DriftReport",
    "SequentialMonitor",
    "SequentialState",
    "Shift",
    "SliceDrift",
    "alert_window_us",
    "check_drift",
    "walk",
]
