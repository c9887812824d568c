"""The built-in alert engine: hysteresis, minimum samples, `for`, history on both databases,
Alertmanager and webhook payloads and delivery, and the `hitl-tower alerts` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from drift_helpers import ACTION, DAY, MODEL, planted_drift
from engine_helpers import T0, load
from process_helpers import Webhook, webhook_receiver
from typer.testing import CliRunner

from collectors.alerts import (
    DeliveryError,
    Observation,
    Rule,
    Target,
    build_rules,
    deliver,
    evaluate,
    list_alerts,
)
from collectors.alerts.notify import alertmanager_body, post_json, webhook_messages
from collectors.cli import app
from collectors.config import TowerConfig
from collectors.store.db import open_store
from collectors.validate import format_timestamp, parse_timestamp

MIN = 60_000_000
SLICE = {"model_version": "m1", "action_type": "refund"}


def _rule(**changes: Any) -> Rule:
    base: dict[str, Any] = {
        "alertname": "TestDrift", "severity": "critical", "source": "x", "threshold": 0.10,
        "direction": "above", "for_seconds": 600, "min_samples": 200, "hysteresis": 0.8,
        "summary": "drift {value:.3f} on {model_version}",
        "description": "{samples} {sample_name}", "sample_name": "outcomes"}
    base.update(changes)
    return Rule(**base)  # type: ignore[arg-type]


def _obs(value: float | None, samples: int = 500,
         labels: dict[str, str] | None = None) -> dict[str, list[Observation]]:
    return {"x": [Observation(labels or SLICE, value, samples)]}


def _run(engine, rule: Rule, values: list[tuple[int, float | None, int]]):  # type: ignore[no-untyped-def]
    """Evaluate at each (minute, value, samples); the states after each."""
    states = []
    for minute, value, samples in values:
        evaluation = evaluate(engine, TowerConfig(), T0 + minute * MIN, rules=[rule],
                              observations=_obs(value, samples))
        states.append([(s.state, s.transition) for s in evaluation.statuses])
    return states


def test_fire_after_for_hold_in_band_resolve_below_bound_and_record_history(db_url: str) -> None:
    engine = open_store(db_url)
    rule = _rule()
    states = _run(engine, rule, [
        (0, 0.05, 500),    # below the threshold: nothing
        (1, 0.12, 500),    # pending
        (6, 0.13, 500),    # 5 min < for 10 min: still pending
        (11, 0.15, 500),   # 10 min: firing
        (12, 0.09, 500),   # below 0.10, above the 0.08 bound: still firing
        (13, 0.085, 500),
        (14, 0.07, 500),   # below the bound: resolved
        (15, 0.09, 500),   # in the band but not firing: nothing (needs 0.10 again)
    ])
    assert states == [[], [("pending", "pending")], [("pending", None)], [("firing", "fired")],
                      [("firing", None)], [("firing", None)], [("resolved", "resolved")], []]
    [episode] = list_alerts(engine)
    assert (episode.state, episode.alertname, episode.severity) == ("resolved", "TestDrift", "critical")
    assert episode.labels == {"alertname": "TestDrift", "severity": "critical", **SLICE}
    assert episode.active_at == T0 + 1 * MIN and episode.starts_at == T0 + 11 * MIN
    assert episode.ends_at == T0 + 14 * MIN
    assert episode.fired_value == pytest.approx(0.15) and episode.resolved_value == pytest.approx(0.07)
    assert episode.worst_value == pytest.approx(0.15) and episode.threshold == 0.10
    assert episode.annotations["summary"] == "drift 0.085 on m1"  # the last firing evaluation's
    assert episode.annotations["runbook_url"] == "docs/alerts.md#testdrift"
    assert episode.duration_us == 3 * MIN
    engine.dispose()


def test_a_new_episode_after_resolution_is_a_new_history_row(db_url: str) -> None:
    engine = open_store(db_url)
    _run(engine, _rule(for_seconds=0), [(0, 0.2, 500), (1, 0.01, 500), (2, 0.3, 500)])
    episodes = list_alerts(engine)
    assert [e.state for e in episodes] == ["firing", "resolved"]  # newest first
    assert [e.fired_value for e in episodes] == [pytest.approx(0.3), pytest.approx(0.2)]
    assert len(list_alerts(engine, states=["firing"])) == 1
    assert list_alerts(engine, since_us=T0 + 2 * MIN)[0].state == "firing"
    assert len(list_alerts(engine, since_us=T0 + 2 * MIN)) == 1  # the first resolved at minute 1
    with pytest.raises(ValueError, match="unknown alert states"):
        list_alerts(engine, states=["fired"])
    engine.dispose()


def test_pending_alert_that_clears_leaves_no_history(db_url: str) -> None:
    engine = open_store(db_url)
    states = _run(engine, _rule(), [(0, 0.2, 500), (5, 0.05, 500)])
    assert states == [[("pending", "pending")], [("inactive", "cleared")]]
    assert list_alerts(engine, states=["pending", "firing", "resolved"]) == []
    engine.dispose()


def test_min_samples_gate_blocks_firing_and_resolves_a_firing_alert(db_url: str) -> None:
    engine = open_store(db_url)
    rule = _rule(for_seconds=0)
    assert _run(engine, rule, [(0, 0.5, 199)]) == [[]]  # far past the threshold, too few outcomes
    assert _run(engine, rule, [(1, 0.5, 200), (2, 0.5, 150)]) == [[("firing", "fired")],
                                                                  [("resolved", "resolved")]]
    [episode] = list_alerts(engine)
    assert episode.resolved_value == pytest.approx(0.5)  # it resolved for want of samples, not value
    # on-call must tell "no longer judged" from "recovered": the resolved notification says which
    assert episode.annotations["resolution"] == (
        "resolved for lack of data, not recovered: 150 outcomes, below the 200 needed to judge (last value 0.5)")
    engine.dispose()


def test_a_resolution_says_why(db_url: str) -> None:
    engine = open_store(db_url)
    _run(engine, _rule(for_seconds=0), [(0, 0.3, 500), (1, 0.05, 500)])
    assert list_alerts(engine)[0].annotations["resolution"] == "resolved: value 0.05 is back past 0.08"
    _run(engine, _rule(for_seconds=0), [(2, 0.3, 500), (3, None, 500)])
    assert list_alerts(engine)[0].annotations["resolution"].startswith("resolved: no value for this slice")
    engine.dispose()


def test_lower_is_bad_rule_has_symmetric_hysteresis(db_url: str) -> None:
    engine = open_store(db_url)
    rule = _rule(alertname="TestAgreement", threshold=0.5, direction="below", for_seconds=0, min_samples=100)
    assert rule.resolve_bound == pytest.approx(0.6)
    states = _run(engine, rule, [(0, 0.6, 500), (1, 0.45, 500), (2, 0.55, 500), (3, 0.59, 500),
                                 (4, 0.61, 500)])
    assert [s[0][0] if s else None for s in states] == [None, "firing", "firing", "firing", "resolved"]
    engine.dispose()


def test_an_alert_whose_slice_vanishes_resolves_without_a_value(db_url: str) -> None:
    engine = open_store(db_url)
    rule = _rule(for_seconds=0)
    _run(engine, rule, [(0, 0.3, 500)])
    evaluation = evaluate(engine, TowerConfig(), T0 + MIN, rules=[rule], observations={"x": []})
    assert [(s.state, s.transition) for s in evaluation.statuses] == [("resolved", "resolved")]
    assert list_alerts(engine)[0].resolved_value is None
    engine.dispose()


def test_dry_run_records_nothing(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    evaluation = evaluate(engine, TowerConfig(), T0, rules=[_rule(for_seconds=0)], observations=_obs(0.3),
                          dry_run=True)
    assert evaluation.in_state("firing")
    assert list_alerts(engine) == []


def test_rules_take_their_thresholds_from_config() -> None:
    config = TowerConfig()
    a = config.alerts
    rules = {(r.alertname, r.severity): r for r in build_rules(config)}
    assert rules[("HitlCalibrationDrift", "warning")].threshold == a.ece_drift_warn
    assert rules[("HitlCalibrationDrift", "critical")].threshold == a.ece_drift_alert
    assert rules[("HitlCalibrationDrift", "critical")].min_samples == a.min_outcomes
    assert rules[("HitlConfidencePsi", "warning")].threshold == a.psi_warn
    assert rules[("HitlConfidencePsi", "critical")].min_samples == a.psi_min_decisions
    assert rules[("HitlAgreementCollapse", "warning")].threshold == a.agreement_alpha_min
    assert rules[("HitlSlaBreachRate", "warning")].threshold == a.sla_breach_rate_max
    assert rules[("HitlBacklogAge", "critical")].threshold == a.backlog_age_seconds_max
    assert rules[("HitlInterventionRateSpike", "warning")].threshold == a.intervention_rate_spike
    assert rules[("HitlConfidenceShift", "warning")].min_samples == a.confidence_shift_min_decisions
    assert all(r.hysteresis == a.resolve_hysteresis for r in rules.values())


def test_backlog_alert_reads_its_ages_in_hours_and_minutes_not_seconds() -> None:
    """'oldest pending item is 66149 s old (threshold 14400 s)' made on-call do the arithmetic."""
    rule = {(r.alertname, r.severity): r for r in build_rules(TowerConfig())}[("HitlBacklogAge", "critical")]
    notes = rule.annotations(Observation({"queue": "kyc"}, 66149.0, 3, {"pending": 3}))
    assert notes["summary"] == "Backlog in queue kyc: oldest pending item is 18h 22m old (threshold 4h)"
    assert notes["description"] == ("Decisions pending: 3; the oldest was proposed 18h 22m ago; "
                                    "fires past 4h, resolves back past 3h 12m.")


def test_the_alerts_table_reads_the_backlog_age_as_the_summary_does() -> None:
    """`hitl-tower alerts` printed "value 66,149 s threshold 14,400 s" beside summaries reading "18h 22m"."""
    from collectors.cli.alerts import _reading

    rules = {(r.alertname, r.severity): r for r in build_rules(TowerConfig())}
    assert _reading(rules[("HitlBacklogAge", "critical")], 66149.0) == "value 18h 22m threshold 4h"
    assert _reading(rules[("HitlBacklogAge", "critical")], None) == "value - threshold 4h"
    assert _reading(rules[("HitlSlaBreachRate", "warning")], 0.0929) == "value 0.0929 threshold 0.1"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.25, "250ms"), (1, "1s"), (45.5, "45.5s"), (60, "1m"), (61, "1m 1s"), (3599, "59m 59s"),
    (3600, "1h"), (3661, "1h 1m"), (11520, "3h 12m"), (14400, "4h"), (66149.9, "18h 22m"), (86400, "1d"),
    (90061, "1d 1h 1m"), (86400 + 300, "1d 5m"), (-3600, "-1h")])
def test_durations_read_as_on_call_says_them(seconds: float, text: str) -> None:
    from collectors.alerts.rules import humanize_duration

    assert humanize_duration(seconds) == text


# ---- queue alerts gate on what their value is computed from ----------------------------------------


QUEUE_NOW = T0 + 2 * DAY


def _queue_statuses(engine, config: TowerConfig, now: int) -> dict[tuple[str, str], Any]:  # type: ignore[no-untyped-def]
    """(alertname, queue) -> status of the agreement and SLA rules, judged on the store's last day."""
    from collectors.alerts.observe import queue_observations
    from collectors.engine.report import compute_report

    report = compute_report(engine, config, now - DAY, now, by=("queue",), now_us=now)
    evaluation = evaluate(engine, config, now, rules=build_rules(config),
                          observations=queue_observations(report, report, {"window": "24h"}))
    return {(s.labels["alertname"], s.labels["queue"]): s for s in evaluation.statuses}


