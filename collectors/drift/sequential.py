"""Sequential calibration-change detection: ADWIN over each decision's calibration error.

Per (model_version, action_type), every decision with an outcome contributes
one sample, `confidence - agent_correct` (0/1), in outcome order. Its mean is
the signed calibration gap: near 0 for a calibrated agent, +0.2 when accuracy
falls 0.2 at unchanged confidence. ADWIN (river, delta from config) keeps an
adaptive window and signals when two sub-windows' means differ more than
chance allows; it catches an accuracy drop that PSI cannot see (PSI only
looks at confidence) without waiting for a whole window of outcomes.

A detection is an event. ADWIN is two-sided; a detection raises the flag
only when the mean error went up (the samples ADWIN kept have a higher mean
than those it dropped): the agent became more overconfident, the direction
that lets wrong actions through unreviewed. A change toward underconfidence
(the agent is right more often than it says) is kept in the detector's
history but raises nothing; ece_drift still shows it. This also halves the
detector's chance false alarms (in bench/drift.py's stable runs the rare
false signal of delta 0.002 came with a falling mean).

The slice counts as "drift detected", once the detector has seen at least
`min_outcomes` outcomes, while either
- its latest such detection is younger than the alert window (by the
  triggering outcome's observed_at): the change itself; or
- the drift persists: the mean error over ADWIN's current window is still at
  least `calibration_persist_delta` (config, 0.05) above the mean before the
  detection, and the slice had an outcome within the alert window.
Why the second: outcomes come late (days, for KYC), so by the time a drift is
detected the windowed ece_drift (this window against the one before) has
often gone flat again, and a model that stays miscalibrated must keep
paging until it is fixed or rolled back, not go quiet a day after the
detection. It clears when the error falls back (ADWIN drops the drifted part
once the model recovers) or the slice stops getting outcomes (a retired
model version). The confidence-shift detector does not persist this way: a
new confidence level is a change to look at, not a fault in itself.

Start-up: a fresh monitor replays the newest `adwin_replay_outcomes` outcomes
of each slice among the decisions proposed within `replay_lookback` (30 days
by default: bounded work and memory, whatever the store's size or age), then
feeds only outcomes stored since (by outcome seq). A change older than the
replay is out of view, and a change inside it is found again, with the time
of its triggering outcome, so a restart neither loses nor invents an alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.config import duration_seconds
from collectors.drift import query

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import Alerts
    from collectors.drift.confidence import ConfidenceMonitor

Slice = tuple[str, str]  # (model_version, action_type)


@dataclass(frozen=True)
class Detection:
    """One ADWIN signal: when, after how many samples, and the mean error on each side of its cut."""

    at_us: int  # observed_at of the outcome whose sample triggered it
    index: int  # samples fed to this detector up to and including that one
    mean_before: float  # mean calibration error of the samples ADWIN dropped (the older part)
    mean_after: float  # mean of the window it kept (the recent part, often still partly pre-change)

    @property
    def overconfident(self) -> bool:
        """True when the mean error rose: the agent's confidence now overstates its accuracy more."""
        return self.mean_after > self.mean_before


class CalibrationChangeDetector:
    """ADWIN over one slice's stream of confidence - agent_correct."""

    def __init__(self, delta: float) -> None:
        from river.drift import ADWIN  # imported on first use: river.drift takes ~2 s to import

        self._adwin = ADWIN(delta=delta)
        self.seen = 0
        self.last_at_us: int | None = None  # observed_at of the latest sample
        self.detections: list[Detection] = []

    def update(self, confidence: float, agent_correct: bool, at_us: int) -> Detection | None:
        """Feed one decision's calibration error; the Detection when ADWIN signals a change."""
        width, mean = self._adwin.width, self._adwin.estimation
        self._adwin.update(confidence - (1.0 if agent_correct else 0.0))
        self.seen += 1
        self.last_at_us = at_us if self.last_at_us is None else max(self.last_at_us, at_us)
        if not self._adwin.drift_detected:
            return None
        kept, kept_mean = self._adwin.width, self._adwin.estimation
        dropped = width + 1 - kept  # the window before, plus this sample, minus what is kept
        total = mean * width + (confidence - (1.0 if agent_correct else 0.0))
        dropped_mean = (total - kept_mean * kept) / dropped if dropped > 0 else kept_mean
        found = Detection(at_us, self.seen, float(dropped_mean), float(kept_mean))
        self.detections.append(found)
        return found

    @property
    def mean(self) -> float:
        """Current mean calibration error over ADWIN's window."""
        return float(self._adwin.estimation)

    @property
    def last_detection(self) -> Detection | None:
        """The latest signal toward overconfidence (the kind that raises the flag), if any."""
        return next((d for d in reversed(self.detections) if d.overconfident), None)


