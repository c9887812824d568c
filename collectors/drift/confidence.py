"""Label-free sequential detection of a confidence shift: ADWIN over each decision's confidence.

Why: psi compares whole 24 h windows, so a shift shows only once it fills a
good share of the window (about 350-450 decisions at 1500 a day in
bench/drift.py). ADWIN (river, delta `alerts.adwin_delta`) over the
confidence stream itself flags it within about 100-140 decisions, and needs
no outcome: every decision of a (model_version, action_type) is fed when it is
stored, in decision order (proposed_at, then seq). Both directions count: a
model that suddenly claims more confidence moves auto-approvals as much as
one that claims less.

Effect-size gate: ADWIN's signal says the mean moved beyond chance, and with
enough traffic a move of 0.01 is beyond chance too; nobody should be paged
for that. So a signal only opens a candidate: the level before it is the
mean confidence of the part ADWIN dropped, the level after it the mean of
the decisions since. The candidate counts as a `Shift` once
|after - before| - 2.5 x its standard error >= `confidence_shift_min_delta`
(the move is at least that large, beyond noise; judged from 20 decisions
after the signal on, the variance after floored at the one before) and the
detector has seen at least `confidence_shift_min_decisions` decisions. Why not judge the signal
itself by |mean kept - mean dropped|: at the signal ADWIN keeps the longest
recent part with no significant cut, which still holds many pre-change
decisions, so its mean understates the move (0.003 for a 0.175 shift in a
bench run); and river's ADWIN restarts after a signal, so a shift whose
signal was gated out would never be seen again.

A shift is an event: the slice counts as "shifted" while its latest shift is
younger than the alert window (by the confirming decision's proposed_at).
psi stays the windowed measure of how far the distribution moved, and
catches slow drifts whose every step is below the gate.

Start-up, as `SequentialMonitor`: a fresh monitor replays the newest
`confidence_shift_replay_decisions` decisions of each slice proposed up to
now (and within `replay_lookback`), then feeds only decisions stored since (by decision seq), so a restart
finds a shift inside the replay again: with the same confirming decision
when the replay covers the stream it was found on, about the same otherwise
(ADWIN's state depends on where it starts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.config import duration_seconds
from collectors.drift import query

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import Alerts
    from collectors.drift.sequential import Slice

Z = 2.5  # standard errors the move must clear beyond min_delta (one-sided ~99%)
MIN_AFTER = 20  # decisions after a signal before its level is judged


@dataclass(frozen=True)
class Shift:
    """A confirmed confidence shift: when, after how many decisions, and the level on each side."""

    at_us: int  # proposed_at of the decision that confirmed it
    index: int  # decisions fed to this detector up to and including that one
    signal_index: int  # decisions fed up to ADWIN's signal
    mean_before: float  # mean confidence of the part ADWIN dropped at the signal
    mean_after: float  # mean confidence of the decisions since the signal

    @property
    def delta(self) -> float:
        """The move of the mean confidence (negative: the agent became less confident)."""
        return self.mean_after - self.mean_before


@dataclass
class _Running:
    """Count, mean and variance of a run of samples (Welford)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        step = x - self.mean
        self.mean += step / self.n
        self.m2 += step * (x - self.mean)

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


@dataclass
class _Candidate:
    """An unconfirmed signal: the level before it and the decisions since."""

    signal_index: int
    before: float  # mean of the part ADWIN dropped
    before_n: int
    before_variance: float  # of ADWIN's whole window at the signal (a floor for the variance after)
    after: _Running = field(default_factory=_Running)

    def lower_bound(self) -> float:
        """|after - before| less Z standard errors. The variance after is floored at the one before:
        a few dozen decisions can look much tighter than they are, which would let a small shift in."""
        variance = max(self.after.variance, self.before_variance)
        se = math.sqrt(variance * (1 / self.after.n + 1 / self.before_n))
        return abs(self.after.mean - self.before) - Z * se