def _queue_events() -> list[dict[str, Any]]:
    """Three queues of 150 reviewed decisions on the day before NOW:
    - support: 7 items seen by a second reviewer, who always disagrees (alpha < 0 from 7 units, the demo's
      false alarm); every primary review within its SLA;
    - payments: 40 items seen by a second reviewer, who disagrees on half of them (alpha < 0.5 from 40 units);
    - kyc: 140 of its decisions executed automatically, 10 reviewed, 5 of them past the SLA (50% of 10
      primary reviews: too few to judge, though the queue has 150 decisions)."""
    from engine_helpers import HOUR, decision, review

    events: list[dict[str, Any]] = []
    start = QUEUE_NOW - DAY + HOUR
    for queue, second, disagree in (("support", 7, 7), ("payments", 40, 20)):
        for i in range(150):
            at = start + i * 60_000_000
            did = f"{queue}-{i}"
            events += [decision(did, at, queue=queue), review(f"{did}-p", did, at + MIN, reviewer="ana")]
            if i < second:
                verdict = "reject" if i < disagree else "approve"
                events.append(review(f"{did}-o", did, at + 2 * MIN, verdict, kind="audit", reviewer="ben"))
    for i in range(150):
        at = start + i * 60_000_000
        did = f"kyc-{i}"
        if i < 140:
            events.append(decision(did, at, queue="kyc", route="auto"))
        else:  # risk class low: SLA 86400 s; 5 of the 10 decided 2 days after they were enqueued
            late = 2 * DAY if i % 2 else MIN
            events += [decision(did, at - late, queue="kyc"), review(f"{did}-p", did, at, enqueued=at - late)]
    return events


