"""Drift detector benchmark: detection delay (in decisions) and false alarms, three scenarios.

    python bench/drift.py                        # 5 seeds, 1500 decisions a day, 30 days
    python bench/drift.py --seeds 20 --per-day 3000
    python bench/drift.py --seeds 20 --sweep         # plus shifts of several sizes around the gate

One (model_version, action_type) slice of a calibrated agent: confidence ~
Beta(8, 2) (mean 0.8), agent_correct ~ Bernoulli(confidence), outcomes known
at once (so outcome order is decision order), decisions spread uniformly
over 30 days. Scenarios, with the change at day 20:

- accuracy-drop: agent_correct ~ Bernoulli(confidence - 0.2) from day 20;
  the confidence distribution does not move (PSI must stay quiet);
- confidence-shift: confidence ~ Beta(5, 3) (mean 0.63) from day 20, still
  calibrated (ECE and ADWIN on calibration error must stay quiet);
- stable: nothing changes for 30 days.

Detectors, each with the shipped config's thresholds and gates
(config/tower.yaml) and the built-in alert rules' `for` and hysteresis
(`collectors.alerts.rules.build_rules`, `transition`), evaluated every
--tick seconds like `hitl-tower alerts --watch`:

- ADWIN calibration: `collectors.drift.CalibrationChangeDetector` (river
  ADWIN, delta 0.002) on confidence - agent_correct; "signal" is the raw
  detection toward overconfidence, "alert" the HitlCalibrationChange rule
  firing;
- ADWIN confidence: `collectors.drift.ConfidenceShiftDetector` (river ADWIN,
  delta 0.002, on confidence alone, label-free) behind its effect-size gate
  (alerts.confidence_shift_min_delta, min_decisions); "signal" is a
  confirmed shift, "alert" the HitlConfidenceShift rule firing; ADWIN
  signals the gate turned down are counted apart;
- ece_drift warning / critical and psi warning / critical: the alert
  window's values (24h against the 24h before), computed with the KPI
  functions of `collectors.kpis.calibration` on per-tick bin sums.

Delay is the number of decisions proposed from the change to the moment the
detector signals (or the alert fires); a false alarm is a signal or an alert
before the change, or anywhere in the stable run. The figures are printed
with the command that made them; they are seeded and so reproducible.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_S = 86_400
US = 1_000_000
CONF_BEFORE = (8.0, 2.0)
CONF_AFTER = (5.0, 3.0)
ACCURACY_DROP = 0.2
SCENARIOS = ("accuracy-drop", "confidence-shift", "stable")


@dataclass
class Stream:
    """A scenario's decisions in time order, and the index of the first changed one (len: none)."""

    t_us: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    onset: int


def make_stream(scenario: str, seed: int, per_day: int, days: int, onset_day: float) -> Stream:
    """The decisions of one scenario run."""
    rng = np.random.default_rng(seed)
    n = per_day * days
    t = np.sort(rng.uniform(0, days * DAY_S, n))
    conf = rng.beta(*CONF_BEFORE, n)
    onset = n if scenario == "stable" else int(np.searchsorted(t, onset_day * DAY_S))
    p = conf.copy()
    if scenario == "accuracy-drop":
        p[onset:] = np.clip(conf[onset:] - ACCURACY_DROP, 0.0, 1.0)
    elif scenario == "confidence-shift":
        conf[onset:] = rng.beta(*CONF_AFTER, n - onset)
        p[onset:] = conf[onset:]
    correct = rng.random(n) < p
    return Stream((t * US).astype(np.int64), conf, correct, onset)


@dataclass
class Track:
    """What one detector did in one run."""

    signals: list[int] = field(default_factory=list)  # decision index at each raw signal
    alerts: list[int] = field(default_factory=list)  # decision index at each alert firing
    ignored: int = 0  # raw ADWIN signals that raise no flag by design (see the detectors)


def adwin_signals(stream: Stream, delta: float) -> tuple[list[tuple[int, int]], int]:
    """(decision index, time) of each ADWIN detection toward overconfidence over confidence -
    agent_correct (the ones that raise the flag), and how many detections went the other way."""
    from collectors.drift import CalibrationChangeDetector

    detector = CalibrationChangeDetector(delta)
    out = []
    other = 0
    samples = zip(stream.confidence.tolist(), stream.correct.tolist(), stream.t_us.tolist())
    for i, (c, ok, t) in enumerate(samples):
        found = detector.update(c, ok, t)
        if found is not None and found.overconfident:
            out.append((i, t))
        elif found is not None:
            other += 1
    return out, other