class ConfidenceShiftDetector:
    """ADWIN over one slice's stream of confidence, with the effect-size gate."""

    def __init__(self, delta: float, min_delta: float, min_decisions: int) -> None:
        from river.drift import ADWIN  # imported on first use: river.drift takes ~2 s to import

        self._adwin = ADWIN(delta=delta)
        self.min_delta = min_delta
        self.min_decisions = min_decisions
        self.seen = 0
        self.signals = 0  # raw ADWIN signals, confirmed or not
        self.shifts: list[Shift] = []
        self._candidate: _Candidate | None = None
        self._window = _Running()  # the samples since ADWIN last restarted (river restarts it at a signal)

    def update(self, confidence: float, at_us: int) -> Shift | None:
        """Feed one decision's confidence; the Shift when it confirms one."""
        width, mean = self._adwin.width, self._adwin.estimation
        self._adwin.update(confidence)
        self._window.add(confidence)
        self.seen += 1
        if self._adwin.drift_detected:
            self.signals += 1
            kept, kept_mean = self._adwin.width, self._adwin.estimation
            dropped = int(width + 1 - kept)  # the window before, plus this sample, minus what is kept
            if dropped > 0:
                before = (mean * width + confidence - kept_mean * kept) / dropped
                self._candidate = _Candidate(self.seen, float(before), dropped, self._window.variance)
            self._window = _Running()
            return None
        candidate = self._candidate
        if candidate is None:
            return None
        candidate.after.add(confidence)
        if (candidate.after.n < MIN_AFTER or self.seen < self.min_decisions
                or candidate.lower_bound() < self.min_delta):
            return None
        found = Shift(at_us, self.seen, candidate.signal_index, candidate.before, candidate.after.mean)
        self.shifts.append(found)
        self._candidate = None
        return found

    @property
    def mean(self) -> float:
        """Mean confidence over ADWIN's window (the decisions since its last signal)."""
        return float(self._adwin.estimation)

    @property
    def last_shift(self) -> Shift | None:
        """The latest confirmed shift, if any."""
        return self.shifts[-1] if self.shifts else None


@dataclass(frozen=True)
class ConfidenceState:
    """What a slice's confidence-shift detector says at an evaluation."""

    seen: int
    mean_confidence: float
    last_shift: Shift | None
    detected: bool  # that shift within the window


@dataclass
class ConfidenceMonitor:
    """One confidence-shift detector per slice, kept between evaluations (replay, then new decisions)."""

    delta: float
    min_delta: float
    min_decisions: int
    replay_decisions: int
    detectors: dict[Slice, ConfidenceShiftDetector] = field(default_factory=dict)
    cursor: int | None = None  # decision seq read up to; None before the start-up replay
    replay_lookback_us: int | None = None  # the start-up replay reads decisions this recent (None: all)

    @classmethod
    def from_config(cls, alerts: Alerts) -> ConfidenceMonitor:
        """A monitor with the configured ADWIN delta, effect-size gate and replay bound."""
        return cls(alerts.adwin_delta, alerts.confidence_shift_min_delta, alerts.confidence_shift_min_decisions,
                   alerts.confidence_shift_replay_decisions,
                   replay_lookback_us=duration_seconds(alerts.replay_lookback) * 1_000_000)

    def refresh(self, engine: Engine, now_us: int) -> int:
        """Feed the decisions not seen yet (all of the bounded replay on the first call); returns how many."""
        rows, self.cursor = query.read_stream(engine, self.cursor, now_us, self.replay_decisions,
                                              self.replay_lookback_us, query.last_decision_seq,
                                              query.latest_confidences, query.new_confidences)
        for row in rows:
            self.feed((row.model_version, row.action_type), row.confidence, row.proposed_at)
        return len(rows)

    def feed(self, key: Slice, confidence: float, at_us: int) -> Shift | None:
        """Feed one decision to the slice's detector (created on first use)."""
        detector = self.detectors.get(key)
        if detector is None:
            detector = self.detectors[key] = ConfidenceShiftDetector(self.delta, self.min_delta,
                                                                     self.min_decisions)
        return detector.update(confidence, at_us)

    def states(self, now_us: int, window_us: int) -> dict[Slice, ConfidenceState]:
        """Each slice's state at `now_us`: detected while its latest shift is younger than the window."""
        out = {}
        for key, detector in self.detectors.items():
            last = detector.last_shift
            recent = last is not None and now_us - window_us <= last.at_us <= now_us
            out[key] = ConfidenceState(detector.seen, detector.mean, last, recent)
        return out