def test_agreement_and_sla_alerts_judge_only_enough_double_reviewed_items_and_primary_reviews(
        db_url: str) -> None:
    """HitlAgreementCollapse fired for a queue with 150 decisions and alpha from 7 double-reviewed items,
    HitlSlaBreachRate for one with 150 decisions and a rate from 10 primary reviews: both gated on
    decisions. Now alpha needs alerts.agreement_min_units items, the breach rate alerts.sla_min_reviews."""
    engine = load(db_url, _queue_events())
    config = TowerConfig()
    statuses = _queue_statuses(engine, config, QUEUE_NOW)
    agreement = {q: s for (name, q), s in statuses.items() if name == "HitlAgreementCollapse"}
    assert set(agreement) == {"payments"}  # support's alpha is below 0.5 too, from 7 items: not judged
    assert agreement["payments"].state == "pending"
    assert not any(name == "HitlSlaBreachRate" for name, _ in statuses)
    # The same store with the gates lowered to those samples: both are judged, and raised.
    lowered = TowerConfig(alerts={"agreement_min_units": 7, "sla_min_reviews": 10})
    raised = _queue_statuses(engine, lowered, QUEUE_NOW + MIN)
    assert {("HitlAgreementCollapse", "support"), ("HitlSlaBreachRate", "kyc")} <= set(raised)
    engine.dispose()


