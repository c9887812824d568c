"""The synthetic traffic generator: contract-valid, reproducible, realistic, incidents visible."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from statistics import mean, median
from typing import Any

import pytest

from collectors.synth import (
    DRIFTING_VERSION,
    ERRATIC_REVIEWER,
    SAMPLE_PARAMS,
    SAMPLE_PATH,
    generate,
    incident_schedule,
    write_jsonl,
)
from collectors.validate import parse_timestamp, validate_event

_TIME_FIELD = {"decision": "proposed_at", "review": "decided_at", "outcome": "observed_at",
               "change": "changed_at"}


def _ts(value: str) -> float:
    return parse_timestamp(value) / 1e6


class World:
    """One generated dataset, indexed for the checks below."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.decisions = {e["id"]: e for e in events if e["type"] == "decision"}
        self.reviews = [e for e in events if e["type"] == "review"]
        self.outcomes = [e for e in events if e["type"] == "outcome"]
        self.changes = [e for e in events if e["type"] == "change"]
        by_decision: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self.reviews:
            by_decision[r["decision_id"]].append(r)
        self.reviews_of = by_decision
        latest: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:  # events come in time order: the last one wins
            latest[o["decision_id"]] = o
        self.outcome_of = latest

    def final_verdict(self, decision_id: str) -> str | None:
        """Section 2 of the contract: latest non-escalate primary/escalation verdict, else auto/pending."""
        deciding = [r for r in self.reviews_of.get(decision_id, [])
                    if r["kind"] != "audit" and r["verdict"] != "escalate"]
        if deciding:
            return max(deciding, key=lambda r: (_ts(r["decided_at"]), r["id"]))["verdict"]
        return "auto" if self.decisions[decision_id]["route"] == "auto" else None


@pytest.fixture(scope="module")
def world() -> World:
    """30 days (the reference length of the incident schedule) at 1000 decisions a day."""
    return World(list(generate(seed=7, days=30, decisions_per_day=1000)))


@pytest.fixture(scope="module")
def incidents() -> dict[str, tuple[float, float]]:
    end = (datetime(2026, 11, 2, tzinfo=UTC) + timedelta(days=30)).timestamp()
    return {i.name: (i.starts_at.timestamp(), i.ends_at.timestamp() if i.ends_at else end)
            for i in incident_schedule(days=30)}


def test_same_seed_same_events_and_ids() -> None:
    first = list(generate(seed=3, days=2, decisions_per_day=200))
    assert first == list(generate(seed=3, days=2, decisions_per_day=200))
    assert first != list(generate(seed=4, days=2, decisions_per_day=200))
    assert first[0]["id"] == "s3-d0000000"


def test_every_event_validates_and_references_resolve() -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    events = list(generate(seed=11, days=6, decisions_per_day=400, start=start))
    lo, hi = start.timestamp(), start.timestamp() + 6 * 86400
    seen: set[str] = set()
    ids: Counter[tuple[str, str]] = Counter()
    last = lo
    for e in events:
        validate_event(e)
        t = _ts(e[_TIME_FIELD[e["type"]]])
        assert lo <= t < hi
        assert t >= last, "events come in time order"
        last = t
        if e["type"] == "decision":
            seen.add(e["id"])
        elif e["type"] in ("review", "outcome"):
            assert e["decision_id"] in seen, "review/outcome before its decision"
        if "id" in e:
            ids[(e["type"], e["id"])] += 1
        if e["type"] == "review":
            assert _ts(e["enqueued_at"]) <= _ts(e["claimed_at"]) <= _ts(e["decided_at"])
            assert e["decided_at"].endswith("Z")
    assert max(ids.values()) == 1
    assert Counter(e["type"] for e in events).keys() == {"decision", "review", "outcome", "change"}


def test_reviews_start_after_their_decision(world: World) -> None:
    for r in world.reviews:
        assert _ts(r["enqueued_at"]) > _ts(world.decisions[r["decision_id"]]["proposed_at"])
    for o in world.outcomes:
        assert _ts(o["observed_at"]) > _ts(world.decisions[o["decision_id"]]["proposed_at"])