def shift_signals(stream: Stream, alerts: Any) -> tuple[list[tuple[int, int]], int]:
    """(decision index, time) of each confirmed confidence shift (the shipped label-free detector), and
    how many raw ADWIN signals its effect-size gate turned down."""
    from collectors.drift import ConfidenceShiftDetector

    detector = ConfidenceShiftDetector(alerts.adwin_delta, alerts.confidence_shift_min_delta,
                                       alerts.confidence_shift_min_decisions)
    out = []
    for i, (c, t) in enumerate(zip(stream.confidence.tolist(), stream.t_us.tolist())):
        if detector.update(c, t) is not None:
            out.append((i, t))
    return out, detector.signals - len(out)


def flag_values(stream: Stream, ticks: list[int], detections: list[tuple[int, int]], window_s: int,
                min_seen: int) -> list[tuple[int, float | None]]:
    """A sequential detector's flag at each tick, as check_drift reports it: 1 while its latest
    detection is younger than the window, None (gated) before it has seen `min_seen` samples."""
    out: list[tuple[int, float | None]] = []
    for t in ticks:
        seen = int(np.searchsorted(stream.t_us, t))
        recent = any(t - window_s * US <= dt <= t for _, dt in detections)
        out.append((t, 1.0 if recent else 0.0) if seen >= min_seen else (t, None))
    return out