def test_agreement_rule_gates_on_units_and_keeps_its_hysteresis(db_url: str) -> None:
    """The shipped rule, `for` aside: 29 units are not judged, 30 are; once firing it holds in the 0.5-0.6
    band and resolves above 0.6, or for lack of units (which says so)."""
    from dataclasses import replace

    engine = open_store(db_url)
    [shipped] = [r for r in build_rules(TowerConfig()) if r.alertname == "HitlAgreementCollapse"]
    assert (shipped.min_samples, shipped.resolve_bound) == (30, pytest.approx(0.6))
    rule = replace(shipped, source="x", for_seconds=0)
    labels = {"queue": "q", "window": "24h"}

    def run(values: list[tuple[int, float, int]]) -> list[Any]:
        out = []
        for minute, value, units in values:
            evaluation = evaluate(engine, TowerConfig(), T0 + minute * MIN, rules=[rule],
                                  observations={"x": [Observation(labels, value, units, {"decisions": 900})]})
            out.append([(s.state, s.transition) for s in evaluation.statuses])
        return out

    assert run([(0, 0.0, 29), (1, 0.4, 30), (2, 0.55, 31), (3, 0.61, 40)]) == [
        [], [("firing", "fired")], [("firing", None)], [("resolved", "resolved")]]
    assert run([(4, 0.3, 50), (5, 0.3, 12)]) == [[("firing", "fired")], [("resolved", "resolved")]]
    [episode, _] = list_alerts(engine)
    assert episode.annotations["resolution"] == (
        "resolved for lack of data, not recovered: 12 items reviewed by two or more reviewers, below the 30 "
        "needed to judge (last value 0.3)")
    assert "(900 decisions); 50 items reviewed by two or more reviewers behind it (at least 30 needed)" \
        in episode.annotations["description"]
    engine.dispose()


