"""Drift detection: PSI sees a confidence shift, ADWIN an accuracy drop at unchanged confidence,
neither fires on a stable stream, and small slices are gated."""

from __future__ import annotations

import numpy as np
import pytest
from drift_helpers import ACTION, DAY, MODEL, planted_drift, window_events
from engine_helpers import T0, load

from collectors.config import Alerts, TowerConfig
from collectors.drift import CalibrationChangeDetector, SequentialMonitor, check_drift

NOW = T0 + 2 * DAY


def _stream(seed: int, n: int, onset: int, drop: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated stream (confidence ~ Beta(8, 2)) whose accuracy falls by `drop` from `onset`."""
    rng = np.random.default_rng(seed)
    conf = rng.beta(8, 2, n)
    p = conf.copy()
    p[onset:] = np.clip(conf[onset:] - drop, 0, 1)
    return conf, rng.random(n) < p


def _first_alarm(conf: np.ndarray, correct: np.ndarray, delta: float = 0.002) -> int | None:
    detector = CalibrationChangeDetector(delta)
    for i, (c, ok) in enumerate(zip(conf.tolist(), correct.tolist())):
        found = detector.update(c, ok, i)
        if found is not None and found.overconfident:
            return i
    return None


@pytest.mark.parametrize("seed", range(1, 9))
def test_adwin_catches_an_accuracy_drop_within_300_decisions(seed: int) -> None:
    onset = 20_000
    conf, correct = _stream(seed, 25_000, onset)
    alarm = _first_alarm(conf, correct)
    assert alarm is not None and onset <= alarm <= onset + 300, alarm


@pytest.mark.parametrize("seed", range(1, 6))
def test_adwin_stays_quiet_on_a_stable_stream(seed: int) -> None:
    conf, correct = _stream(seed, 30_000, onset=30_000)
    assert _first_alarm(conf, correct) is None


def test_a_change_toward_underconfidence_raises_no_flag() -> None:
    conf, correct = _stream(3, 25_000, onset=20_000, drop=-0.15)  # the agent gets better than it says
    detector = CalibrationChangeDetector(0.002)
    found = [d for i, (c, ok) in enumerate(zip(conf.tolist(), correct.tolist()))
             if (d := detector.update(c, ok, i)) is not None]
    assert found and not any(d.overconfident for d in found)
    assert detector.last_detection is None


def test_psi_catches_a_confidence_shift_that_adwin_and_ece_do_not(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, drop=0.0, beta_after=(4.0, 3.0)))
    drift = _only(check_drift(engine, TowerConfig(), NOW))
    assert drift.gated_psi is not None and drift.gated_psi > 0.25
    assert not drift.detected  # still calibrated: no calibration change
    assert drift.gated_ece_drift is not None and drift.gated_ece_drift < 0.05


def test_adwin_and_ece_drift_catch_an_accuracy_drop_while_psi_stays_low(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, drop=0.2))
    drift = _only(check_drift(engine, TowerConfig(), NOW))
    assert drift.gated_psi is not None and drift.gated_psi < 0.1  # PSI cannot see it
    assert drift.detected
    last = drift.sequential.last_detection
    assert last is not None and NOW - DAY <= last.at_us <= NOW
    # within 300 decisions of the drop: the reference day's 1100 outcomes come first
    assert last.index - 1100 <= 300
    assert drift.gated_ece_drift is not None and drift.gated_ece_drift > 0.10


def test_stable_slice_raises_nothing(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, drop=0.0, seed=5))
    drift = _only(check_drift(engine, TowerConfig(), NOW))
    assert not drift.detected
    assert drift.gated_psi is not None and drift.gated_psi < 0.1
    assert drift.gated_ece_drift is not None and abs(drift.gated_ece_drift) < 0.05


def test_min_outcome_and_decision_gates(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, n=150, drop=0.4, beta_after=(2.0, 2.0)))
    drift = _only(check_drift(engine, TowerConfig(), NOW))
    assert drift.ece_drift is not None and drift.ece_drift > 0.1  # the report has it ...
    assert drift.gated_ece_drift is None  # ... but 150 outcomes < min_outcomes 200
    assert drift.psi is not None and drift.psi > 0.25
    assert drift.gated_psi is None  # 150 decisions < psi_min_decisions 1000
    assert drift.sequential is not None and drift.sequential.seen == 300
    lower = TowerConfig(alerts=Alerts(min_outcomes=100, psi_min_decisions=100))
    drift = _only(check_drift(engine, lower, NOW))
    assert drift.gated_ece_drift is not None and drift.gated_psi is not None


def test_adwin_flag_needs_min_outcomes(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, n=90, drop=0.6))
    monitor = SequentialMonitor(0.002, 5000)
    monitor.refresh(engine, NOW)
    state = monitor.states(NOW, DAY, min_outcomes=200)[(MODEL, ACTION)]
    assert state.seen == 180 and state.last_detection is not None  # ADWIN signalled ...
    assert not state.detected  # ... but from fewer outcomes than the gate: no flag
    assert monitor.states(NOW, DAY, min_outcomes=150)[(MODEL, ACTION)].detected


def test_replay_is_bounded_and_later_refreshes_feed_only_new_outcomes(db_url: str) -> None:
    rng = np.random.default_rng(4)
    engine = load(db_url, window_events(T0, 300, rng, prefix="a") + window_events(T0, 50, rng, prefix="b",
                                                                                   action="other"))
    monitor = SequentialMonitor(0.002, replay_outcomes=120)
    assert monitor.refresh(engine, T0 + DAY) == 120 + 50
    assert monitor.detectors[(MODEL, ACTION)].seen == 120
    assert monitor.detectors[(MODEL, "other")].seen == 50
    assert monitor.refresh(engine, T0 + DAY) == 0
    load(db_url, window_events(T0 + DAY, 30, rng, prefix="c"))
    assert monitor.refresh(engine, T0 + 2 * DAY) == 30
    assert monitor.detectors[(MODEL, ACTION)].seen == 150


def test_replay_reads_only_outcomes_observed_up_to_now(db_url: str) -> None:
    rng = np.random.default_rng(6)
    engine = load(db_url, window_events(T0, 100, rng, prefix="a", span_us=DAY // 2)
                  + window_events(T0 + DAY, 100, rng, prefix="b", span_us=DAY // 2))
    monitor = SequentialMonitor(0.002, 5000)
    assert monitor.refresh(engine, T0 + DAY) == 100


def _only(report):  # type: ignore[no-untyped-def]
    assert len(report.slices) == 1, report.slices
    return report.slices[0]