def _bin_sums(stream: Stream, tick_us: int, n_ticks: int) -> dict[str, np.ndarray]:
    """Cumulative per tick and confidence bin: decisions, confidence sum, correct, squared error."""
    from collectors.kpis.calibration import N_BINS

    tick = np.minimum(stream.t_us // tick_us, n_ticks - 1)
    b = np.minimum(np.floor(10 * stream.confidence), N_BINS - 1).astype(np.int64)
    flat = tick * N_BINS + b
    size = n_ticks * N_BINS
    ok = stream.correct.astype(float)

    def cum(weights: np.ndarray | None) -> np.ndarray:
        grid = np.bincount(flat, weights=weights, minlength=size).reshape(n_ticks, N_BINS)
        return np.vstack([np.zeros((1, N_BINS)), np.cumsum(grid, axis=0)])

    return {"n": cum(None), "conf": cum(stream.confidence), "correct": cum(ok),
            "sqerr": cum((stream.confidence - ok) ** 2)}


def windowed_values(stream: Stream, days: int, tick_s: int, window_s: int, psi_gate: int,
                    outcome_gate: int) -> list[tuple[int, float | None, float | None]]:
    """(time, gated psi, gated ece_drift) at each evaluation tick, via the KPI functions."""
    from collectors.kpis import calibration

    tick_us = tick_s * US
    n_ticks = days * DAY_S // tick_s
    w = window_s // tick_s
    sums = _bin_sums(stream, tick_us, n_ticks)

    def part(name: str, lo: int, hi: int) -> np.ndarray:
        return sums[name][hi] - sums[name][lo]

    def bins(lo: int, hi: int) -> calibration.CalibrationBins:
        return calibration.CalibrationBins(
            tuple(int(x) for x in part("n", lo, hi)), tuple(float(x) for x in part("conf", lo, hi)),
            tuple(round(x) for x in part("correct", lo, hi)),
            tuple(float(x) for x in part("sqerr", lo, hi)))

    out = []
    for k in range(2 * w, n_ticks + 1):
        cur, ref = bins(k - w, k), bins(k - 2 * w, k - w)
        n_cur, n_ref = cur.total, ref.total  # every decision has its outcome here
        psi = calibration.psi(ref.count, cur.count)
        drift = calibration.ece_drift(calibration.ece(cur), calibration.ece(ref))
        out.append((k * tick_us,
                    psi if min(n_cur, n_ref) >= psi_gate else None,
                    drift if min(n_cur, n_ref) >= outcome_gate else None))
    return out


def run_rules(values: list[tuple[int, float | None]], rules: list[Any], stream: Stream) -> dict[str, Track]:
    """Drive each rule's state machine over (time, value) evaluations; record breaches and firings."""
    from collectors.alerts.rules import transition

    tracks = {}
    for rule in rules:
        track = Track()
        state: str | None = None
        active_at: int | None = None
        for t, value in values:
            index = int(np.searchsorted(stream.t_us, t))
            if value is not None and rule.breached(value) and state is None:
                track.signals.append(index)
            change = transition(rule, state, active_at, value, t)
            if change == "pending":
                state, active_at = "pending", t
            elif change == "fired":
                state, active_at = "firing", active_at if active_at is not None else t
                track.alerts.append(index)
            elif change in ("cleared", "resolved"):
                state, active_at = None, None
        tracks[f"{rule.source} {rule.severity} (> {rule.threshold:g})"] = track
    return tracks


def run(scenario: str, seed: int, args: argparse.Namespace, config: Any) -> tuple[Stream, dict[str, Track]]:
    """Every detector over one scenario run."""
    from collectors.alerts.rules import build_rules
    from collectors.config import duration_seconds

    a = config.alerts
    window_s = duration_seconds(a.window)
    stream = make_stream(scenario, seed, args.per_day, args.days, args.onset_day)
    rules = {r.source: [] for r in build_rules(config)}
    for r in build_rules(config):
        rules[r.source].append(r)
    windowed = windowed_values(stream, args.days, args.tick, window_s, a.psi_min_decisions, a.min_outcomes)
    ticks = [t for t, _, _ in windowed]
    tracks: dict[str, Track] = {}
    detections, underconfident = adwin_signals(stream, a.adwin_delta)
    adwin = Track(signals=[i for i, _ in detections], ignored=underconfident)
    values = flag_values(stream, ticks, detections, window_s, a.min_outcomes)
    adwin.alerts = run_rules(values, rules["adwin"], stream).popitem()[1].alerts
    tracks[calibration_name(config)] = adwin
    tracks.update(run_rules([(t, d) for t, _, d in windowed], rules["ece_drift"], stream))
    tracks.update(run_rules([(t, p) for t, p, _ in windowed], rules["psi"], stream))
    shifts, gated = shift_signals(stream, a)
    shift = Track(signals=[i for i, _ in shifts], ignored=gated)
    values = flag_values(stream, ticks, shifts, window_s, a.confidence_shift_min_decisions)
    shift.alerts = run_rules(values, rules["confidence_shift"], stream).popitem()[1].alerts
    tracks[shift_name(config)] = shift
    return stream, tracks


def calibration_name(config: Any) -> str:
    """The table's name of ADWIN on calibration error."""
    return f"ADWIN calibration (delta {config.alerts.adwin_delta:g})"


def shift_name(config: Any) -> str:
    """The table's name of the confidence-shift detector."""
    return f"ADWIN confidence (shift >= {config.alerts.confidence_shift_min_delta:g})"


def _delay(events: list[int], onset: int) -> int | None:
    after = [i - onset for i in events if i >= onset]
    return after[0] if after else None


def _fmt(delays: list[int | None]) -> str:
    got = [d for d in delays if d is not None]
    if not got:
        return "-"
    return f"{int(statistics.median(got))} / {max(got)}"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per scenario (seeds 1..N)")
    parser.add_argument("--per-day", type=int, default=1500, help="decisions a day in the slice")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--onset-day", type=float, default=20.0)
    parser.add_argument("--tick", type=int, default=300, help="seconds between evaluations")
    parser.add_argument("--config", default=None, help="tower config (default: config/tower.yaml)")
    parser.add_argument("--sweep", action="store_true",
                        help="also run ADWIN confidence over shifts of several sizes around its effect-size gate")
    args = parser.parse_args(argv)
    from collectors.config import load_config

    config = load_config(args.config)
    started = time.perf_counter()
    print(f"python bench/drift.py --seeds {args.seeds} --per-day {args.per_day} --days {args.days} "
          f"--onset-day {args.onset_day:g} --tick {args.tick}{' --sweep' if args.sweep else ''}")
    print(f"config: window {config.alerts.window}, min_outcomes {config.alerts.min_outcomes}, "
          f"psi_min_decisions {config.alerts.psi_min_decisions}, "
          f"hysteresis {config.alerts.resolve_hysteresis}, adwin_delta {config.alerts.adwin_delta:g}, "
          f"confidence_shift_min_delta {config.alerts.confidence_shift_min_delta:g}, "
          f"confidence_shift_min_decisions {config.alerts.confidence_shift_min_decisions}")
    print()
    header = f"{'scenario':17} {'detector':34} {'caught':>6} {'signal delay':>13} {'alert delay':>13} " \
             f"{'false signals':>13} {'false alerts':>12}"
    print(header)
    print("-" * len(header))
    verdict: dict[str, Any] = {}
    ignored: dict[str, dict[str, int]] = {}
    for scenario in SCENARIOS:
        results: dict[str, list[tuple[int | None, int | None, int, int]]] = {}
        for seed in range(1, args.seeds + 1):
            stream, tracks = run(scenario, seed, args, config)
            for name, track in tracks.items():
                counts = ignored.setdefault(name, {})
                counts[scenario] = counts.get(scenario, 0) + track.ignored
            for name, track in tracks.items():
                results.setdefault(name, []).append((
                    _delay(track.signals, stream.onset), _delay(track.alerts, stream.onset),
                    sum(1 for i in track.signals if i < stream.onset),
                    sum(1 for i in track.alerts if i < stream.onset)))
        for name, rows in results.items():
            got = [r[1] for r in rows]
            caught = "-" if scenario == "stable" else f"{sum(g is not None for g in got)}/{len(rows)}"
            false_signals = sum(r[2] for r in rows)
            false_alerts = sum(r[3] for r in rows)
            print(f"{scenario:17} {name:34} {caught:>6} {_fmt([r[0] for r in rows]):>13} "
                  f"{_fmt([r[1] for r in rows]):>13} {false_signals:>13} {false_alerts:>12}")
            verdict[(scenario, name)] = rows
        print()
    print("delays: median / max decisions from the change to the signal or alert, "
          "over the seeds that caught it")
    print("ADWIN calibration detections toward underconfidence (raise no flag by design): "
          + ", ".join(f"{k} {v}" for k, v in ignored[calibration_name(config)].items()))
    print("ADWIN confidence signals turned down by the effect-size gate (raise no flag by design): "
          + ", ".join(f"{k} {v}" for k, v in ignored[shift_name(config)].items()))
    _goals(verdict, config)
    if args.sweep:
        sweep(args, config)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


SWEEP = (-0.02, -0.03, -0.04, +0.04, -0.06, +0.06, -0.08, -0.10, +0.10)


def sweep(args: argparse.Namespace, config: Any) -> None:
    """ADWIN confidence over a shift of the mean confidence by each size of SWEEP (Beta(8, 2) to a Beta
    of the same a + b), the rest of the run after day --onset-day: how often the effect-size gate lets
    it through and how late; the raw-signal count shows ADWIN found every one significant."""
    from collectors.drift import ConfidenceShiftDetector

    a = config.alerts
    print()
    print(f"effect-size gate sweep (confidence_shift_min_delta {a.confidence_shift_min_delta:g}): "
          f"mean confidence 0.8 -> 0.8 + shift at day {args.onset_day:g}")
    print(f"{'shift':>6} {'caught':>7} {'confirm delay':>14} {'runs with an ADWIN signal':>26}")
    for size in SWEEP:
        delays: list[int | None] = []
        signalled = 0
        for seed in range(1, args.seeds + 1):
            stream = make_stream("stable", seed, args.per_day, args.days, args.onset_day)
            onset = int(np.searchsorted(stream.t_us, int(args.onset_day * DAY_S * US)))
            rng = np.random.default_rng(1000 + seed)
            mean = 0.8 + size
            conf = stream.confidence.copy()
            conf[onset:] = rng.beta(10 * mean, 10 * (1 - mean), len(conf) - onset)
            detector = ConfidenceShiftDetector(a.adwin_delta, a.confidence_shift_min_delta,
                                               a.confidence_shift_min_decisions)
            found = None
            for i, c in enumerate(conf.tolist()):
                if detector.update(c, i) is not None and found is None:
                    found = i - onset
            signalled += detector.signals > 0
            delays.append(found)
        caught = f"{sum(d is not None for d in delays)}/{len(delays)}"
        print(f"{size:+6.2f} {caught:>7} {_fmt(delays):>14} {signalled:>26}")
    print("confirm delay: median / max decisions from the change to the confirmed shift (negative: before it)")


def _goals(verdict: dict[Any, Any], config: Any) -> None:
    drop = verdict[("accuracy-drop", calibration_name(config))]
    worst = max((r[0] for r in drop if r[0] is not None), default=None)
    ok_drop = all(r[0] is not None and r[0] <= 300 for r in drop)
    shift = verdict[("confidence-shift", shift_name(config))]
    ok_shift = all(r[1] is not None and r[1] <= 300 for r in shift)
    shift_worst = max((r[1] for r in shift if r[1] is not None), default=None)
    signal_worst = max((r[0] for r in shift if r[0] is not None), default=None)

    def false_alarms(stable: bool) -> tuple[int, int]:
        runs = [r for (s, _), rows in verdict.items() if (s == "stable") == stable for r in rows]
        return sum(r[3] for r in runs), sum(r[2] for r in runs)

    stable_false, stable_signals = false_alarms(True)
    change_false, change_signals = false_alarms(False)
    print(f"goal: accuracy drop caught by ADWIN calibration within 300 decisions: {'yes' if ok_drop else 'NO'} "
          f"(worst {worst})")
    print("goal: confidence shift caught within 300 decisions, by ADWIN confidence's alert: "
          f"{'yes' if ok_shift else 'NO'} (worst alert {shift_worst}, worst signal {signal_worst})")
    print(f"goal: zero false alarms on the stable run: {'yes' if stable_false == 0 else 'NO'} "
          f"({stable_false} false alerts, {stable_signals} false raw signals); "
          "before the change in the other "
          f"runs: {change_false} false alerts, {change_signals} false raw signals")


if __name__ == "__main__":
    sys.exit(main())