# ---- the whole path on a store with a planted drift --------------------------------------------

NOW = T0 + 2 * DAY


def test_planted_drift_fires_calibration_alerts_and_records_them(db_url: str) -> None:
    engine = load(db_url, planted_drift(NOW))
    config = TowerConfig()
    first = evaluate(engine, config, NOW - 31 * MIN)
    assert {(s.rule.alertname, s.rule.severity, s.state) for s in first.statuses} >= {
        ("HitlCalibrationDrift", "warning", "pending"), ("HitlCalibrationDrift", "critical", "pending")}
    second = evaluate(engine, config, NOW)
    fired = {(s.rule.alertname, s.rule.severity) for s in second.changed("fired")}
    assert {("HitlCalibrationDrift", "critical"), ("HitlCalibrationDrift", "warning"),
            ("HitlCalibrationChange", "warning")} <= fired
    quiet = {"HitlConfidencePsi", "HitlConfidenceShift"}  # confidence did not move
    assert not any(s.rule.alertname in quiet for s in second.statuses)
    episode = next(e for e in list_alerts(engine) if e.alertname == "HitlCalibrationDrift"
                   and e.severity == "critical")
    assert episode.labels == {"alertname": "HitlCalibrationDrift", "severity": "critical",
                              "model_version": MODEL, "action_type": ACTION}
    assert episode.starts_at == NOW and episode.fired_value > 0.10
    assert f"{MODEL} / {ACTION}" in episode.annotations["summary"]
    assert "outcomes" in episode.annotations["description"]
    engine.dispose()


# ---- payloads and delivery ---------------------------------------------------------------------


def _fired_and_resolved(engine) -> None:  # type: ignore[no-untyped-def]
    """TestDrift fires at T0 and stays firing; TestOther fires at T0 and resolves a minute later."""
    rules = [_rule(for_seconds=0),
             _rule(alertname="TestOther", severity="warning", source="y", for_seconds=0)]
    for minute, other in ((0, 0.3), (1, 0.01)):
        observations = {**_obs(0.3), "y": [Observation({"queue": "kyc"}, other, 500)]}
        evaluate(engine, TowerConfig(), T0 + minute * MIN, rules=rules, observations=observations)


def test_alertmanager_payload_shape(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    _fired_and_resolved(engine)
    episodes = list_alerts(engine)
    wall = T0 + 10 * MIN
    body = alertmanager_body(episodes, wall, 4 * MIN)
    by_name = {a["labels"]["alertname"]: a for a in body}
    firing, resolved = by_name["TestDrift"], by_name["TestOther"]
    assert set(firing) == {"labels", "annotations", "startsAt", "endsAt"}
    assert firing["labels"] == {"alertname": "TestDrift", "severity": "critical", **SLICE}
    assert set(firing["annotations"]) == {"summary", "description", "runbook_url"}
    assert firing["startsAt"] == format_timestamp(T0)
    assert parse_timestamp(firing["endsAt"]) == wall + 4 * MIN  # in the future: still firing
    assert parse_timestamp(resolved["endsAt"]) == T0 + MIN  # in the past: resolved
    json.dumps(body, allow_nan=False)


def test_webhook_payload_is_alertmanager_webhook_format(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    _fired_and_resolved(engine)
    messages = webhook_messages(list_alerts(engine), T0 + 10 * MIN)
    by_group = {m["groupLabels"]["alertname"]: m for m in messages}
    message = by_group["TestDrift"]
    assert message["version"] == "4" and message["status"] == "firing"
    assert message["commonLabels"] == {"alertname": "TestDrift", "severity": "critical", **SLICE}
    [alert] = message["alerts"]
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(alert["fingerprint"]) == 16
    assert by_group["TestOther"]["status"] == "resolved"
    assert by_group["TestOther"]["alerts"][0]["endsAt"] == format_timestamp(T0 + MIN)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Webhook]]:
    with webhook_receiver() as hook:
        yield hook.url, hook