def test_realistic_shares(world: World) -> None:
    n = len(world.decisions)
    assert 28_000 < n < 32_000
    routes = Counter(d["route"] for d in world.decisions.values())
    assert 0.2 < routes["auto"] / n < 0.7
    assert routes["shadow"] > 0
    assert 0.6 < len(world.reviews) / n < 0.85
    assert 0.3 < len(world.outcomes) / n < 0.7
    kinds = Counter(r["kind"] for r in world.reviews)
    assert set(kinds) == {"primary", "escalation", "audit"}
    primary = Counter(r["verdict"] for r in world.reviews if r["kind"] == "primary")
    p = sum(primary.values())
    assert 0.6 < primary["approve"] / p < 0.9 and primary["escalate"] > 0
    assert primary["edit"] > 0.03 * p and primary["reject"] > 0.03 * p
    assert len({r["reviewer_id"] for r in world.reviews}) >= 20
    versions = defaultdict(set)
    for d in world.decisions.values():
        versions[d["agent_id"]].add(d["model_version"])
    assert len(versions) >= 4 and all(len(v) >= 2 for v in versions.values())
    assert {d["risk_class"] for d in world.decisions.values()} == {"low", "medium", "high", "critical"}
    assert all(0.001 <= d["model_cost"] <= 0.05 for d in world.decisions.values())
    pending = [i for i in world.decisions if world.final_verdict(i) is None]
    assert 0 < len(pending) < 0.05 * n
    finals = Counter(world.final_verdict(i) for i in world.decisions)
    assert 0.05 < (finals["edit"] + finals["reject"]) / n < 0.3


def test_review_structure(world: World) -> None:
    for decision_id, reviews in world.reviews_of.items():
        d = world.decisions[decision_id]
        kinds = Counter(r["kind"] for r in reviews)
        if d["route"] == "auto":
            assert set(kinds) == {"audit"}
        if kinds["escalation"]:
            prim = [r for r in reviews if r["kind"] == "primary"]
            assert prim and (prim[0]["verdict"] == "escalate" or d["risk_class"] == "critical")
            esc = next(r for r in reviews if r["kind"] == "escalation")
            assert _ts(esc["enqueued_at"]) >= _ts(prim[0]["decided_at"])
        if kinds["audit"] and kinds["primary"]:  # overlap: a blind second review by a peer
            assert len({r["reviewer_id"] for r in reviews}) >= 2
    for r in world.reviews:
        assert ("reason_code" in r) == (r["verdict"] in ("edit", "reject"))
        assert ("audit_probability" in r) == (r["kind"] == "audit")


def test_outcomes_follow_the_human_verdict(world: World) -> None:
    for decision_id, o in world.outcome_of.items():
        verdict = world.final_verdict(decision_id)
        assert verdict is not None, "no outcome for a pending decision"
        if verdict in ("auto", "approve"):
            assert o["agent_correct"] == o["final_correct"]
            assert "agent_error_cost" not in o
        else:
            assert "agent_error_cost" in o
        assert (o["error_cost"] > 0) == (not o["final_correct"])
    changed = [o for i, o in world.outcome_of.items() if world.final_verdict(i) in ("edit", "reject")]
    fixed = sum(not o["agent_correct"] and o["final_correct"] for o in changed)
    broken = sum(o["agent_correct"] and not o["final_correct"] for o in changed)
    assert fixed > 5 * broken > 0


def test_calibration_drift_visible(world: World, incidents: dict[str, tuple[float, float]]) -> None:
    onset = incidents["calibration_drift"][0]
    before: list[tuple[float, bool]] = []
    after: list[tuple[float, bool]] = []
    for decision_id, o in world.outcome_of.items():
        d = world.decisions[decision_id]
        if d["model_version"] == DRIFTING_VERSION:
            side = after if _ts(d["proposed_at"]) >= onset else before
            side.append((d["confidence"], o["agent_correct"]))
    assert len(before) > 500 and len(after) > 300
    acc_before, acc_after = mean(c for _, c in before), mean(c for _, c in after)
    conf_before, conf_after = mean(c for c, _ in before), mean(c for c, _ in after)
    assert acc_before - acc_after >= 0.1
    assert abs(conf_before - conf_after) < 0.03
    assert abs(acc_before - conf_before) < 0.05, "calibrated before the drift"


def test_threshold_change_raises_auto_rate(world: World, incidents: dict[str, tuple[float, float]]) -> None:
    at = incidents["threshold_change"][0]
    change = [c for c in world.changes if c["kind"] == "threshold"]
    assert len(change) == 1 and _ts(change[0]["changed_at"]) == at
    low = [d for d in world.decisions.values() if d["risk_class"] == "low"]
    rate = {side: mean(d["route"] == "auto" for d in low if (_ts(d["proposed_at"]) >= at) == side)
            for side in (False, True)}
    assert rate[True] - rate[False] > 0.1


def test_backlog_spike(world: World, incidents: dict[str, tuple[float, float]]) -> None:
    lo, hi = incidents["backlog"]
    inside: list[float] = []
    outside: list[float] = []
    for r in world.reviews:
        if r["kind"] == "primary" and world.decisions[r["decision_id"]]["queue"] == "payments-l1":
            latency = _ts(r["decided_at"]) - _ts(r["enqueued_at"])
            (inside if lo <= _ts(r["enqueued_at"]) < hi else outside).append(latency)
    assert median(inside) > 4 * median(outside)
    assert sum(x > 14400 for x in inside) / len(inside) > 0.2  # medium-risk SLA breached


