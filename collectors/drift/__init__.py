"""Drift detection per (model_version, action_type).

- windowed, from the engine's report: psi of confidence (label-free early
  warning) and ece_drift (calibration drift once outcomes arrive), each behind
  a minimum-sample gate from config;
- sequential: ADWIN over each decision's calibration error (confidence -
  agent_correct) in outcome order, which catches an accuracy drop at
  unchanged confidence that psi cannot see.

`check_drift(engine, config, now_us, monitor)` returns both for every slice.
"""

from __future__ import annotations

from collectors.drift.check import DRIFT_BY, DriftReport, SliceDrift, alert_window_us, check_drift
from collectors.drift.sequential import (
    CalibrationChangeDetector,
    Detection,
    SequentialMonitor,
    SequentialState,
)

__all__ = [
    "DRIFT_BY",
    "CalibrationChangeDetector",
    "Detection",
    "DriftReport",
    "SequentialMonitor",
    "SequentialState",
    "SliceDrift",
    "alert_window_us",
    "check_drift",
]