@dataclass(frozen=True)
class SequentialState:
    """What a slice's detector says at an evaluation."""

    seen: int
    mean_error: float
    last_detection: Detection | None  # the latest toward overconfidence
    detected: bool  # that detection within the window or persisting, with at least min_outcomes seen
    persisting: bool = False  # the error is still persist_delta above its level before that detection


@dataclass
class SequentialMonitor:
    """One detector per slice, kept between evaluations (replay at start-up, then new outcomes).

    It also carries the confidence-shift monitor (`shifts`, collectors.drift.confidence), so
    every caller that keeps one monitor between evaluations keeps both sequential detectors;
    `check_drift` adds one from config when it is missing.
    """

    delta: float
    replay_outcomes: int
    persist_delta: float = 0.05
    detectors: dict[Slice, CalibrationChangeDetector] = field(default_factory=dict)
    cursor: int | None = None  # outcome seq read up to; None before the start-up replay
    shifts: ConfidenceMonitor | None = None
    replay_lookback_us: int | None = None  # the start-up replay reads decisions this recent (None: all)

    @classmethod
    def from_config(cls, alerts: Alerts) -> SequentialMonitor:
        """A monitor with the configured ADWIN delta and replay bound, and its confidence-shift monitor."""
        from collectors.drift.confidence import ConfidenceMonitor

        return cls(alerts.adwin_delta, alerts.adwin_replay_outcomes, alerts.calibration_persist_delta,
                   shifts=ConfidenceMonitor.from_config(alerts),
                   replay_lookback_us=duration_seconds(alerts.replay_lookback) * 1_000_000)

    def refresh(self, engine: Engine, now_us: int) -> int:
        """Feed the outcomes not seen yet (all of the bounded replay on the first call); returns how many."""
        rows, self.cursor = query.read_stream(engine, self.cursor, now_us, self.replay_outcomes,
                                              self.replay_lookback_us, query.last_outcome_seq,
                                              query.latest_errors, query.new_errors)
        for row in rows:
            self.feed((row.model_version, row.action_type), row.confidence, row.agent_correct,
                      row.observed_at)
        return len(rows)

    def feed(self, key: Slice, confidence: float, agent_correct: bool, at_us: int) -> Detection | None:
        """Feed one sample to the slice's detector (created on first use)."""
        detector = self.detectors.get(key)
        if detector is None:
            detector = self.detectors[key] = CalibrationChangeDetector(self.delta)
        return detector.update(confidence, agent_correct, at_us)

    def states(self, now_us: int, window_us: int, min_outcomes: int) -> dict[Slice, SequentialState]:
        """Each slice's state at `now_us`: detected while its latest signal is younger than the window
        or the drift it found persists (module docstring)."""
        out = {}
        for key, detector in self.detectors.items():
            last = detector.last_detection
            recent = last is not None and now_us - window_us <= last.at_us <= now_us
            fed = detector.last_at_us is not None and detector.last_at_us >= now_us - window_us
            persisting = (last is not None and last.at_us <= now_us and fed
                          and detector.mean - last.mean_before >= self.persist_delta)
            out[key] = SequentialState(detector.seen, detector.mean, last,
                                       (recent or persisting) and detector.seen >= min_outcomes, persisting)
        return out


def walk(monitor: SequentialMonitor, engine: Engine, instants: Iterable[int]) -> Iterator[int]:
    """Yield each of the ascending `instants` once both of the monitor's detectors have been fed
    exactly the history observed up to it: the start-up replay as of the first instant, then, step
    by step, the outcomes observed and the decisions proposed since.

    For a replay of past evaluations (the demo's alert history): `refresh` alone would read the
    whole store at the first instant and then see nothing new. Each read is one time-ordered scan;
    the cursors end at the store's newest seqs, so a later `refresh` feeds only what is stored
    after the walk.
    """
    shifts = monitor.shifts
    if shifts is None:
        raise ValueError("the monitor has no confidence-shift monitor (use SequentialMonitor.from_config)")
    points = list(instants)
    if not points:
        return
    first, last = points[0], points[-1]
    monitor.refresh(engine, first)  # the bounded start-up replay up to the first instant
    shifts.refresh(engine, first)
    with engine.connect() as conn:
        errors = query.errors_between(conn, first, last, monitor.cursor or 0)
        confidences = query.confidences_between(conn, first, last, shifts.cursor or 0)
    e = c = 0
    for at in points:
        while e < len(errors) and errors[e].observed_at <= at:
            row = errors[e]
            monitor.feed((row.model_version, row.action_type), row.confidence, row.agent_correct, row.observed_at)
            e += 1
        while c < len(confidences) and confidences[c].proposed_at <= at:
            conf = confidences[c]
            shifts.feed((conf.model_version, conf.action_type), conf.confidence, conf.proposed_at)
            c += 1
        yield at