def test_erratic_reviewer_disagrees(world: World, incidents: dict[str, tuple[float, float]]) -> None:
    onset = incidents["erratic_reviewer"][0]
    agree: dict[bool, list[bool]] = {True: [], False: []}
    for reviews in world.reviews_of.items():
        pair = [r for r in reviews[1] if r["kind"] in ("primary", "audit")]
        if len(pair) == 2 and world.decisions[reviews[0]]["route"] != "auto":
            erratic = ERRATIC_REVIEWER in {r["reviewer_id"] for r in pair}
            agree[erratic].append(pair[0]["verdict"] == pair[1]["verdict"])
    assert len(agree[True]) >= 20
    assert mean(agree[False]) - mean(agree[True]) > 0.3
    first = min(_ts(r["enqueued_at"]) for r in world.reviews if r["reviewer_id"] == ERRATIC_REVIEWER)
    assert first >= onset


def test_subgroup_and_shadow(world: World) -> None:
    by_region: dict[str, list[bool]] = defaultdict(list)
    for i, d in world.decisions.items():
        verdict = world.final_verdict(i)
        if verdict is not None:
            by_region[d["segment"]["region"]].append(verdict in ("edit", "reject"))
    others = mean(x for region, xs in by_region.items() if region != "LATAM" for x in xs)
    assert mean(by_region["LATAM"]) > others + 0.04
    shadow = sorted((_ts(world.decisions[r["decision_id"]]["proposed_at"]), r["verdict"] == "approve")
                    for r in world.reviews
                    if r["kind"] == "primary" and world.decisions[r["decision_id"]]["route"] == "shadow")
    third = len(shadow) // 3
    assert mean(a for _, a in shadow[-third:]) > mean(a for _, a in shadow[:third]) + 0.1


def test_without_incidents() -> None:
    events = list(generate(seed=7, days=30, decisions_per_day=150, incidents=False))
    kinds = {e["kind"] for e in events if e["type"] == "change"}
    assert "threshold" not in kinds and "model" in kinds
    for e in events:
        validate_event(e)


def test_steady_traffic_continues_the_story_without_replaying_it() -> None:
    """What the live demo streams after its 30 days: the world as the story left it."""
    start = datetime(2026, 12, 2, tzinfo=UTC)
    events = list(generate(seed=3, days=0.5, decisions_per_day=4000, start=start, steady=True, id_prefix="x-"))
    assert not [e for e in events if e["type"] == "change"]  # every change was made before
    decisions = [e for e in events if e["type"] == "decision"]
    versions = Counter(e["model_version"] for e in decisions)
    assert not {"refund-v3.1", "fraud-gbm-7", "kyc-v2.3"} & set(versions)  # rollouts complete
    assert versions["kyc-v2.5"] > 0 and versions["support-llm-2026.10"] > 0  # canaries still at their share
    low_auto = [e["confidence"] for e in decisions if e["risk_class"] == "low" and e["route"] == "auto"]
    assert min(low_auto) >= 0.75 and min(low_auto) < 0.85  # the lowered threshold holds
    for e in events:
        validate_event(e)
    replayed = list(generate(seed=3, days=0.5, decisions_per_day=4000, start=start, id_prefix="x-"))
    assert [e for e in replayed if e["type"] == "change"]  # without steady, a short run retells the story


def test_write_jsonl_counts_and_lines(tmp_path: Any) -> None:
    path = tmp_path / "events.jsonl"
    counts = write_jsonl(path, generate(seed=5, days=1, decisions_per_day=100))
    lines = path.read_bytes().splitlines()
    assert counts["total"] == len(lines) == sum(v for k, v in counts.items() if k != "total")
    assert counts["decision"] > 0
    text = io.StringIO()
    assert write_jsonl(text, generate(seed=5, days=1, decisions_per_day=100)) == counts
    assert text.getvalue().encode() == path.read_bytes()


def test_sample_file_is_what_the_generator_writes() -> None:
    buf = io.BytesIO()
    counts = write_jsonl(buf, generate(**SAMPLE_PARAMS))
    assert SAMPLE_PATH.read_bytes() == buf.getvalue(), (
        "collectors/data/sample.jsonl is stale: regenerate with `python -m collectors.synth --sample`"
    )
    assert 600 < counts["decision"] < 1200


def test_incident_schedule_scales_with_days() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    default = {i.name: i.starts_at for i in incident_schedule(start=start)}
    assert default["calibration_drift"] == start + timedelta(days=20)
    assert default["threshold_change"] == start + timedelta(days=14)
    short = {i.name: i.starts_at for i in incident_schedule(days=3, start=start)}
    assert short["calibration_drift"] == start + timedelta(days=2)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate(days=0)
    with pytest.raises(ValueError):
        generate(decisions_per_day=-1)