def test_webhook_delivery_sends_each_change_once_and_retries_failures(sqlite_url: str, receiver) -> None:  # type: ignore[no-untyped-def]
    url, handler = receiver
    engine = open_store(sqlite_url)
    target = Target("webhook", url + "/hook")
    _run(engine, _rule(for_seconds=0), [(0, 0.3, 500)])
    handler.status = 500
    with pytest.raises(DeliveryError, match="500"):
        deliver(engine, target, T0, 4 * MIN)
    handler.status = 200
    assert deliver(engine, target, T0, 4 * MIN) == 1  # retried
    assert deliver(engine, target, T0, 4 * MIN) == 0  # nothing new
    _run(engine, _rule(for_seconds=0), [(1, 0.01, 500)])
    assert deliver(engine, target, T0 + MIN, 4 * MIN) == 1
    statuses = [(path, body["status"]) for path, body in handler.received]
    assert statuses == [("/hook", "firing"), ("/hook", "firing"), ("/hook", "resolved")]
    assert list_alerts(engine)[0].notified_state == "resolved"


def test_alertmanager_delivery_resends_firing_alerts_every_time(sqlite_url: str, receiver) -> None:  # type: ignore[no-untyped-def]
    url, handler = receiver
    engine = open_store(sqlite_url)
    target = Target("alertmanager", url + "/")
    _fired_and_resolved(engine)
    assert deliver(engine, target, T0 + 2 * MIN, 4 * MIN) == 2  # the firing one and the new resolution
    assert deliver(engine, target, T0 + 3 * MIN, 4 * MIN) == 1  # the firing one again
    assert [path for path, _ in handler.received] == ["/api/v2/alerts", "/api/v2/alerts"]
    assert [a["labels"]["alertname"] for a in handler.received[1][1]] == ["TestDrift"]


def _fire_the_planted_drift(db: str, runner: CliRunner, command: list[str]) -> Any:
    """Store a planted drift and evaluate it twice, 31 minutes apart (its `for`): the second run fires it."""
    load(db, planted_drift(NOW)).dispose()
    runner.invoke(app, [*command, "--now", format_timestamp(NOW - 31 * MIN)])
    return runner.invoke(app, [*command, "--now", format_timestamp(NOW)])


