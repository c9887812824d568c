"""Drift detection: PSI and the confidence-shift detector see a confidence shift, ADWIN an accuracy
drop at unchanged confidence, none fires on a stable stream, and small slices and small shifts are
gated."""

from __future__ import annotations

import re

import numpy as np
import pytest
from drift_helpers import ACTION, DAY, MODEL, planted_drift, window_events
from engine_helpers import HOUR, T0, load

from collectors.alerts import evaluate, list_alerts
from collectors.config import Alerts, TowerConfig
from collectors.drift import (
    CalibrationChangeDetector,
    ConfidenceMonitor,
    ConfidenceShiftDetector,
    SequentialMonitor,
    SequentialState,
    check_drift,
)

NOW = T0 + 2 * DAY
MINUTE = 60_000_000


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
    assert drift.shift_detected  # the label-free sequential detector sees it too


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
    assert drift.shift is not None and not drift.shift_detected  # confidence did not move


def test_stable_slice_raises_nothing(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, drop=0.0, seed=5))
    drift = _only(check_drift(engine, TowerConfig(), NOW))
    assert not drift.detected and not drift.shift_detected
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


def test_a_lasting_calibration_drift_keeps_the_flag_until_it_recovers_or_goes_quiet() -> None:
    # One outcome a minute: 3 calibrated days, 4 drifted days (accuracy -0.2), then 3 recovered days.
    per_day = 1440
    conf, correct = _stream(5, 10 * per_day, onset=3 * per_day)
    recovered = np.random.default_rng(6).random(3 * per_day) < conf[7 * per_day:]
    correct[7 * per_day:] = recovered
    monitor = SequentialMonitor(0.002, 5000, persist_delta=0.05)
    key = (MODEL, ACTION)
    fed = [0]

    def state_after(minutes: int) -> SequentialState:
        for i in range(fed[0], minutes):
            monitor.feed(key, float(conf[i]), bool(correct[i]), T0 + i * MINUTE)
        fed[0] = minutes
        return monitor.states(T0 + minutes * MINUTE, DAY, min_outcomes=200)[key]

    assert not state_after(3 * per_day).detected  # calibrated: nothing
    drifted = state_after(6 * per_day + per_day // 2)  # 3.5 days into the drift
    assert drifted.last_detection is not None
    assert drifted.last_detection.at_us < T0 + (6 * per_day + per_day // 2) * MINUTE - DAY  # older than the window
    assert drifted.detected and drifted.persisting  # still paging: the model is still wrong
    recovered_state = state_after(10 * per_day)
    assert not recovered_state.detected and not recovered_state.persisting  # fixed: the flag clears
    # A slice that stops getting outcomes (a retired version) clears too.
    monitor2 = SequentialMonitor(0.002, 5000, persist_delta=0.05)
    for i in range(6 * per_day):
        monitor2.feed(key, float(conf[i]), bool(correct[i]), T0 + i * MINUTE)
    assert monitor2.states(T0 + 6 * per_day * MINUTE, DAY, 200)[key].persisting
    assert not monitor2.states(T0 + 8 * per_day * MINUTE, DAY, 200)[key].detected


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


def test_replay_reads_only_decisions_within_the_lookback(db_url: str) -> None:
    # 100 decisions (with outcomes) on day 0, 100 on day 10; a 5-day lookback at day 11 sees only the latter.
    rng = np.random.default_rng(8)
    engine = load(db_url, window_events(T0, 100, rng, prefix="a", span_us=DAY // 2)
                  + window_events(T0 + 10 * DAY, 100, rng, prefix="b", span_us=DAY // 2))
    now = T0 + 11 * DAY
    assert SequentialMonitor(0.002, 5000, replay_lookback_us=5 * DAY).refresh(engine, now) == 100
    assert SequentialMonitor(0.002, 5000).refresh(engine, now) == 200  # no lookback: everything
    shifts = ConfidenceMonitor(0.002, 0.05, 200, 5000, replay_lookback_us=5 * DAY)
    assert shifts.refresh(engine, now) == 100
    config = TowerConfig()
    assert SequentialMonitor.from_config(config.alerts).replay_lookback_us == 30 * DAY  # the default, 30d


# ---- the confidence-shift detector (ADWIN on confidence, effect-size gated) ------------------------


def _confidences(seed: int, n: int, onset: int, after: tuple[float, float]) -> np.ndarray:
    """Confidence ~ Beta(8, 2) (mean 0.8), then Beta(`after`) from `onset`."""
    rng = np.random.default_rng(seed)
    conf = rng.beta(8, 2, n)
    conf[onset:] = rng.beta(*after, n - onset)
    return conf


def _shift_detector(conf: np.ndarray, min_delta: float = 0.05, min_decisions: int = 200
                    ) -> ConfidenceShiftDetector:
    detector = ConfidenceShiftDetector(0.002, min_delta, min_decisions)
    for i, c in enumerate(conf.tolist()):
        detector.update(c, i)
    return detector


@pytest.mark.parametrize(("seed", "after"), [(1, (5.0, 3.0)), (2, (5.0, 3.0)), (3, (5.0, 3.0)),
                                             (4, (9.0, 1.0))])  # 0.8 -> 0.625, and up to 0.9
def test_confidence_shift_is_caught_within_300_decisions_either_way(seed: int, after: tuple[float, float]) -> None:
    onset = 20_000
    detector = _shift_detector(_confidences(seed, 25_000, onset, after))
    first = detector.shifts[0]  # nothing before the onset ...
    assert onset <= first.signal_index <= first.index <= onset + 300, first  # ... and caught soon after
    expected = after[0] / sum(after) - 0.8  # the level after is a mean of a few dozen decisions: rough
    assert np.sign(first.delta) == np.sign(expected) and 0.05 <= abs(first.delta) <= 2 * abs(expected)
    assert abs(first.mean_before - 0.8) < 0.01


@pytest.mark.parametrize("seed", range(1, 6))
def test_confidence_shift_detector_stays_quiet_on_a_stable_stream(seed: int) -> None:
    detector = _shift_detector(_confidences(seed, 30_000, 30_000, (8.0, 2.0)))
    assert detector.shifts == [] and detector.last_shift is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_significant_shift_smaller_than_min_delta_raises_nothing(seed: int) -> None:
    conf = _confidences(seed, 45_000, 30_000, (7.8, 2.2))  # 0.8 -> 0.78
    detector = _shift_detector(conf)
    assert detector.signals >= 1  # ADWIN finds it significant ...
    assert detector.shifts == []  # ... but 0.02 is below min_delta 0.05
    assert _shift_detector(conf, min_delta=0.01).shifts  # a lower gate lets it through


def test_a_shift_counts_only_after_min_decisions() -> None:
    conf = _confidences(5, 3_000, 100, (3.0, 3.0))  # a big shift 100 decisions in
    early = _shift_detector(conf, min_decisions=50).shifts
    assert early and early[0].index < 300
    late = _shift_detector(conf, min_decisions=1000).shifts
    assert late and late[0].index >= 1000


def test_confidence_shift_replay_after_a_restart_finds_the_same_shift(db_url: str) -> None:
    rng = np.random.default_rng(8)
    before = window_events(T0, 1100, rng, prefix="ref")
    after = window_events(T0 + DAY, 1100, rng, prefix="cur", beta=(5.0, 3.0))
    engine = load(db_url, before)
    running = ConfidenceMonitor(0.002, 0.05, 200, 5000)
    assert running.refresh(engine, T0 + DAY) == 1100
    assert running.states(T0 + DAY, DAY)[(MODEL, ACTION)].last_shift is None
    load(db_url, after[:1100])  # the first half of the shifted day, stored later
    load(db_url, after[1100:])
    assert running.refresh(engine, T0 + 2 * DAY) == 1100  # only the new decisions, by seq
    shift = running.states(T0 + 2 * DAY, DAY)[(MODEL, ACTION)]
    assert shift.detected and shift.last_shift is not None
    assert T0 + DAY <= shift.last_shift.at_us and shift.last_shift.index - 1100 <= 300
    restarted = ConfidenceMonitor(0.002, 0.05, 200, 5000)
    assert restarted.refresh(engine, T0 + 2 * DAY) == 2200  # the replay
    assert restarted.states(T0 + 2 * DAY, DAY)[(MODEL, ACTION)] == shift
    # a replay bound that cuts into the stable day still finds the shift, at about the same decision
    bounded = ConfidenceMonitor(0.002, 0.05, 200, replay_decisions=1500)
    bounded.refresh(engine, T0 + 2 * DAY)
    found = bounded.states(T0 + 2 * DAY, DAY)[(MODEL, ACTION)].last_shift
    assert found is not None and abs(found.at_us - shift.last_shift.at_us) <= 2 * HOUR
    # evaluated as of the stable day's end, the replay reads only what was proposed by then
    past = ConfidenceMonitor(0.002, 0.05, 200, 5000)
    assert past.refresh(engine, T0 + DAY) == 1100
    assert past.states(T0 + DAY, DAY)[(MODEL, ACTION)].last_shift is None


def test_confidence_shift_alert_fires_after_for_and_resolves_a_window_later(sqlite_url: str) -> None:
    engine = load(sqlite_url, planted_drift(NOW, drop=0.0, beta_after=(5.0, 3.0)))
    config = TowerConfig()
    monitor = SequentialMonitor.from_config(config.alerts)
    shift_at = _only(check_drift(engine, config, NOW, monitor)).shift.last_shift.at_us

    def state(at: int) -> tuple[str, str | None] | None:
        found = [(s.state, s.transition) for s in evaluate(engine, config, at, monitor).statuses
                 if s.rule.alertname == "HitlConfidenceShift"]
        return found[0] if found else None

    assert state(NOW) == ("pending", "pending")
    assert state(NOW + 5 * MINUTE) == ("firing", "fired")
    assert state(NOW + HOUR) == ("firing", None)
    assert state(shift_at + DAY + MINUTE) == ("resolved", "resolved")  # the flag is an event: a window later
    assert state(shift_at + DAY + 2 * MINUTE) is None
    [episode] = [e for e in list_alerts(engine) if e.alertname == "HitlConfidenceShift"]
    assert episode.labels == {"alertname": "HitlConfidenceShift", "severity": "warning",
                              "model_version": MODEL, "action_type": ACTION}
    assert episode.starts_at == NOW + 5 * MINUTE and episode.ends_at == shift_at + DAY + MINUTE
    assert "ADWIN (delta 0.002) on confidence" in episode.annotations["description"]
    assert re.search(r"from 0\.[78]\d\d to 0\.[56]\d\d \(-0\.\d+;", episode.annotations["description"])


def test_confidence_shift_flag_reaches_the_observation_with_its_gate(sqlite_url: str) -> None:
    from collectors.alerts.observe import drift_observations

    engine = load(sqlite_url, planted_drift(NOW, drop=0.0, beta_after=(5.0, 3.0)))
    config = TowerConfig()
    [obs] = drift_observations(check_drift(engine, config, NOW), config)["confidence_shift"]
    assert obs.value == 1.0 and obs.samples == 2200
    assert obs.details["mean_before"] == pytest.approx(0.8, abs=0.02)
    assert obs.details["shift"] < -0.1


def _only(report):  # type: ignore[no-untyped-def]
    assert len(report.slices) == 1, report.slices
    return report.slices[0]
