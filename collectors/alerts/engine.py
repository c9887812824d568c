"""The built-in alert engine: evaluate every rule, move each alert through its states, keep history.

States follow Prometheus: an alert whose condition holds becomes `pending`;
once it has held at every evaluation for the rule's `for` duration it is
`firing`; a pending alert whose condition fails is dropped; a firing alert
stays firing while the value is past the hysteresis bound (not only the
threshold) and resolves otherwise, or when its slice has too few samples or
has vanished. State lives in the store (`alert_history`), so `--once` runs
from a scheduler behave like a long-running `--watch`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collectors.alerts import history
from collectors.alerts.history import AlertEpisode
from collectors.alerts.rules import Observation, Rule, Transition, build_rules, fingerprint, transition

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from collectors.config import TowerConfig
    from collectors.drift import SequentialMonitor

@dataclass(frozen=True)
class AlertStatus:
    """One alert after an evaluation: its episode (None once a pending one cleared) and what changed."""

    rule: Rule
    labels: dict[str, str]
    value: float | None
    transition: Transition | None
    episode: AlertEpisode | None

    @property
    def state(self) -> str:
        """pending, firing, resolved, or inactive for a cleared pending alert."""
        return self.episode.state if self.episode is not None else "inactive"


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation at `now_us`: every alert that is active or just changed."""

    now_us: int
    statuses: tuple[AlertStatus, ...]

    def in_state(self, state: str) -> list[AlertStatus]:
        """Statuses whose alert is in `state` after the evaluation."""
        return [s for s in self.statuses if s.state == state]

    def changed(self, transition: Transition) -> list[AlertStatus]:
        """Statuses that made `transition` at this evaluation."""
        return [s for s in self.statuses if s.transition == transition]


def evaluate(engine: Engine, config: TowerConfig, now_us: int | None = None,
             monitor: SequentialMonitor | None = None, *, rules: Sequence[Rule] | None = None,
             observations: Mapping[str, Sequence[Observation]] | None = None,
             dry_run: bool = False) -> Evaluation:
    """Evaluate the rules at `now_us` (default: now) and record the changes in the alert history.

    `rules` must be the whole rule set (default: `build_rules(config)`): an active
    alert that no rule and observation matches any more is resolved.
    `observations` replaces reading the store (tests); `monitor` keeps the
    ADWIN detectors between evaluations. With `dry_run` nothing is recorded.
    """
    now = now_us if now_us is not None else time.time_ns() // 1000
    rules = tuple(rules) if rules is not None else build_rules(config)
    if observations is None:
        from collectors.alerts.observe import observe
        from collectors.drift import SequentialMonitor

        observations = observe(engine, config, now, monitor or SequentialMonitor.from_config(config.alerts))
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            statuses = _step(conn, rules, observations, now)
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    return Evaluation(now, tuple(statuses))


def _step(conn: Connection, rules: Sequence[Rule], observations: Mapping[str, Sequence[Observation]],
          now: int) -> list[AlertStatus]:
    active = history.active_episodes(conn)
    changes: list[tuple[Rule, dict[str, str], float | None, Transition | None, int | None]] = []
    seen: set[str] = set()
    for rule in rules:
        for obs in observations.get(rule.source, ()):
            labels = rule.labels(obs)
            key = fingerprint(labels)
            seen.add(key)
            transition, episode_id = _advance(conn, rule, labels, key, obs, active.get(key), now)
            if transition is not None or episode_id is not None:
                changes.append((rule, labels, obs.value, transition, episode_id))
    by_name: dict[tuple[str, str], Rule] = {(r.alertname, r.severity): r for r in rules}
    for key, episode in active.items():
        if key not in seen:  # its slice vanished (or its rule is gone): the condition no longer holds
            owner = by_name.get((episode.alertname, episode.severity))
            ended = _end(conn, episode, None, now, Rule.resolution(owner, None) if owner else
                         "resolved: its rule is no longer configured")
            if owner is not None:
                changes.append((owner, episode.labels, None, ended, episode.id))
    stored = history.episodes_by_id(conn, [c[4] for c in changes if c[4] is not None])
    return [AlertStatus(rule, labels, value, transition, stored.get(eid) if eid is not None else None)
            for rule, labels, value, transition, eid in changes]


def _advance(conn: Connection, rule: Rule, labels: dict[str, str], key: str, obs: Observation,
             episode: AlertEpisode | None, now: int) -> tuple[Transition | None, int | None]:
    """Move one alert one evaluation forward; returns (transition, id of its episode if any)."""
    value = float(obs.value) if rule.gated(obs) and obs.value is not None else None
    change = transition(rule, episode.state if episode else None, episode.active_at if episode else None,
                        value, now)
    if episode is None:
        if change is None:
            return None, None
        fires = change == "fired"
        return change, history.insert_episode(conn, {
            "fingerprint": key, "alertname": rule.alertname, "severity": rule.severity, "labels": labels,
            "annotations": rule.annotations(obs), "state": "firing" if fires else "pending",
            "threshold": rule.threshold, "active_at": now, "starts_at": now if fires else None,
            "fired_value": value if fires else None, "last_value": value, "worst_value": value,
            "evaluated_at": now})
    if change in ("cleared", "resolved"):
        return _end(conn, episode, None if obs.value is None else float(obs.value), now, rule.resolution(obs)), \
            (None if change == "cleared" else episode.id)
    progress: dict[str, Any] = {"last_value": value, "worst_value": _worse(rule, episode.worst_value, value),
                                "evaluated_at": now}
    if change == "fired":
        progress.update(state="firing", starts_at=now, fired_value=value, annotations=rule.annotations(obs))
    elif episode.state == "firing":
        progress.update(annotations=rule.annotations(obs))
    history.update_episode(conn, episode.id, progress)
    return change, episode.id


def _end(conn: Connection, episode: AlertEpisode, value: float | None, now: int, why: str) -> Transition:
    """Resolve a firing episode (or drop a pending one); the resolved notification carries `why`
    in its `resolution` annotation beside the summary of the firing."""
    if episode.state == "pending":
        history.delete_episode(conn, episode.id)
        return "cleared"
    history.update_episode(conn, episode.id, {"state": "resolved", "ends_at": now, "resolved_value": value,
                                              "last_value": value, "evaluated_at": now,
                                              "annotations": {**episode.annotations, "resolution": why}})
    return "resolved"


def _worse(rule: Rule, held: float | None, value: float | None) -> float | None:
    if held is None or value is None:
        return held if value is None else value
    return max(held, value) if rule.direction == "above" else min(held, value)