def test_dry_run_previews_what_a_failed_delivery_left_due(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A dry run must show what the next real run sends, retries of a failed delivery included."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    dead = ["alerts", "--db", db, "--webhook", "http://127.0.0.1:1/hook", "--once"]
    failed = _fire_the_planted_drift(db, runner, dead)
    assert failed.exit_code == 1, failed.output  # fired, not delivered
    preview = runner.invoke(app, [*dead, "--now", format_timestamp(NOW + MIN), "--dry-run", "--format", "json"])
    assert preview.exit_code == 0, preview.output
    would_send = {m["groupLabels"]["alertname"] for m in json.loads(preview.output)["would_send"]}
    assert "HitlCalibrationDrift" in would_send  # fired a minute earlier, no transition now: due for retry


def test_unreachable_receiver_is_a_delivery_error(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    _run(engine, _rule(for_seconds=0), [(0, 0.3, 500)])
    with pytest.raises(DeliveryError, match="cannot reach"):
        deliver(engine, Target("webhook", "http://127.0.0.1:1/"), T0, MIN, timeout=2)


# ---- the command -------------------------------------------------------------------------------


def test_alerts_command_once_then_fires_and_posts(tmp_path, receiver) -> None:  # type: ignore[no-untyped-def]
    url, handler = receiver
    db = f"sqlite:///{tmp_path / 'store.db'}"
    load(db, planted_drift(NOW)).dispose()
    runner = CliRunner()
    args = ["alerts", "--db", db, "--webhook", url]
    first = runner.invoke(app, [*args, "--once", "--now", format_timestamp(NOW - 31 * MIN)])
    assert first.exit_code == 0, first.output
    assert "PENDING  HitlCalibrationDrift [critical]" in first.output
    second = runner.invoke(app, [*args, "--once", "--now", format_timestamp(NOW), "--format", "json"])
    assert second.exit_code == 0, second.output
    data = json.loads(second.output)
    fired = {(a["alertname"], a["severity"]) for a in data["alerts"] if a["transition"] == "fired"}
    assert ("HitlCalibrationDrift", "critical") in fired
    names = {body["groupLabels"]["alertname"] for _, body in handler.received}
    assert {"HitlCalibrationDrift", "HitlCalibrationChange"} <= names


def test_alerts_command_dry_run_prints_the_payload_and_records_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'store.db'}"
    load(db, planted_drift(NOW)).dispose()
    result = CliRunner().invoke(app, ["alerts", "--db", db, "--dry-run", "--now", format_timestamp(NOW)])
    assert result.exit_code == 0, result.output
    assert "would send:" in result.output
    engine = open_store(db)
    assert list_alerts(engine, states=["pending", "firing", "resolved"]) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--once", "--watch"], "exclude each other"),
    (["--alertmanager", "http://a", "--webhook", "http://b"], "not both"),
    (["--watch", "--now", "2026-11-01T00:00:00Z"], "--now only goes with --once"),
    (["--now", "yesterday"], "--now"),
    (["--format", "xml"], "--format"),
    (["--webhook", "hooks.example/hitl"], "--webhook must be an http:// or https:// URL"),
    (["--alertmanager", "127.0.0.1:9093"], "--alertmanager must be an http:// or https:// URL"),
    (["--webhook", "http://127.0.0.1:99999/hook"], "is not a URL"),
])
def test_alerts_command_usage_errors_exit_2(tmp_path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["alerts", "--db", f"sqlite:///{tmp_path / 's.db'}", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_alerts_command_refuses_a_missing_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A mistyped --db must not become a new, empty store that reports no alert for ever."""
    path = tmp_path / "typo.db"
    result = CliRunner().invoke(app, ["alerts", "--db", f"sqlite:///{path}", "--once"])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not path.exists()


def test_a_url_urllib_cannot_use_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="cannot post to"):
        post_json("hooks.example/hitl", {"alerts": []})


def test_now_before_the_last_evaluation_is_refused_unless_dry_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A mistyped backfill `--now` used to resolve every firing alert with an end before its start."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    once = ["alerts", "--db", db, "--once", "--format", "json"]
    fired = _fire_the_planted_drift(db, runner, once)
    assert any(a["state"] == "firing" for a in json.loads(fired.output)["alerts"]), fired.output
    earlier = format_timestamp(NOW - 8 * 24 * 60 * MIN)
    refused = runner.invoke(app, [*once, "--now", earlier])
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: --now {earlier} is before the last recorded evaluation, "
                                     f"{format_timestamp(NOW)}: alerts only move forward in time")
    assert runner.invoke(app, ["alerts", "--db", db, "--once", "--now", earlier, "--dry-run"]).exit_code == 0
    still = runner.invoke(app, [*once, "--now", format_timestamp(NOW + MIN)])
    assert any(a["state"] == "firing" and a["transition"] is None for a in json.loads(still.output)["alerts"])
