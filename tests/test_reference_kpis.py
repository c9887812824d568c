"""The reference oracle itself is right: hand-computed cases for every KPI and every fine point of 2b.

These tests check `tests/reference_kpis.py` against numbers worked out by
hand from the contract (and, for alpha, from Krippendorff's 2011 paper), so
that the oracle can then be trusted to check the product.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from reference_kpis import KPI_NAMES, confidence_bin, nominal_alpha, parse_time, reference_report

BASE = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
START, END = "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"  # a one-day window
NOW = "2026-11-26T00:00:00Z"


def t(hours: float) -> str:
    """An RFC 3339 instant `hours` after the window start."""
    return (BASE + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def decision(id: str, hours: float, **fields: Any) -> dict[str, Any]:
    """A valid decision proposed `hours` after the window start; defaults fill required fields."""
    event = {
        "type": "decision",
        "id": id,
        "proposed_at": t(hours),
        "agent_id": "agent-1",
        "model_version": "m1",
        "risk_class": "medium",
        "action_type": "refund",
        "confidence": 0.5,
        "route": "review",
    }
    event.update(fields)
    return event


def review(
    id: str, decision_id: str, decided_h: float, verdict: str = "approve", **fields: Any
) -> dict[str, Any]:
    """A valid primary review decided `decided_h` hours after the window start, enqueued at decision."""
    event = {
        "type": "review",
        "id": id,
        "decision_id": decision_id,
        "reviewer_id": "rev-1",
        "kind": "primary",
        "enqueued_at": t(decided_h),
        "decided_at": t(decided_h),
        "verdict": verdict,
    }
    event.update(fields)
    return event


def outcome(
    decision_id: str, observed_h: float, agent_correct: bool, final_correct: bool, **fields: Any
) -> dict[str, Any]:
    """A valid outcome observed `observed_h` hours after the window start."""
    event = {
        "type": "outcome",
        "decision_id": decision_id,
        "observed_at": t(observed_h),
        "agent_correct": agent_correct,
        "final_correct": final_correct,
    }
    event.update(fields)
    return event


def report(events: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """reference_report over the default one-day window, measured at NOW."""
    kwargs.setdefault("now", NOW)
    return reference_report(events, START, END, **kwargs)


# --- shape -------------------------------------------------------------------


def test_report_shape_and_empty_window_nulls() -> None:
    out = report([])
    assert out == {"start": START, "end": END, "by": [], "total": out["total"], "rows": []}
    assert list(out["total"]) == list(KPI_NAMES)
    total = out["total"]
    assert (total["decisions"], total["pending"], total["override_count"]) == (0, 0, 0)
    assert all(total[k] is None for k in KPI_NAMES if k not in ("decisions", "pending", "override_count"))


def test_change_events_and_unknown_decisions_are_ignored() -> None:
    base = [decision("d1", 1, route="auto", confidence=0.9)]
    noisy = base + [
        {
            "type": "change",
            "id": "c1",
            "changed_at": t(2),
            "actor": "ops",
            "kind": "threshold",
            "before": 0.9,
            "after": 0.8,
        },
        review("r-ghost", "nope", 3, "reject"),
        outcome("nope", 3, False, False, error_cost=100.0),
    ]
    assert report(noisy) == report(base)


# --- Krippendorff's alpha ----------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units, values 1..5, "*" missing. Published nominal alpha = 0.743.
KRIPPENDORFF_2011 = [
    "1 2 3 3 2 1 4 1 2 * * *",  # observer A
    "1 2 3 3 2 2 4 1 2 5 * 3",  # observer B
    "* 3 3 3 2 3 4 2 2 5 1 *",  # observer C
    "1 2 3 3 2 4 4 1 2 5 1 *",  # observer D
]


def _paper_units() -> list[list[str]]:
    rows = [line.split() for line in KRIPPENDORFF_2011]
    return [[row[u] for row in rows if row[u] != "*"] for u in range(12)]


def test_krippendorff_2011_nominal_example() -> None:
    alpha = nominal_alpha(_paper_units())
    assert alpha is not None
    assert round(alpha, 3) == 0.743
    # Paper: n = 40 pairable values (unit 12 has one value and drops out);
    # D_o = 4/40 and alpha = 1 - (n - 1) * 4 / sum_{c != k} n_c n_k = 1 - 39 * 4 / 608.
    assert alpha == pytest.approx(1 - 39 * 4 / 608) == pytest.approx(113 / 152)


def test_alpha_nulls() -> None:
    assert nominal_alpha([]) is None
    assert nominal_alpha([["approve"]]) is None  # fewer than 2 pairable values
    assert nominal_alpha([["approve", "approve"], ["approve", "approve"]]) is None  # D_e = 0
    assert nominal_alpha([["approve", "approve"], ["reject", "reject"]]) == 1.0


def test_agreement_alpha_in_report_hand_computed() -> None:
    """Units (latest verdict per reviewer): [a, a], [a, r], [r, r, e] -> alpha = 0.2.

    o(a,a) = 2, o(a,r) = o(r,a) = 1, o(r,r) = o(r,e) = o(e,r) = 1 (unit of 3: weight 1/2 per pair);
    n_a = 3, n_r = 3, n_e = 1, n = 7; D_o = 4/7; D_e = 2 (9 + 3 + 3) / 42 = 5/7; alpha = 1 - 4/5.
    """
    events = [
        decision("u1", 1),
        decision("u2", 2),
        decision("u3", 3),
        decision("solo", 4),  # two reviews by one reviewer: not a unit
        decision("before", -5),  # outside the window: not a unit
        review("u1-a", "u1", 2, "approve", reviewer_id="A"),
        review("u1-b", "u1", 2, "approve", reviewer_id="B", kind="audit"),  # audits count
        review("u2-a", "u2", 3, "approve", reviewer_id="A"),
        # B's latest on u2 by (decided_at, id): "u2-b2" > "u2-b1" at the same instant -> reject
        review("u2-b1", "u2", 3, "approve", reviewer_id="B"),
        review("u2-b2", "u2", 3, "reject", reviewer_id="B"),
        review("u3-a", "u3", 4, "reject", reviewer_id="A"),
        review("u3-b", "u3", 30, "reject", reviewer_id="B"),  # decided after the window: still counts
        review("u3-c", "u3", 4, "escalate", reviewer_id="C"),  # escalate is a value like others
        review("solo-1", "solo", 5, "approve", reviewer_id="A"),
        review("solo-2", "solo", 6, "reject", reviewer_id="A"),
        review("before-a", "before", 1, "approve", reviewer_id="A"),
        review("before-b", "before", 1, "reject", reviewer_id="B"),
    ]
    assert report(events)["total"]["agreement_alpha"] == pytest.approx(0.2)


# --- calibration -------------------------------------------------------------


def test_ece_and_brier_hand_worked() -> None:
    """Pairs (0.95, 1), (1.0, 1), (0.85, 0), (0.15, 0); d5 has no outcome and is left out.

    bin 9: n=2, acc 1, conf 0.975 -> 2/4 x 0.025 = 0.0125; bin 8: 1/4 x 0.85 = 0.2125;
    bin 1: 1/4 x 0.15 = 0.0375. ECE = 0.2625.
    Brier = (0.05^2 + 0^2 + 0.85^2 + 0.15^2) / 4 = 0.7475 / 4 = 0.186875.
    """
    events = [
        decision("d1", 1, confidence=0.95),
        decision("d2", 2, confidence=1.0),
        decision("d3", 3, confidence=0.85),
        decision("d4", 4, confidence=0.15),
        decision("d5", 5, confidence=0.55),
        outcome("d1", 10, True, True),
        outcome("d2", 10, True, True),
        outcome("d3", 10, False, False),
        outcome("d4", 10, False, True),
    ]
    total = report(events)["total"]
    assert total["ece"] == pytest.approx(0.2625)
    assert total["brier"] == pytest.approx(0.186875)
    # No reference decisions at all: psi and ece_drift are null.
    assert total["psi"] is None and total["ece_drift"] is None


def test_ece_drift_against_reference_window() -> None:
    """Reference (previous day): one pair (0.6, correct) -> ECE 0.4. Current: (0.9, correct) -> 0.1."""
    events = [
        decision("ref", -10, confidence=0.6),
        outcome("ref", -5, True, True),
        decision("cur", 10, confidence=0.9),
        outcome("cur", 12, True, True),
    ]
    total = report(events)["total"]
    assert total["ece_drift"] == pytest.approx(0.1 - 0.4)
    # An explicit reference window without outcomes makes the reference ECE null.
    explicit = report(
        events + [decision("ref2", -30, confidence=0.2)], reference_start=t(-48), reference_end=t(-24)
    )["total"]
    assert explicit["ece"] == pytest.approx(0.1) and explicit["ece_drift"] is None


def test_confidence_bins_in_double_precision() -> None:
    assert confidence_bin(1.0) == 9
    assert confidence_bin(0.0) == 0
    assert confidence_bin(0.7) == 7  # 10 * 0.7 = 7.000000000000001
    assert confidence_bin(0.1) == 1
    assert confidence_bin(0.0999999) == 0


def test_psi_with_empty_bin_floored() -> None:
    """Reference shares: bin0 .5, bin1 .5; current: bin0 .5, bin1 .25, bin9 .25 (empty in reference).

    PSI = (.25 - .5) ln(.25/.5) + (.25 - .0001) ln(.25/.0001); equal floored bins add 0.
    """
    events = [
        decision("r1", -20, confidence=0.05),
        decision("r2", -10, confidence=0.15),
        decision("c1", 1, confidence=0.05),
        decision("c2", 2, confidence=0.01),
        decision("c3", 3, confidence=0.15),
        decision("c4", 4, confidence=1.0),
    ]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - 0.0001) * math.log(0.25 / 0.0001)
    assert report(events)["total"]["psi"] == pytest.approx(expected)
    # Identical distributions: 0.
    same = [decision("r", -3, confidence=0.42), decision("c", 3, confidence=0.47)]
    assert report(same)["total"]["psi"] == 0.0


# --- final verdict, pending, outcomes ----------------------------------------


def test_final_verdict_ties_and_as_of_now() -> None:
    events = [
        # Tie at the same decided_at: greater id in plain string order wins ("r9" > "r10").
        decision("tie", 1),
        review("r10", "tie", 2, "reject"),
        review("r9", "tie", 2, "approve"),
        # Later decided_at wins over a greater id; a later escalate is not a final verdict;
        # audit reviews never change the final verdict.
        decision("late", 1),
        review("z", "late", 2, "approve"),
        review("a", "late", 3, "edit"),
        review("b", "late", 4, "escalate", kind="escalation"),
        review("c", "late", 5, "reject", kind="audit"),
        # A review decided after the window end and after `now` still decides (as of now = whole store).
        decision("future", 1),
        review("f", "future", 500, "reject", kind="escalation"),
    ]
    total = report(events)["total"]
    # verdicts: tie -> approve, late -> edit, future -> reject
    assert total["intervention_rate"] == pytest.approx(2 / 3)
    assert total["auto_rate"] == 0.0
    assert total["pending"] == 0 and total["pending_oldest_age_seconds"] is None


def test_pending_and_auto_escalation() -> None:
    events = [
        decision("auto-esc", 1, route="auto"),  # only escalate reviews: keeps 'auto'
        review("e1", "auto-esc", 2, "escalate"),
        review("e2", "auto-esc", 3, "escalate", kind="escalation"),
        decision("auto-plain", 2, route="auto"),
        decision("auto-rej", 2, route="auto"),
        review("x", "auto-rej", 3, "reject"),
        decision("held", 3),
        review("h1", "held", 4, "escalate"),  # escalated, not yet decided
        decision("queued", 5),  # no review at all
        decision("shadow", 6, route="shadow"),  # humans act: pending until a review decides
        decision("audited", 7),
        review("aud", "audited", 8, "approve", kind="audit"),  # audit never resolves
    ]
    total = report(events, now=t(27))["total"]
    assert total["decisions"] == 7
    assert total["pending"] == 4
    assert total["pending_oldest_age_seconds"] == pytest.approx((27 - 3) * 3600)
    assert total["auto_rate"] == pytest.approx(2 / 3)
    assert total["intervention_rate"] == pytest.approx(1 / 3)


def test_outcome_latest_by_observed_at_ties_last_written() -> None:
    """Overridden decisions; which outcome counts decides agent/final correctness."""
    events = [
        decision("a", 1),
        review("ra", "a", 2, "reject"),
        # Latest observed_at wins though written first.
        outcome("a", 20, True, False),
        outcome("a", 10, False, True),
        decision("b", 1),
        review("rb", "b", 2, "edit"),
        # Same instant written in two zones: a tie, the last written wins.
        outcome("b", 10, False, True),
        {**outcome("b", 0, True, False), "observed_at": "2026-11-24T11:00:00+01:00"},
        # An identical re-send of the first is a duplicate, not a newer write.
        outcome("b", 10, False, True),
    ]
    total = report(events)["total"]
    # Both counted outcomes are (agent_correct, not final_correct): harmful.
    assert total["override_count"] == 2
    assert total["harmful_override_rate"] == 1.0
    assert total["override_error_delta"] == pytest.approx(0 - 1)


def test_override_kpis_and_cost_avoided() -> None:
    """Overrides: d1 (agent wrong, final right, aec 500, ec 0), d2 (agent wrong, final wrong,
    aec default -> 0 for edit, ec 30), d3 (agent right, final wrong, ec 20).
    Approved d4 has an outcome but is no override."""
    events = [
        decision("d1", 1),
        review("r1", "d1", 2, "reject"),
        outcome("d1", 30, False, True, agent_error_cost=500.0),
        decision("d2", 1),
        review("r2", "d2", 2, "edit"),
        outcome("d2", 30, False, False, error_cost=30.0),
        decision("d3", 1),
        review("r3", "d3", 2, "edit"),
        outcome("d3", 30, True, False, error_cost=20.0),
        decision("d4", 1),
        review("r4", "d4", 2, "approve"),
        outcome("d4", 30, False, False, error_cost=99.0),
        decision("d5", 1),
        review("r5", "d5", 2, "reject"),  # no outcome: not counted
    ]
    total = report(events)["total"]
    assert total["override_count"] == 3
    assert total["override_error_delta"] == pytest.approx(2 / 3 - 2 / 3)
    assert total["harmful_override_rate"] == pytest.approx(1 / 3)
    assert total["cost_avoided"] == pytest.approx(500.0 - (30.0 + 20.0))
    no_override = report([decision("d", 1, route="auto"), outcome("d", 5, True, True)])["total"]
    assert no_override["override_count"] == 0 and no_override["cost_avoided"] is None


# --- latency, SLA, cost -------------------------------------------------------


def test_latency_percentiles_match_numpy_and_sla_breach() -> None:
    latencies_h = [0.5, 1.0, 1.0 + 1 / 3600, 2.0, 7.5]  # seconds: 1800, 3600, 3601, 7200, 27000
    events = [decision("d0", -2, risk_class="high")]  # proposed before the window: its review counts
    for i, lat in enumerate(latencies_h):
        decided = 10.0 + i
        events.append(
            review(
                f"r{i}",
                "d0",
                decided,
                "escalate" if i == 0 else "approve",
                reviewer_id=f"rev{i}",
                enqueued_at=t(decided - lat),
                decided_at=t(decided),
            )
        )
    events += [
        review("esc", "d0", 5, kind="escalation", enqueued_at=t(0)),  # not primary
        review("late", "d0", 30, enqueued_at=t(0)),  # decided after the window
    ]
    total = report(events)["total"]
    seconds = [lat * 3600 for lat in latencies_h]
    for q in (50, 90, 99):
        assert total[f"latency_p{q}_seconds"] == pytest.approx(float(np.percentile(seconds, q)))
    # high SLA = 3600 s: exactly 3600 is no breach; 3601, 7200 and 27000 are.
    assert total["sla_breach_rate"] == pytest.approx(3 / 5)
    # A given SLA table replaces the defaults; an unlisted class gets 14400 s.
    assert report(events, sla={"critical": 1.0})["total"]["sla_breach_rate"] == pytest.approx(1 / 5)


def test_cost_per_decision() -> None:
    rates = {"default": 60.0, "queues": {"vip": 120.0}}
    events = [
        decision("d1", 1, queue="vip", model_cost=0.5),
        review("c", "d1", 2, cost=3.0),  # explicit cost
        review("h", "d1", 2, handle_seconds=90),  # 90 s at 120/h = 3.0
        review("cl", "d1", 40, kind="audit", claimed_at=t(40 - 0.25)),  # 900 s at 120/h = 30.0, decided later
        decision("d2", 2),  # default rate, no model_cost
        review("n", "d2", 3),  # no cost, no handle, no claim: 0
        review("h2", "d2", 3, kind="escalation", handle_seconds=60),  # 60 s at 60/h = 1.0
        decision("out", -3, model_cost=100.0),
        review("o", "out", 2, cost=1000.0),  # not a window decision
    ]
    expected = (3.0 + 3.0 + 30.0 + 0.5 + 0.0 + 1.0) / 2
    assert report(events, hourly_rate=rates)["total"]["cost_per_decision"] == pytest.approx(expected)
    flat = (3.0 + 1.5 + 15.0 + 0.5 + 0.0 + 1.0) / 2
    assert report(events, hourly_rate=60.0)["total"]["cost_per_decision"] == pytest.approx(flat)


# --- slicing -----------------------------------------------------------------


def test_sliced_rows_sort_plain_string_order_nulls_last() -> None:
    events = [
        decision("a", 1, queue="b", segment={"region": "eu"}),
        decision("b", 2, queue="a"),
        decision("c", 3),  # no queue: null row
        decision("d", 4, queue="B", segment={"region": "us"}),  # "B" < "a" in plain string order
        # A decision outside the window, reviewed (primary) in it: creates a row with 0 decisions.
        decision("old", -1, queue="zz", confidence=0.3),
        review("r-old", "old", 5, "approve", enqueued_at=t(4)),
        # An audit review in the window does not create rows.
        decision("older", -2, queue="yy"),
        review("aud", "older", 5, kind="audit"),
    ]
    out = report(events, by=["queue"])
    assert out["by"] == ["queue"]
    assert [row["queue"] for row in out["rows"]] == ["B", "a", "b", "zz", None]
    zz = out["rows"][3]
    assert zz["decisions"] == 0 and zz["cost_per_decision"] is None and zz["psi"] is None
    assert zz["latency_p50_seconds"] == pytest.approx(3600.0)
    assert out["total"]["decisions"] == 4  # total ignores --by
    assert all(list(row)[1:] == list(KPI_NAMES) for row in out["rows"])

    seg = report(events, by=["segment.region", "queue"])
    keys = [(row["segment.region"], row["queue"]) for row in seg["rows"]]
    assert keys == [("eu", "b"), ("us", "B"), (None, "a"), (None, "zz"), (None, None)]


def test_row_psi_compares_same_slice_of_reference() -> None:
    events = [
        decision("ref-low", -5, risk_class="low", confidence=0.15),
        decision("cur-low", 5, risk_class="low", confidence=0.15),
        decision("cur-high", 5, risk_class="high", confidence=0.95),  # no high in the reference
    ]
    rows = {row["risk_class"]: row for row in report(events, by=["risk_class"])["rows"]}
    assert rows["low"]["psi"] == 0.0
    assert rows["high"]["psi"] is None
    assert list(rows) == ["high", "low"]


def test_timestamps_with_offsets_are_instants() -> None:
    assert parse_time("2026-11-24T09:30:00+01:00") == parse_time("2026-11-24T08:30:00Z")
    # Proposed at 23:30 -01:00 = 00:30Z next day: outside [START, END).
    events = [decision("x", 0, proposed_at="2026-11-24T23:30:00-01:00")]
    assert report(events)["total"]["decisions"] == 0
    assert report([decision("y", 0, proposed_at="2026-11-24T00:30:00+01:00")])["total"]["decisions"] == 0
    assert report([decision("z", 0, proposed_at="2026-11-24T01:00:00+01:00")])["total"]["decisions"] == 1
