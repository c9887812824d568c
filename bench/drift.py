"""Drift detector benchmark: detection delay (in decisions) and false alarms, three scenarios.

    python bench/drift.py                        # 5 seeds, 1500 decisions a day, 30 days
    python bench/drift.py --seeds 20 --per-day 3000

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

- ADWIN: `collectors.drift.CalibrationChangeDetector` (river ADWIN,
  delta 0.002) on confidence - agent_correct; "signal" is the raw detection,
  "alert" the HitlCalibrationChange rule firing;
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
REFERENCE = "ADWIN on confidence (not shipped)"


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
    ignored: int = 0  # ADWIN detections toward underconfidence (raise no flag by design)


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


def adwin_on_confidence(stream: Stream, delta: float) -> list[int]:
    """Reference only, not shipped: river ADWIN on confidence itself (a label-free sequential detector)."""
    from river.drift import ADWIN

    detector = ADWIN(delta=delta)
    out = []
    for i, c in enumerate(stream.confidence.tolist()):
        detector.update(c)
        if detector.drift_detected:
            out.append(i)
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
    detections, underconfident = adwin_signals(stream, a.adwin_delta)
    windowed = windowed_values(stream, args.days, args.tick, window_s, a.psi_min_decisions, a.min_outcomes)
    tracks: dict[str, Track] = {}
    adwin = Track(signals=[i for i, _ in detections], ignored=underconfident)
    seen_at = stream.t_us
    adwin_values = []
    for t, _, _ in windowed:
        seen = int(np.searchsorted(seen_at, t))
        recent = any(t - window_s * US <= dt <= t for _, dt in detections)
        adwin_values.append((t, 1.0 if recent else 0.0) if seen >= a.min_outcomes else (t, None))
    adwin.alerts = run_rules(adwin_values, rules["adwin"], stream).popitem()[1].alerts
    tracks[f"ADWIN (delta {a.adwin_delta:g})"] = adwin
    tracks.update(run_rules([(t, d) for t, _, d in windowed], rules["ece_drift"], stream))
    tracks.update(run_rules([(t, p) for t, p, _ in windowed], rules["psi"], stream))
    tracks[REFERENCE] = Track(signals=adwin_on_confidence(stream, a.adwin_delta))
    return stream, tracks


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
    args = parser.parse_args(argv)
    from collectors.config import load_config

    config = load_config(args.config)
    started = time.perf_counter()
    print(f"python bench/drift.py --seeds {args.seeds} --per-day {args.per_day} --days {args.days} "
          f"--onset-day {args.onset_day:g} --tick {args.tick}")
    print(f"config: window {config.alerts.window}, min_outcomes {config.alerts.min_outcomes}, "
          f"psi_min_decisions {config.alerts.psi_min_decisions}, "
          f"hysteresis {config.alerts.resolve_hysteresis}")
    print()
    header = f"{'scenario':17} {'detector':34} {'caught':>6} {'signal delay':>13} {'alert delay':>13} " \
             f"{'false signals':>13} {'false alerts':>12}"
    print(header)
    print("-" * len(header))
    verdict: dict[str, Any] = {}
    ignored: dict[str, int] = {}
    for scenario in SCENARIOS:
        results: dict[str, list[tuple[int | None, int | None, int, int]]] = {}
        for seed in range(1, args.seeds + 1):
            stream, tracks = run(scenario, seed, args, config)
            ignored[scenario] = ignored.get(scenario, 0) + sum(t.ignored for t in tracks.values())
            for name, track in tracks.items():
                results.setdefault(name, []).append((
                    _delay(track.signals, stream.onset), _delay(track.alerts, stream.onset),
                    sum(1 for i in track.signals if i < stream.onset),
                    sum(1 for i in track.alerts if i < stream.onset)))
        for name, rows in results.items():
            got = [r[0] if name == REFERENCE else r[1] for r in rows]
            caught = "-" if scenario == "stable" else f"{sum(g is not None for g in got)}/{len(rows)}"
            false_signals = sum(r[2] for r in rows)
            false_alerts = sum(r[3] for r in rows)
            print(f"{scenario:17} {name:34} {caught:>6} {_fmt([r[0] for r in rows]):>13} "
                  f"{_fmt([r[1] for r in rows]):>13} {false_signals:>13} {false_alerts:>12}")
            verdict[(scenario, name)] = rows
        print()
    print("delays: median / max decisions from the change to the signal or alert, "
          "over the seeds that caught it")
    print("ADWIN detections toward underconfidence (raise no flag by design): "
          + ", ".join(f"{k} {v}" for k, v in ignored.items()))
    print(f"{REFERENCE}: river ADWIN on the confidence stream, label-free; shown for comparison with psi")
    _goals(verdict, config)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


def _goals(verdict: dict[Any, Any], config: Any) -> None:
    adwin = f"ADWIN (delta {config.alerts.adwin_delta:g})"
    drop = verdict[("accuracy-drop", adwin)]
    worst = max((r[0] for r in drop if r[0] is not None), default=None)
    ok_drop = all(r[0] is not None and r[0] <= 300 for r in drop)
    shift = [rows for (s, name), rows in verdict.items()
             if s == "confidence-shift" and name.startswith("psi warning")]
    ok_shift = all(r[1] is not None and r[1] <= 300 for r in shift[0]) if shift else False
    shift_worst = max((r[1] for r in shift[0] if r[1] is not None), default=None) if shift else None
    def false_alarms(stable: bool) -> tuple[int, int]:
        runs = [(name, r) for (s, name), rows in verdict.items() if (s == "stable") == stable for r in rows]
        alerts = sum(r[3] for name, r in runs if name != REFERENCE)
        signals = sum(r[2] for _, r in runs)
        return alerts, signals

    stable_false, stable_signals = false_alarms(True)
    change_false, change_signals = false_alarms(False)
    print(f"goal: accuracy drop caught by ADWIN within 300 decisions: {'yes' if ok_drop else 'NO'} "
          f"(worst {worst})")
    print("goal: confidence shift alerted by psi warning within 300 decisions: "
          f"{'yes' if ok_shift else 'NO'} "
          f"(worst {shift_worst})")
    print(f"goal: zero false alarms on the stable run: {'yes' if stable_false == 0 else 'NO'} "
          f"({stable_false} false alerts, {stable_signals} false raw signals); "
          "before the change in the other "
          f"runs: {change_false} false alerts, {change_signals} false raw signals")


if __name__ == "__main__":
    sys.exit(main())
