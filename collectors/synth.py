"""Seeded synthetic audit traffic of AI agents with humans in the loop.

`generate()` yields contract events (section 1 of the contract) as JSON-ready
dicts, in time order, for the demo, the benchmarks and the tests. It draws
everything with numpy, one day at a time, and only builds the dicts in Python,
so a million decisions (with ~0.7 reviews and ~0.5 outcomes each, 2.2M
events) take about 15 s of CPU. The same arguments always give the same
events, ids included. `python -m collectors.synth --help` writes JSON Lines.

The world
---------
Four agents (refund-agent, support-agent, kyc-agent, fraud-agent), each with
2-3 model versions rolled out over time, propose 7 action types. Risk classes
route them: low is executed automatically when confidence >= the auto
threshold (else reviewed), a sample of auto decisions is audited; medium and
high are reviewed; critical is reviewed and then signed off by a senior (an
escalation-kind review); limit_increase runs in shadow mode (humans act, the
agent only recommends). Five queues (payments-l1, payments-l2, kyc, support,
fraud) are staffed by 32 reviewers with their own speed and accuracy; seniors
take escalations and two QA auditors the audit samples; ~5% of reviewed items
(25% in payments-l1) get a blind second (overlap) review for agreement. Traffic is diurnal and
weekly, confidence is Beta-distributed and roughly calibrated (agent_correct
~ Bernoulli(confidence); refund-v3.1 is 0.03 overconfident), queue waits are
lognormal and longer at night, outcomes arrive hours to days after the final
action (more often for reviewed items); under 1% of outcomes are preliminary
("looked fine") and superseded by a later one. Nothing
after `start + days` ("now") is emitted, so the newest items are still
pending and the newest outcomes not yet known.

Incidents (``incidents=True``)
------------------------------
Times are offsets from `start` for the default ``days=30``; for another
length every offset scales by ``days / 30`` (so any length shows all six).
`incident_schedule()` returns them as datetimes.

1. Calibration drift, day 20 -> end: kyc-v2.4 (kyc-agent's main model) is
   right ~0.2 less often (agent_correct ~ Bernoulli(confidence - 0.2)) while
   its confidence distribution is unchanged. Humans reject more kyc items.
2. Backlog, day 25.0 -> 26.5: queue payments-l1 waits 5-10x longer; items
   pile up and breach the SLA. A change of kind ``other`` (extra staff) marks
   the end.
3. Erratic reviewer, day 8 -> end: gus.w joins payments-l1 and gives random
   verdicts (approve/edit/reject), so he disagrees with peers on overlaps.
4. Subgroup, whole period: the agents are ~0.15 less often right on
   ``segment.region == "LATAM"`` at the same confidence, so LATAM has a higher
   intervention rate (and worse calibration).
5. Shadow mode, whole period: fraud-agent's limit_increase recommendations
   (route ``shadow``) match the humans more and more (accuracy and confidence
   ramp from ~0.60 to ~0.90).
6. Threshold change, day 14: the auto threshold of risk class low drops from
   0.85 to 0.75 (a ``threshold`` change event); the auto rate rises visibly.

With ``incidents=False`` none of these happen (gus.w still joins, as a normal
reviewer; the shadow agent stays at ~0.75; the threshold stays 0.85).

Regular changes (with or without incidents): refund-v3.2 canary at day 6
(10%), 50% at day 10, 100% at day 15; fraud-gbm-8 at day 12 (50%) and day 16
(100%); refund policy 12 -> 13 at day 16; support-llm-2026.10 canary (20%) at
day 18; kyc-v2.5 canary (10%) at day 27. kyc-v2.3 fades out over days 2-4.
Each rollout step and the policy change is a ``change`` event.

Ids are ``s{seed}-d0000000`` (decisions), ``s{seed}-r0000000`` (reviews) and
``s{seed}-c00`` (changes); pass `id_prefix` to load two datasets into one store.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
"""Start of the generated period when none is given (fixed, so output is reproducible)."""

SAMPLE_PATH = Path(__file__).parent / "data" / "sample.jsonl"
SAMPLE_PARAMS: dict[str, Any] = {"seed": 7, "days": 3, "decisions_per_day": 300}
"""The parameters `collectors/data/sample.jsonl` was written with (start: DEFAULT_START)."""

_REF_DAYS = 30.0  # incident and rollout days below are on this scale
_DAY = 86_400
_EPS = 1e-6  # days: turns a keypoint pair into a step

# ---------------------------------------------------------------- the world

AGENTS = ("refund-agent", "support-agent", "kyc-agent", "fraud-agent")
RISKS = ("low", "medium", "high", "critical")
QUEUES = ("payments-l1", "payments-l2", "support", "kyc", "fraud")
ROUTES = ("auto", "review", "shadow")
VERDICTS = ("approve", "edit", "reject", "escalate")
_CHECK_RESULTS = ("pass", "warn", "fail")


@dataclass(frozen=True)
class _Product:
    """One (agent, action type) pair and everything drawn per decision of it."""

    agent: int
    action: str
    share: float
    risk: tuple[float, float, float, float]  # P(low, medium, high, critical)
    queues: tuple[str, str, str, str]  # queue per risk class
    edit_share: float  # of corrections, how many are edits (rest: rejects)
    handle_s: float  # median active handling time
    lag_h: float  # median hours until the outcome is known
    cost: tuple[float, float]  # error cost range (log-uniform)
    rules: tuple[str, ...]
    reasons: tuple[tuple[str, float], ...]
    shadow: bool = False


_PL = ("payments-l1", "payments-l1", "payments-l2", "payments-l2")
PRODUCTS: tuple[_Product, ...] = (
    _Product(0, "refund", 0.28, (0.62, 0.26, 0.09, 0.03), _PL, 0.6, 110, 36, (20, 500),
             ("refund_amount_limit", "duplicate_refund"),
             (("wrong_amount", 0.45), ("policy_violation", 0.2), ("duplicate_request", 0.15),
              ("fraud_suspected", 0.1), ("other", 0.1))),
    _Product(0, "chargeback", 0.07, (0.10, 0.45, 0.35, 0.10), _PL, 0.3, 300, 96, (50, 2000),
             ("chargeback_window", "evidence_attached"),
             (("missing_evidence", 0.4), ("policy_violation", 0.3), ("fraud_suspected", 0.2),
              ("other", 0.1))),
    _Product(1, "ticket_reply", 0.24, (0.90, 0.10, 0.0, 0.0), ("support",) * 4, 0.85, 80, 8, (2, 40),
             ("pii_redaction", "toxicity"),
             (("factual_error", 0.4), ("incomplete_answer", 0.3), ("tone", 0.2), ("other", 0.1))),
    _Product(1, "account_unlock", 0.06, (0.50, 0.35, 0.15, 0.0), ("support",) * 4, 0.2, 150, 12,
             (10, 300), ("identity_verified", "velocity"),
             (("identity_not_verified", 0.5), ("fraud_suspected", 0.3), ("other", 0.2))),
    _Product(2, "kyc_approve", 0.17, (0.15, 0.55, 0.25, 0.05), ("kyc",) * 4, 0.25, 300, 72,
             (200, 5000), ("sanctions_screen", "document_validity", "pep_screen"),
             (("document_mismatch", 0.45), ("missing_evidence", 0.25), ("sanctions_hit", 0.1),
              ("policy_violation", 0.1), ("other", 0.1))),
    _Product(2, "account_unlock", 0.03, (0.0, 0.6, 0.4, 0.0), ("kyc",) * 4, 0.2, 200, 12,
             (10, 300), ("identity_verified", "velocity"),
             (("identity_not_verified", 0.6), ("fraud_suspected", 0.3), ("other", 0.1))),
    _Product(3, "limit_increase", 0.08, (0.0, 0.5, 0.4, 0.1), ("fraud",) * 4, 0.5, 200, 120,
             (100, 3000), ("credit_limit_cap", "velocity"),
             (("limit_too_high", 0.5), ("fraud_suspected", 0.3), ("policy_violation", 0.2)),
             shadow=True),
    _Product(3, "account_freeze", 0.07, (0.2, 0.45, 0.3, 0.05), ("fraud",) * 4, 0.3, 240, 48,
             (20, 400), ("velocity", "customer_impact"),
             (("false_positive", 0.6), ("fraud_suspected", 0.2), ("other", 0.2))),
)


@dataclass(frozen=True)
class _Version:
    """A model version: its Beta confidence, calibration bias and rollout share over time."""

    agent: int
    name: str
    alpha: float
    beta: float
    bias: float = 0.0  # added to the probability of being right
    share: tuple[tuple[float, float], ...] | None = None  # (day, share) keypoints; None: the rest


VERSIONS: tuple[_Version, ...] = (
    _Version(0, "refund-v3.1", 8.0, 1.3, bias=-0.03),
    _Version(0, "refund-v3.2", 10.0, 1.3,
             share=((0, 0), (6 - _EPS, 0), (6, 0.1), (10 - _EPS, 0.1), (10, 0.5), (15 - _EPS, 0.5),
                    (15, 1.0))),
    _Version(1, "support-llm-2026.09", 7.0, 1.1),
    _Version(1, "support-llm-2026.10", 8.0, 1.1, share=((0, 0), (18 - _EPS, 0), (18, 0.2))),
    _Version(2, "kyc-v2.3", 7.0, 1.6, share=((0, 0.3), (2, 0.3), (4, 0.0))),
    _Version(2, "kyc-v2.4", 9.0, 1.5),
    _Version(2, "kyc-v2.5", 9.5, 1.4, share=((0, 0), (27 - _EPS, 0), (27, 0.1))),
    _Version(3, "fraud-gbm-7", 6.0, 1.3),
    _Version(3, "fraud-gbm-8", 7.0, 1.2, share=((0, 0), (12 - _EPS, 0), (12, 0.5), (16 - _EPS, 0.5),
                                               (16, 1.0))),
)
DRIFTING_VERSION = "kyc-v2.4"

_POLICY = ("refund-policy-12", None, "kyc-policy-9", "fraud-policy-3")  # support-agent: none
_POLICY_AFTER = ("refund-policy-13", None, "kyc-policy-9", "fraud-policy-3")
_MODEL_COST = ((0.004, 0.02), (0.01, 0.05), (0.015, 0.04), (0.001, 0.004))  # per agent

# Reviewers: name -> (handling-time factor, 1.3 = 30% slower; P(catch an agent error); P(change a right one)).
REVIEWERS: dict[str, tuple[float, float, float]] = {
    "ana.m": (1.0, 0.94, 0.010), "ben.t": (0.8, 0.92, 0.015), "chloe.r": (1.3, 0.96, 0.008),
    "dev.p": (0.9, 0.93, 0.012), "emil.k": (1.1, 0.95, 0.010), "fatima.s": (0.7, 0.90, 0.020),
    "gus.w": (0.9, 0.93, 0.012),
    "hana.y": (1.2, 0.97, 0.006), "ivan.d": (1.0, 0.96, 0.008), "jules.b": (1.4, 0.97, 0.005),
    "kofi.a": (0.9, 0.95, 0.010), "mila.lead": (1.5, 0.98, 0.004),
    "lara.n": (1.1, 0.94, 0.010), "mei.c": (0.9, 0.95, 0.010), "nils.o": (1.3, 0.93, 0.012),
    "omar.f": (1.0, 0.95, 0.008), "priya.v": (0.8, 0.92, 0.015), "quinn.h": (1.4, 0.98, 0.004),
    "raj.g": (0.7, 0.91, 0.015), "sara.l": (0.9, 0.94, 0.010), "tom.e": (1.0, 0.93, 0.012),
    "uma.z": (1.2, 0.95, 0.008), "vic.j": (0.8, 0.92, 0.014), "wen.x": (1.0, 0.94, 0.010),
    "xavi.q": (1.3, 0.97, 0.005),
    "yara.b": (1.0, 0.95, 0.008), "zoe.k": (1.2, 0.96, 0.008), "alex.f": (0.9, 0.93, 0.012),
    "bea.u": (1.1, 0.94, 0.010), "carl.i": (1.4, 0.98, 0.004),
    "dina.qa": (1.2, 0.97, 0.005), "eli.qa": (1.1, 0.97, 0.006),
}
ERRATIC_REVIEWER = "gus.w"  # joins payments-l1 on day 8 (incident 3)
PRIMARY_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "payments-l1": (("ana.m", 1.0), ("ben.t", 1.2), ("chloe.r", 0.8), ("dev.p", 1.0), ("emil.k", 1.0),
                    ("fatima.s", 1.3), (ERRATIC_REVIEWER, 1.2)),
    "payments-l2": (("hana.y", 1.0), ("ivan.d", 1.0), ("jules.b", 0.8), ("kofi.a", 1.2)),
    "support": (("raj.g", 1.3), ("sara.l", 1.0), ("tom.e", 1.0), ("uma.z", 0.8), ("vic.j", 1.2),
                ("wen.x", 1.0)),
    "kyc": (("lara.n", 1.0), ("mei.c", 1.0), ("nils.o", 0.8), ("omar.f", 1.0), ("priya.v", 1.2)),
    "fraud": (("yara.b", 1.0), ("zoe.k", 0.9), ("alex.f", 1.1), ("bea.u", 1.0)),
}
SENIOR_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "payments-l1": (("hana.y", 1.0), ("ivan.d", 1.0), ("jules.b", 1.0)),
    "payments-l2": (("mila.lead", 1.0),),
    "support": (("xavi.q", 1.0),),
    "kyc": (("quinn.h", 1.0),),
    "fraud": (("carl.i", 1.0),),
}
AUDITORS: tuple[tuple[str, float], ...] = (("dina.qa", 1.0), ("eli.qa", 1.0))

_QUEUE_WAIT_MIN = (25.0, 20.0, 15.0, 45.0, 10.0)  # median queue wait per queue, minutes
_RISK_WAIT = (2.0, 1.0, 0.35, 0.06)  # priority: critical is picked up first
_ESCALATE_P = (0.002, 0.006, 0.015, 0.03)  # primary reviewer escalates, per risk class
_CONF_BETA_FACTOR = (0.8, 1.0, 1.4, 1.8)  # riskier items: lower confidence
AUDIT_P = (0.05, 0.1, 0.2, 1.0)  # audit sampling of auto decisions per risk class (config defaults)
OVERLAP_P = 0.05
# Queues that double-review more items than OVERLAP_P, as a share of their reviewed items. payments-l1, the
# largest primary team, double-reviews 1 item in 4: at the demo's 2,000 decisions a day its ~180 (weekend) to
# ~280 primary reviews a day give 40-70 agreement units, above the 30 HitlAgreementCollapse needs to judge a
# queue (alerts.agreement_min_units), so the erratic reviewer's alert fires and holds (at 5%: 6-15 units).
OVERLAP_P_QUEUE: dict[str, float] = {"payments-l1": 0.25}
_OUTCOME_P = {"auto": 0.40, "audited": 0.85, "reviewed": 0.60}
_SENIOR_RATE = 90.0  # per hour; escalation reviews carry their cost

# Regions: share, and the UTC hours in which each is awake (drives diurnal traffic).
REGIONS = ("EU", "US", "APAC", "LATAM")
_REGION_SIZE = (0.36, 0.34, 0.18, 0.12)
_REGION_AWAKE = ((6, 19), (13, 24), (0, 10), (12, 24))
TIERS = ("free", "pro", "enterprise")
_TIER_P = (0.55, 0.35, 0.10)
LANGUAGES = ("en", "de", "fr", "es", "ja", "ko", "pt")
_LANG_BY_REGION = (
    (0.45, 0.30, 0.25, 0, 0, 0, 0),
    (0.85, 0, 0, 0.15, 0, 0, 0),
    (0.50, 0, 0, 0, 0.35, 0.15, 0),
    (0, 0, 0, 0.65, 0, 0, 0.35),
)
_WEEKDAY = (1.08, 1.08, 1.08, 1.08, 1.08, 0.8, 0.8)  # Mon..Sun, mean 1

# Incident parameters (days on the 30-day scale).
THRESHOLD_BEFORE, THRESHOLD_AFTER = 0.85, 0.75
_THRESHOLD_DAY = 14.0
_DRIFT_DAY, _DRIFT_DROP = 20.0, 0.2
_BACKLOG_QUEUE, _BACKLOG_DAYS, _BACKLOG_FACTOR = "payments-l1", (25.0, 26.5), (5.0, 10.0)
_ERRATIC_DAY = 8.0
_SUBGROUP_REGION, _SUBGROUP_DROP = "LATAM", 0.15
_SHADOW_RAMP = (0.60, 0.90)
_POLICY_DAY = 16.0


def _tables() -> dict[str, np.ndarray]:
    """The world as numpy lookup tables (built once per process)."""
    awake = np.full((len(REGIONS), 24), 0.12)
    for r, (lo, hi) in enumerate(_REGION_AWAKE):
        awake[r, lo:hi] = 1.0
    region_hour = (np.array(_REGION_SIZE)[:, None] * awake).T  # (24, regions)
    queue_ix = {q: i for i, q in enumerate(QUEUES)}
    names = list(REVIEWERS)
    rev_ix = {n: i for i, n in enumerate(names)}

    def pool_table(pools: list[tuple[tuple[str, float], ...]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(p) for p in pools)
        members = np.zeros((len(pools), width), np.int64)
        weights = np.zeros((len(pools), width))
        for i, pool in enumerate(pools):
            for j, (name, w) in enumerate(pool):
                members[i, j], weights[i, j] = rev_ix[name], w
        return members, weights

    prim_m, prim_w = pool_table([PRIMARY_POOLS[q] for q in QUEUES])
    prim_w_before = prim_w * (prim_m != rev_ix[ERRATIC_REVIEWER])
    sen_m, sen_w = pool_table([SENIOR_POOLS[q] for q in QUEUES])
    aud_m, aud_w = pool_table([AUDITORS])
    reasons = sorted({code for p in PRODUCTS for code, _ in p.reasons})
    reason_p = np.zeros((len(PRODUCTS), len(reasons)))
    for i, p in enumerate(PRODUCTS):
        for code, w in p.reasons:
            reason_p[i, reasons.index(code)] = w
    return {
        "hour_p": region_hour.sum(1) / region_hour.sum(),
        "region_hour": region_hour,
        "lang_region": np.array(_LANG_BY_REGION, float),
        "prod_share": np.array([p.share for p in PRODUCTS]),
        "prod_agent": np.array([p.agent for p in PRODUCTS]),
        "prod_risk": np.array([p.risk for p in PRODUCTS]),
        "prod_queue": np.array([[queue_ix[q] for q in p.queues] for p in PRODUCTS]),
        "prod_edit": np.array([p.edit_share for p in PRODUCTS]),
        "prod_handle": np.array([p.handle_s for p in PRODUCTS]),
        "prod_lag": np.array([p.lag_h * 3600 for p in PRODUCTS]),
        "prod_cost": np.log(np.array([p.cost for p in PRODUCTS], float)),
        "prod_shadow": np.array([p.shadow for p in PRODUCTS]),
        "reason_p": reason_p,
        "reasons": np.array(reasons, dtype=object),
        "ver_agent": np.array([v.agent for v in VERSIONS]),
        "ver_alpha": np.array([v.alpha for v in VERSIONS]),
        "ver_beta": np.array([v.beta for v in VERSIONS]),
        "ver_bias": np.array([v.bias for v in VERSIONS]),
        "ver_drift": np.array([v.name == DRIFTING_VERSION for v in VERSIONS]),
        "rev_speed": np.array([REVIEWERS[n][0] for n in names]),
        "rev_detect": np.array([REVIEWERS[n][1] for n in names]),
        "rev_fp": np.array([REVIEWERS[n][2] for n in names]),
        "rev_names": np.array(names, dtype=object),
        "erratic": np.int64(rev_ix[ERRATIC_REVIEWER]),
        "prim_m": prim_m, "prim_w": np.stack([prim_w_before, prim_w]),
        "sen_m": sen_m, "sen_w": sen_w, "aud_m": aud_m, "aud_w": aud_w,
        "model_cost": np.array(_MODEL_COST),
        "backlog_queue": np.int64(queue_ix[_BACKLOG_QUEUE]),
    }


_T = functools.cache(_tables)


# ---------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Incident:
    """One injected incident: what it is and when (ends_at None: until the end)."""

    number: int
    name: str
    description: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class _Plan:
    seed: int
    days: float
    per_day: int
    start: int  # epoch seconds
    end: int
    incidents: bool
    prefix: str
    steady: bool = False  # the world after the 30-day story: every day of it is in the past
    horizon: int | None = None  # reviews and outcomes are kept until then (default: end)

    @property
    def seen_until(self) -> int:
        """Epoch seconds before which reviews and outcomes of the decisions are emitted."""
        return self.end if self.horizon is None else self.horizon

    def at(self, ref_day: float) -> int:
        """Epoch seconds of a day on the 30-day scale (steady: before the start, long over)."""
        if self.steady:
            return self.start - 1
        return self.start + round(ref_day * self.days / _REF_DAYS * _DAY)

    def ref_day(self, t: np.ndarray) -> np.ndarray:
        """Days on the 30-day scale of epoch-second times (steady: the story's last day, for every time)."""
        if self.steady:
            return np.full(np.shape(t), _REF_DAYS)
        return (t - self.start) / _DAY * (_REF_DAYS / self.days)


def _utc(start: datetime | None) -> datetime:
    if start is None:
        return DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.astimezone(UTC).replace(microsecond=0)


def incident_schedule(*, days: float = 30, start: datetime | None = None) -> list[Incident]:
    """The six incidents of `generate(days=..., start=...)` with their UTC start and end times."""
    t0 = _utc(start)

    def at(ref_day: float) -> datetime:
        return t0 + timedelta(seconds=round(ref_day * days / _REF_DAYS * _DAY))

    return [
        Incident(1, "calibration_drift", f"{DRIFTING_VERSION} right ~{_DRIFT_DROP} less often at the "
                 "same confidence", at(_DRIFT_DAY), None),
        Incident(2, "backlog", f"queue {_BACKLOG_QUEUE} waits 5-10x longer, SLA breaches",
                 at(_BACKLOG_DAYS[0]), at(_BACKLOG_DAYS[1])),
        Incident(3, "erratic_reviewer", f"{ERRATIC_REVIEWER} gives random verdicts in payments-l1",
                 at(_ERRATIC_DAY), None),
        Incident(4, "subgroup", f"region {_SUBGROUP_REGION}: agents less often right, more interventions",
                 at(0), None),
        Incident(5, "shadow_convergence", "limit_increase (shadow) matches humans more and more",
                 at(0), None),
        Incident(6, "threshold_change", f"auto threshold of risk class low {THRESHOLD_BEFORE} -> "
                 f"{THRESHOLD_AFTER}", at(_THRESHOLD_DAY), None),
    ]


def _changes(plan: _Plan) -> list[tuple[int, dict[str, Any]]]:
    """The change events (time, event) of a plan, in time order (none when steady: all made before)."""
    if plan.steady:
        return []
    def rollout(agent: str, before: Any, after: Any, reason: str) -> dict[str, Any]:
        return {"actor": "ml-platform", "kind": "model", "scope": {"agent_id": agent},
                "before": before, "after": after, "reason": reason}

    items: list[tuple[float, dict[str, Any]]] = [
        (6, rollout("refund-agent", {"refund-v3.1": 1.0}, {"refund-v3.1": 0.9, "refund-v3.2": 0.1},
                    "canary refund-v3.2")),
        (10, rollout("refund-agent", {"refund-v3.1": 0.9, "refund-v3.2": 0.1},
                     {"refund-v3.1": 0.5, "refund-v3.2": 0.5}, "refund-v3.2 to 50%")),
        (12, rollout("fraud-agent", {"fraud-gbm-7": 1.0}, {"fraud-gbm-7": 0.5, "fraud-gbm-8": 0.5},
                     "fraud-gbm-8 to 50%")),
        (15, rollout("refund-agent", {"refund-v3.1": 0.5, "refund-v3.2": 0.5}, {"refund-v3.2": 1.0},
                     "refund-v3.2 to 100%")),
        (16, rollout("fraud-agent", {"fraud-gbm-7": 0.5, "fraud-gbm-8": 0.5}, {"fraud-gbm-8": 1.0},
                     "fraud-gbm-8 to 100%")),
        (_POLICY_DAY, {"actor": "risk-office", "kind": "policy", "scope": {"agent_id": "refund-agent"},
                       "before": _POLICY[0], "after": _POLICY_AFTER[0],
                       "reason": "refund policy revision: stricter duplicate checks"}),
        (18, rollout("support-agent", {"support-llm-2026.09": 1.0},
                     {"support-llm-2026.09": 0.8, "support-llm-2026.10": 0.2}, "canary support-llm-2026.10")),
        (27, rollout("kyc-agent", {"kyc-v2.4": 1.0}, {"kyc-v2.4": 0.9, "kyc-v2.5": 0.1},
                     "canary kyc-v2.5")),
    ]
    if plan.incidents:
        items += [
            (_THRESHOLD_DAY, {"actor": "maria.ops", "kind": "threshold", "scope": {"risk_class": "low"},
                              "before": THRESHOLD_BEFORE, "after": THRESHOLD_AFTER,
                              "reason": "raise automation on low-risk items"}),
            (_BACKLOG_DAYS[1], {"actor": "payments-ops", "kind": "other",
                                "scope": {"queue": _BACKLOG_QUEUE}, "before": 7, "after": 10,
                                "reason": "three extra reviewers to clear the payments-l1 backlog"}),
        ]
    items.sort(key=lambda item: item[0])
    stamps = _timestamps(np.array([plan.at(d) for d, _ in items], np.int64))
    out = []
    for k, ((day, body), stamp) in enumerate(zip(items, stamps)):
        t = plan.at(day)
        if t < plan.end:
            out.append((t, {"type": "change", "id": f"{plan.prefix}c{k:02d}", "changed_at": stamp, **body}))
    return out


# ---------------------------------------------------------------- drawing


def _pick(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row index, from the (unnormalised) weights probs[rows]."""
    cum = probs[rows].cumsum(1)
    u = rng.random(len(rows)) * cum[:, -1]
    return (cum <= u[:, None]).sum(1)


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(n))


@functools.cache
def _hms() -> list[str]:
    return [f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)]


def _timestamps(t: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings of epoch seconds, vectorised through a per-day prefix table."""
    if len(t) == 0:
        return []
    days, secs = np.divmod(t, _DAY)
    d0 = int(days.min())
    epoch = date(1970, 1, 1)
    prefix = [(epoch + timedelta(days=d)).isoformat() for d in range(d0, int(days.max()) + 1)]
    hms = _hms()
    return [prefix[d] + hms[s] for d, s in zip((days - d0).tolist(), secs.tolist())]


def _draw_decisions(plan: _Plan, rng: np.random.Generator, day: int) -> dict[str, np.ndarray]:
    """The decisions proposed on one day of the plan, in time order."""
    T = _T()
    day_start = plan.start + day * _DAY
    n = round(plan.per_day * _WEEKDAY[(day_start // _DAY + 3) % 7])
    t = np.sort(day_start + rng.choice(24, n, p=T["hour_p"]) * 3600 + rng.integers(0, 3600, n))
    t = t[t < plan.end]
    n = len(t)
    rd = plan.ref_day(t)
    prod = rng.choice(len(PRODUCTS), n, p=T["prod_share"])
    agent = T["prod_agent"][prod]
    risk = _pick(rng, T["prod_risk"], prod)
    region = _pick(rng, T["region_hour"], (t % _DAY) // 3600)
    tier = rng.choice(len(TIERS), n, p=_TIER_P)
    lang = _pick(rng, T["lang_region"], region)

    shares = np.zeros((n, len(VERSIONS)))
    for v, ver in enumerate(VERSIONS):
        if ver.share is not None:
            xs, ys = zip(*ver.share)
            shares[:, v] = np.interp(rd, xs, ys) * (agent == ver.agent)
    for v, ver in enumerate(VERSIONS):
        if ver.share is None:
            rest = shares[:, T["ver_agent"] == ver.agent].sum(1)
            shares[:, v] = np.clip(1.0 - rest, 0.0, 1.0) * (agent == ver.agent)
    version = _pick(rng, shares, np.arange(n))

    alpha = T["ver_alpha"][version]
    beta = T["ver_beta"][version] * np.array(_CONF_BETA_FACTOR)[risk]
    shadow = T["prod_shadow"][prod]
    if shadow.any():  # shadow action: a learning policy, calibrated, improving over the period
        lo, hi = _SHADOW_RAMP if plan.incidents else (0.75, 0.75)
        mean = lo + (hi - lo) * np.clip(rd[shadow] / _REF_DAYS, 0, 1)
        alpha[shadow], beta[shadow] = mean * 12, (1 - mean) * 12
    conf = np.round(rng.beta(alpha, beta), 4)
    p_right = conf + T["ver_bias"][version]
    if plan.incidents:
        p_right -= _DRIFT_DROP * (T["ver_drift"][version] & (rd >= _DRIFT_DAY))
        p_right -= _SUBGROUP_DROP * (region == REGIONS.index(_SUBGROUP_REGION))
    correct = rng.random(n) < p_right

    threshold = np.full(n, THRESHOLD_BEFORE)
    if plan.incidents:
        threshold[rd >= _THRESHOLD_DAY] = THRESHOLD_AFTER
    route = np.where(shadow, 2, np.where((risk == 0) & (conf >= threshold), 0, 1))
    lo_c, hi_c = T["model_cost"][agent].T
    checks_bad = np.where(correct, 0.05, 0.25)
    u = rng.random((n, 3))
    checks = np.where(u < checks_bad[:, None] * 0.2, 2, np.where(u < checks_bad[:, None], 1, 0))
    return {
        "t": t, "prod": prod, "agent": agent, "risk": risk, "region": region, "tier": tier,
        "lang": lang, "version": version, "conf": conf, "correct": correct, "route": route,
        "queue": T["prod_queue"][prod, risk], "policy_new": rd >= _POLICY_DAY,
        "model_cost": np.round(lo_c + (hi_c - lo_c) * rng.random(n), 5), "checks": checks,
        "pref_edit": rng.random(n) < T["prod_edit"][prod],
    }


def _verdicts(rng: np.random.Generator, correct: np.ndarray, pref_edit: np.ndarray,
              reviewer: np.ndarray, p_escalate: np.ndarray, erratic: np.ndarray) -> np.ndarray:
    """Verdict codes (index into VERDICTS) of reviewers judging items whose truth is `correct`."""
    T = _T()
    n = len(correct)
    u = rng.random((n, 3))
    change = np.where(correct, u[:, 0] < T["rev_fp"][reviewer], u[:, 0] < T["rev_detect"][reviewer])
    # A caught error gets the fix it needs (edit or reject) 95% of the time; a false alarm is mostly an edit.
    edit = np.where(correct, u[:, 1] < 0.6, pref_edit ^ (u[:, 1] < 0.05))
    verdict = np.where(change, np.where(edit, 1, 2), 0)
    verdict = np.where(u[:, 2] < p_escalate, 3, verdict)
    if erratic.any():
        verdict[erratic] = rng.integers(0, 3, int(erratic.sum()))
    return verdict


def _assign(rng: np.random.Generator, members: np.ndarray, weights: np.ndarray,
            rows: np.ndarray) -> np.ndarray:
    """Reviewer indices drawn from the pool of each row (members/weights indexed by rows)."""
    k = _pick(rng, weights, rows)
    return members[rows, k]


def _draw_reviews(plan: _Plan, rng: np.random.Generator, dec: dict[str, np.ndarray]) -> dict[str, Any]:
    """Primary, escalation, overlap and audit reviews of a day's decisions (all of them, even future)."""
    T = _T()
    n = len(dec["t"])
    risk, queue, prod = dec["risk"], dec["queue"], dec["prod"]
    erratic_from = plan.at(_ERRATIC_DAY)
    backlog = (plan.at(_BACKLOG_DAYS[0]), plan.at(_BACKLOG_DAYS[1]))

    def wait(enq: np.ndarray, q: np.ndarray, r: np.ndarray, g: np.random.Generator = rng) -> np.ndarray:
        hour = (enq % _DAY) // 3600
        night = (hour >= 20) | (hour < 6)
        w = _lognormal(g, np.array(_QUEUE_WAIT_MIN)[q] * 60 * np.array(_RISK_WAIT)[r], 0.9, len(enq))
        w *= np.where(night, np.where(r >= 2, 1.3, 2.5), 1.0)
        if plan.incidents:
            hit = (q == T["backlog_queue"]) & (enq >= backlog[0]) & (enq < backlog[1])
            w[hit] *= g.uniform(*_BACKLOG_FACTOR, int(hit.sum()))
        return w

    def handle(rev: np.ndarray, p: np.ndarray, factor: float = 1.0, g: np.random.Generator = rng) -> np.ndarray:
        median = T["rev_speed"][rev] * T["prod_handle"][p] * factor
        return np.maximum(5, np.round(_lognormal(g, median, 0.45, len(rev)))).astype(np.int64)

    def erratic(rev: np.ndarray, enq: np.ndarray) -> np.ndarray:
        return (rev == T["erratic"]) & (enq >= erratic_from) if plan.incidents else np.zeros(len(rev), bool)

    parts: list[dict[str, np.ndarray]] = []

    def add(ix: np.ndarray, rev: np.ndarray, kind: int, enq: np.ndarray, claimed: np.ndarray,
            hs: np.ndarray, verdict: np.ndarray, audit_p: float | np.ndarray = 0.0) -> None:
        parts.append({"dec": ix, "rev": rev, "kind": np.full(len(ix), kind), "enq": enq,
                      "claimed": claimed, "decided": claimed + hs, "hs": hs, "verdict": verdict,
                      "audit_p": np.broadcast_to(np.asarray(audit_p, float), len(ix))})

    # Primary: every review and shadow decision.
    ix = np.flatnonzero(dec["route"] != 0)
    enq = dec["t"][ix] + rng.integers(1, 30, len(ix))
    phase = (enq >= erratic_from).astype(np.int64)
    rev = T["prim_m"][queue[ix], _pick(rng, T["prim_w"][phase, queue[ix]], np.arange(len(ix)))]
    claimed = enq + wait(enq, queue[ix], risk[ix]).astype(np.int64)
    hs = handle(rev, prod[ix])
    verdict = _verdicts(rng, dec["correct"][ix], dec["pref_edit"][ix], rev,
                        np.array(_ESCALATE_P)[risk[ix]], erratic(rev, enq))
    add(ix, rev, 0, enq, claimed, hs, verdict)
    p_decided = claimed + hs

    # Escalation: after a primary "escalate", and a senior sign-off on every critical item.
    esc = (verdict == 3) | (risk[ix] == 3)
    eix = ix[esc]
    e_enq = p_decided[esc] + rng.integers(5, 120, len(eix))
    e_rev = _assign(rng, T["sen_m"], T["sen_w"], queue[eix])
    e_wait = _lognormal(rng, 40 * 60 * np.where(risk[eix] == 3, 0.25, np.where(risk[eix] == 2, 0.5, 1.0)),
                        0.8, len(eix))
    e_claimed = e_enq + e_wait.astype(np.int64)
    e_hs = handle(e_rev, prod[eix], 1.4)
    e_verdict = _verdicts(rng, dec["correct"][eix], dec["pref_edit"][eix], e_rev, np.zeros(len(eix)),
                          np.zeros(len(eix), bool))
    add(eix, e_rev, 1, e_enq, e_claimed, e_hs, e_verdict)

    # Final verdict and when it was taken (for outcomes); -1: auto.
    final_v = np.full(n, -1)
    final_t = dec["t"].copy()
    final_v[ix], final_t[ix] = verdict, p_decided
    final_v[eix], final_t[eix] = e_verdict, e_claimed + e_hs

    # Overlap: a blind second review (kind audit) of reviewed items, by a peer: OVERLAP_P of them, more in
    # the queues of OVERLAP_P_QUEUE (the probability each review states).
    overlap_p = np.array([OVERLAP_P_QUEUE.get(q, OVERLAP_P) for q in QUEUES])

    def overlap(sel: np.ndarray, g: np.random.Generator) -> None:
        oix, o_enq, first = ix[sel], enq[sel], rev[sel]
        o_phase = phase[sel]
        o_rev = first
        for _ in range(3):
            again = o_rev == first
            if not again.any():
                break
            k = _pick(g, T["prim_w"][o_phase[again], queue[oix[again]]], np.arange(int(again.sum())))
            o_rev = o_rev.copy()
            o_rev[again] = T["prim_m"][queue[oix[again]], k]
        same = o_rev == first
        o_rev[same] = np.where(T["prim_m"][queue[oix[same]], 0] == first[same],
                               T["prim_m"][queue[oix[same]], 1], T["prim_m"][queue[oix[same]], 0])
        o_claimed = o_enq + wait(o_enq, queue[oix], risk[oix], g).astype(np.int64)
        o_hs = handle(o_rev, prod[oix], g=g)
        o_verdict = _verdicts(g, dec["correct"][oix], dec["pref_edit"][oix], o_rev,
                              np.array(_ESCALATE_P)[risk[oix]], erratic(o_rev, o_enq))
        add(oix, o_rev, 2, o_enq, o_claimed, o_hs, o_verdict, overlap_p[queue[oix]])

    sel = rng.random(len(ix)) < OVERLAP_P
    overlap(sel, rng)

    # Audit: a post-hoc QA sample of auto decisions.
    auto = np.flatnonzero(dec["route"] == 0)
    audit_p = np.array(AUDIT_P)[risk[auto]]
    aix = auto[rng.random(len(auto)) < audit_p]
    a_enq = dec["t"][aix] + rng.integers(2 * 3600, 26 * 3600, len(aix))
    a_rev = _assign(rng, T["aud_m"], T["aud_w"], np.zeros(len(aix), np.int64))
    a_claimed = a_enq + _lognormal(rng, 2 * 3600, 0.7, len(aix)).astype(np.int64)
    a_hs = handle(a_rev, prod[aix], 1.2)
    a_verdict = _verdicts(rng, dec["correct"][aix], dec["pref_edit"][aix], a_rev, np.zeros(len(aix)),
                          np.zeros(len(aix), bool))
    add(aix, a_rev, 2, a_enq, a_claimed, a_hs, a_verdict, np.array(AUDIT_P)[risk[aix]])

    # The extra overlap of OVERLAP_P_QUEUE: among the items not drawn above, so each item of such a queue is
    # double-reviewed with its probability. Drawn last and from a child stream, so every other draw of the
    # day (reviews, outcomes, reason codes) is what it would be without it.
    extra_rng = rng.spawn(1)[0]
    extra_p = (overlap_p[queue[ix]] - OVERLAP_P) / (1 - OVERLAP_P)
    overlap(~sel & (extra_rng.random(len(ix)) < extra_p), extra_rng)

    reviews = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    audited = np.zeros(n, bool)
    audited[aix] = True
    return {"reviews": reviews, "final_v": final_v, "final_t": final_t, "audited": audited}


def _draw_outcomes(plan: _Plan, rng: np.random.Generator, dec: dict[str, np.ndarray],
                   rev: dict[str, Any]) -> dict[str, np.ndarray]:
    """Outcomes of a day's decisions: who is observed, when, and what went wrong at which cost."""
    T = _T()
    n = len(dec["t"])
    final_v, final_t = rev["final_v"], rev["final_t"]
    p_obs = np.where(final_v < 0, np.where(rev["audited"], _OUTCOME_P["audited"], _OUTCOME_P["auto"]),
                     _OUTCOME_P["reviewed"])
    lag = np.clip(_lognormal(rng, T["prod_lag"][dec["prod"]], 0.7, n), 600, 21 * _DAY).astype(np.int64)
    observed = final_t + lag
    u = rng.random((n, 4))
    correct = dec["correct"]
    changed = (final_v == 1) | (final_v == 2)
    # Humans fix most agent errors they change, and occasionally break a right proposal.
    final_ok = np.where(changed, np.where(correct, u[:, 1] < 0.4, u[:, 1] < 0.93), correct)
    lo, hi = T["prod_cost"][dec["prod"]].T
    cost = np.round(np.exp(lo + (hi - lo) * u[:, 2]), 2)
    agent_cost = np.round(np.exp(lo + (hi - lo) * u[:, 3]), 2)
    # Some errors of the agent's own action first look fine: a preliminary outcome, superseded later.
    prelim = ~changed & ~final_ok & (rng.random(n) < 0.15)
    prelim_at = final_t + lag // 3
    resolved = (final_v != 3) & (final_t < plan.seen_until)
    keep = resolved & (u[:, 0] < p_obs) & (observed < plan.seen_until)
    keep_pre = resolved & prelim & (u[:, 0] < p_obs) & (prelim_at < plan.seen_until)
    ix = np.concatenate([np.flatnonzero(keep_pre), np.flatnonzero(keep)])
    is_pre = np.concatenate([np.ones(int(keep_pre.sum()), bool), np.zeros(int(keep.sum()), bool)])
    return {
        "dec": ix, "at": np.where(is_pre, prelim_at[ix], observed[ix]),
        "agent_ok": correct[ix] | is_pre, "final_ok": final_ok[ix] | is_pre,
        "error_cost": np.where(final_ok[ix] | is_pre, 0.0, cost[ix]),
        "changed": changed[ix] & ~is_pre, "agent_cost": np.where(correct[ix], 0.0, agent_cost[ix]),
    }


# ---------------------------------------------------------------- building dicts


def _decision_dicts(plan: _Plan, dec: dict[str, np.ndarray], ids: list[str]) -> list[dict[str, Any]]:
    agent = dec["agent"]
    policy = np.where(dec["policy_new"], np.array(_POLICY_AFTER, dtype=object)[agent],
                      np.array(_POLICY, dtype=object)[agent])
    rules = [p.rules for p in PRODUCTS]
    events = [
        {"type": "decision", "id": i, "proposed_at": ts, "agent_id": ag, "model_version": mv,
         "policy_version": pv, "risk_class": rc, "queue": q, "action_type": at, "confidence": c,
         "route": r, "model_cost": mc,
         "segment": {"region": rg, "customer_tier": tr, "language": lg},
         "policy_checks": [{"rule": rule, "result": _CHECK_RESULTS[x]} for rule, x in zip(rules[p], ck)]}
        for i, ts, ag, mv, pv, rc, q, at, c, r, mc, rg, tr, lg, p, ck in zip(
            ids, _timestamps(dec["t"]), _obj(AGENTS, agent), _obj([v.name for v in VERSIONS], dec["version"]),
            policy.tolist(), _obj(RISKS, dec["risk"]), _obj(QUEUES, dec["queue"]),
            _obj([p.action for p in PRODUCTS], dec["prod"]), dec["conf"].tolist(),
            _obj(ROUTES, dec["route"]), dec["model_cost"].tolist(), _obj(REGIONS, dec["region"]),
            _obj(TIERS, dec["tier"]), _obj(LANGUAGES, dec["lang"]), dec["prod"].tolist(),
            dec["checks"].tolist())
    ]
    no_policy = np.array([p is None for p in _POLICY])[agent]
    for k in np.flatnonzero(no_policy).tolist():
        del events[k]["policy_version"]
    return events


def _review_dicts(r: dict[str, np.ndarray], ids: list[str], dec_ids: np.ndarray,
                  reason: np.ndarray) -> list[dict[str, Any]]:
    T = _T()
    events = [
        {"type": "review", "id": i, "decision_id": d, "reviewer_id": rv, "kind": k, "enqueued_at": e,
         "claimed_at": c, "decided_at": dd, "verdict": v, "handle_seconds": h}
        for i, d, rv, k, e, c, dd, v, h in zip(
            ids, dec_ids[r["dec"]].tolist(), T["rev_names"][r["rev"]].tolist(),
            _obj(("primary", "escalation", "audit"), r["kind"]), _timestamps(r["enq"]),
            _timestamps(r["claimed"]), _timestamps(r["decided"]), _obj(VERDICTS, r["verdict"]),
            r["hs"].tolist())
    ]
    for k in np.flatnonzero((r["verdict"] == 1) | (r["verdict"] == 2)).tolist():
        events[k]["reason_code"] = reason[k]
    for k, p in zip(np.flatnonzero(r["kind"] == 2).tolist(), r["audit_p"][r["kind"] == 2].tolist()):
        events[k]["audit_probability"] = p
    esc = np.flatnonzero(r["kind"] == 1)
    for k, c in zip(esc.tolist(), np.round(r["hs"][esc] * _SENIOR_RATE / 3600, 2).tolist()):
        events[k]["cost"] = c
    return events


def _outcome_dicts(o: dict[str, np.ndarray], dec_ids: np.ndarray) -> list[dict[str, Any]]:
    events = [
        {"type": "outcome", "decision_id": d, "observed_at": at, "agent_correct": a, "final_correct": f,
         "error_cost": c}
        for d, at, a, f, c in zip(dec_ids[o["dec"]].tolist(), _timestamps(o["at"]), o["agent_ok"].tolist(),
                                  o["final_ok"].tolist(), o["error_cost"].tolist())
    ]
    for k, c in zip(np.flatnonzero(o["changed"]).tolist(), o["agent_cost"][o["changed"]].tolist()):
        events[k]["agent_error_cost"] = c
    return events


def _obj(names: Iterable[str], codes: np.ndarray) -> list[str]:
    return np.array(list(names), dtype=object)[codes].tolist()


# ---------------------------------------------------------------- the stream


def generate(*, seed: int = 7, days: float = 30, decisions_per_day: int = 2000,
             start: datetime | None = None, incidents: bool = True,
             id_prefix: str | None = None, steady: bool = False,
             horizon: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Yield the events of `days` days of traffic from `start` (default DEFAULT_START), in time order.

    Deterministic for given arguments. Every event validates against the
    contract, and every review and outcome follows its decision. Incidents
    (module docstring) are injected when `incidents` is true.

    With `steady`, the traffic continues the 30-day story instead of telling it
    again: every rollout is complete, lasting incidents (drift, erratic reviewer,
    lowered threshold, shadow agent at its best) stay as they ended, the backlog
    is over and no change event is emitted (the live demo streams this).

    Decisions are proposed before start + days; their reviews and outcomes come
    up to then too, or up to `horizon` if given (the live demo keeps those in the
    future and sends each when its time comes).
    """
    if not days > 0:
        raise ValueError("days must be > 0")
    if decisions_per_day < 0:
        raise ValueError("decisions_per_day must be >= 0")
    t0 = int(_utc(start).timestamp())
    plan = _Plan(seed, float(days), int(decisions_per_day), t0, t0 + round(days * _DAY),
                 incidents, f"s{seed}-" if id_prefix is None else id_prefix, steady,
                 None if horizon is None else int(_utc(horizon).timestamp()))
    return _stream(plan)


def _stream(plan: _Plan) -> Iterator[dict[str, Any]]:
    changes = _changes(plan)
    # Events wait in this buffer until the day they happen is over, then go out sorted by
    # (time, type rank, creation order): decisions precede their reviews and outcomes.
    buf_events: list[dict[str, Any]] = [e for _, e in changes]
    buf_t = np.array([t for t, _ in changes], np.int64)
    buf_rank = np.zeros(len(changes), np.int64)
    buf_seq = np.arange(len(changes), dtype=np.int64)
    seq = len(changes)
    n_dec = n_rev = 0
    n_days = int(np.ceil((plan.end - plan.start) / _DAY))
    for day in range(n_days):
        # Millions of short-lived dicts make the cyclic GC rescan the buffer over and over
        # (a third of the run time); nothing built here forms a cycle, so pause it while building.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            rng = np.random.default_rng([plan.seed, day])
            dec = _draw_decisions(plan, rng, day)
            rev = _draw_reviews(plan, rng, dec)
            out = _draw_outcomes(plan, rng, dec, rev)
            r = rev["reviews"]
            live = r["decided"] < plan.seen_until  # later ones are still pending "now"
            r = {k: v[live] for k, v in r.items()}
            reason_codes = _T()["reasons"][_pick(rng, _T()["reason_p"], dec["prod"][r["dec"]])]
            dec_ids = np.array([f"{plan.prefix}d{i:07d}" for i in range(n_dec, n_dec + len(dec["t"]))],
                               dtype=object)
            rev_ids = [f"{plan.prefix}r{i:07d}" for i in range(n_rev, n_rev + len(r["dec"]))]
            n_dec += len(dec_ids)
            n_rev += len(rev_ids)
            new = (_decision_dicts(plan, dec, dec_ids.tolist())
                   + _review_dicts(r, rev_ids, dec_ids, reason_codes.tolist())
                   + _outcome_dicts(out, dec_ids))
            new_t = np.concatenate([dec["t"], r["decided"], out["at"]])
            new_rank = np.repeat([1, 2, 3], [len(dec["t"]), len(r["dec"]), len(out["dec"])])
            buf_events += new
            buf_t = np.concatenate([buf_t, new_t])
            buf_rank = np.concatenate([buf_rank, new_rank])
            buf_seq = np.concatenate([buf_seq, np.arange(seq, seq + len(new), dtype=np.int64)])
            seq += len(new)
            order = np.lexsort((buf_seq, buf_rank, buf_t))
            last = day == n_days - 1
            cut = len(order) if last else int(np.searchsorted(buf_t[order], plan.start + (day + 1) * _DAY))
            emit, keep = order[:cut].tolist(), order[cut:]
            ready = [buf_events[k] for k in emit]
            buf_events = [buf_events[k] for k in keep.tolist()]
            buf_t, buf_rank, buf_seq = buf_t[keep], buf_rank[keep], buf_seq[keep]
        finally:
            if gc_was_enabled:
                gc.enable()
        yield from ready


# ---------------------------------------------------------------- output


def write_jsonl(path_or_file: str | Path | IO[Any], events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Write events as JSON Lines (orjson, one per line) to a path, '-' (stdout) or an open file.

    Returns the count summary: events per type plus "total".
    """
    if isinstance(path_or_file, (str, Path)):
        if str(path_or_file) == "-":
            return _write(sys.stdout.buffer, events)
        with open(path_or_file, "wb") as fh:
            return _write(fh, events)
    return _write(path_or_file, events)


def _write(fh: IO[Any], events: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"decision": 0, "review": 0, "outcome": 0, "change": 0}
    text = isinstance(fh, io.TextIOBase)
    batch: list[bytes] = []
    dumps = orjson.dumps
    for event in events:
        counts[event["type"]] += 1
        batch.append(dumps(event))
        if len(batch) >= 20_000:
            _flush(fh, batch, text)
            batch = []
    _flush(fh, batch, text)
    counts["total"] = sum(counts.values())
    return counts


def _flush(fh: IO[Any], batch: list[bytes], text: bool) -> None:
    if batch:
        data = b"\n".join(batch) + b"\n"
        fh.write(data.decode() if text else data)


def write_sample(path: str | Path = SAMPLE_PATH) -> dict[str, int]:
    """(Re)write the bundled sample file from SAMPLE_PARAMS."""
    return write_jsonl(path, generate(**SAMPLE_PARAMS))


def main(argv: list[str] | None = None) -> int:
    """`python -m collectors.synth`: write synthetic events as JSON Lines and print the counts."""
    ap = argparse.ArgumentParser(prog="python -m collectors.synth", description=main.__doc__)
    ap.add_argument("-o", "--output", default="-", help="file to write ('-': stdout)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--decisions-per-day", type=int, default=2000)
    ap.add_argument("--start", type=datetime.fromisoformat, default=None,
                    help=f"ISO start time (UTC if no zone); default {DEFAULT_START.isoformat()}")
    ap.add_argument("--no-incidents", action="store_true")
    ap.add_argument("--sample", action="store_true", help="rewrite collectors/data/sample.jsonl")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    if args.sample:
        counts = write_sample()
    else:
        counts = write_jsonl(args.output, generate(
            seed=args.seed, days=args.days, decisions_per_day=args.decisions_per_day, start=args.start,
            incidents=not args.no_incidents))
    elapsed = time.perf_counter() - began
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"{summary} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
