"""The KPI functions on their own: published examples, scikit-learn and numpy, hand examples, nulls."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_kpis import KPI_NAMES
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from collectors.kpis import agreement, calibration, cost, latency, overrides, rates
from collectors.kpis.agreement import Coincidences, Vote, agreement_alpha, agreement_units, coincidences
from collectors.kpis.calibration import CalibrationBins, confidence_bin
from collectors.kpis.spec import FAMILIES, KPI_IDS, KPIS, kpi_spec

FAMILY_MODULES = {"rates": rates, "calibration": calibration, "overrides": overrides,
                  "agreement": agreement, "latency": latency, "cost": cost}


# ---- registry ---------------------------------------------------------------------------------

def test_registry_lists_the_contract_kpis_in_order() -> None:
    assert KPI_IDS == KPI_NAMES
    assert len(set(KPI_IDS)) == len(KPI_IDS)


@pytest.mark.parametrize("spec", KPIS, ids=lambda s: s.id)
def test_every_kpi_has_a_documented_function_in_its_family_module(spec) -> None:  # type: ignore[no-untyped-def]
    assert spec.family in FAMILIES
    assert spec.help and spec.help.endswith(".")
    assert spec.good in ("up", "down", "neutral")
    function = getattr(FAMILY_MODULES[spec.family], spec.id)
    doc = function.__doc__ or ""
    assert "None" in doc or spec.unit == "count", f"{spec.id}: docstring must state the empty result"
    assert kpi_spec(spec.id) is spec


def test_unknown_kpi_spec() -> None:
    with pytest.raises(KeyError):
        kpi_spec("nope")


# ---- agreement --------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, missing values; nominal alpha = 0.743.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _units(matrix: list[list[object]]) -> list[list[object]]:
    return [[row[u] for row in matrix if row[u] is not None] for u in range(len(matrix[0]))]


def test_krippendorff_2011_nominal_example() -> None:
    alpha = agreement_alpha(_units(K2011))
    assert alpha is not None and round(alpha, 3) == 0.743
    data = np.array([[np.nan if v is None else v for v in row] for row in K2011], dtype=float)
    assert alpha == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"),
                                  rel=1e-12)


def test_krippendorff_2011_coincidences() -> None:
    stats = coincidences(_units(K2011))
    assert stats.units == 11  # unit 12 has one value and is left out
    assert stats.n == 40
    assert dict(stats.values) == {1: 9, 2: 13, 3: 10, 4: 5, 5: 3}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["approve", "edit", "reject", "escalate"]), min_size=0, max_size=4),
                max_size=12))
def test_alpha_matches_the_krippendorff_package(units: list[list[str]]) -> None:
    ours = agreement_alpha(units)
    pairable = [u for u in units if len(u) >= 2]
    categories = {v for u in pairable for v in u}
    if len(categories) < 2:
        assert ours is None  # no pairable values, or expected disagreement 0
        return
    codes = {v: i for i, v in enumerate(sorted(categories))}
    width = max(len(u) for u in pairable)
    data = np.full((width, len(pairable)), np.nan)
    for j, unit in enumerate(pairable):
        for i, value in enumerate(unit):
            data[i, j] = codes[value]
    assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"),
                                 rel=1e-9, abs=1e-12)


@given(st.lists(st.lists(st.sampled_from("abc"), max_size=4), max_size=8), st.randoms())
def test_alpha_ignores_order_and_merges(units: list[list[str]], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = [rnd.sample(u, len(u)) for u in units]
    rnd.shuffle(shuffled)
    assert agreement_alpha(units) == agreement_alpha(shuffled)
    half = len(units) // 2
    merged = coincidences(units[:half]).merge(coincidences(units[half:]))
    assert agreement.nominal_alpha(merged) == agreement_alpha(units)


def test_alpha_nulls() -> None:
    assert agreement_alpha([]) is None
    assert agreement_alpha([["a"], ["b"]]) is None  # no unit with 2 values
    assert agreement_alpha([["a", "a"], ["a", "a", "a"]]) is None  # expected disagreement 0
    assert agreement.nominal_alpha(Coincidences()) is None
    assert agreement_alpha([["a", "a"], ["b", "b"]]) == 1.0
    assert agreement_alpha([["a", "b"], ["a", "b"]]) == pytest.approx(-0.5)


def test_a_reviewers_latest_review_counts_once() -> None:
    votes = [
        Vote("d1", "alice", 10, "r1", "approve"),
        Vote("d1", "alice", 20, "r10", "reject"),  # later: replaces r1
        Vote("d1", "bob", 20, "r10b", "edit"),
        Vote("d1", "bob", 20, "r9", "escalate"),  # same instant, greater id ("r9" > "r10b"): latest
        Vote("d2", "carol", 5, "r3", "approve"),  # only one reviewer: not a unit
        Vote("d2", "carol", 6, "r4", "edit"),
    ]
    units = agreement_units(votes)
    assert units == {"d1": ["reject", "escalate"]}


# ---- calibration ------------------------------------------------------------------------------

def _bins(conf: list[float], correct: list[bool]) -> CalibrationBins:
    count, conf_sum, hits, sq = [0] * 10, [0.0] * 10, [0] * 10, [0.0] * 10
    for c, y in zip(conf, correct):
        b = confidence_bin(c)
        count[b] += 1
        conf_sum[b] += c
        hits[b] += int(y)
        sq[b] += (c - float(y)) ** 2
    return CalibrationBins(tuple(count), tuple(conf_sum), tuple(hits), tuple(sq))


def test_confidence_bins_edges() -> None:
    assert [confidence_bin(c) for c in (0.0, 0.0999, 0.1, 0.5, 0.9, 0.99999, 1.0)] == [0, 0, 1, 5, 9, 9, 9]


def _off_edges(c: float) -> bool:
    # scikit-learn puts a value exactly on an inner edge k/10 in the lower bin (searchsorted, left);
    # the contract puts it in the upper one. Both put 1.0 in the last bin.
    return all(abs(c - k / 10) > 1e-9 for k in range(1, 10))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0])).filter(_off_edges),
                          st.booleans()), min_size=1, max_size=60))
def test_ece_and_brier_match_scikit_learn(pairs: list[tuple[float, bool]]) -> None:
    conf = np.array([c for c, _ in pairs])
    y = np.array([int(b) for _, b in pairs])
    prob_true, prob_pred = calibration_curve(y, conf, n_bins=10, strategy="uniform")
    counts, _ = np.histogram(conf, bins=np.linspace(0, 1, 11))  # last bin closed: 1.0 included
    counts = counts[counts > 0]
    expected_ece = float(np.sum(counts / len(conf) * np.abs(prob_true - prob_pred)))
    bins = _bins(list(conf), [bool(v) for v in y])
    assert calibration.ece(bins) == pytest.approx(expected_ece, rel=1e-9, abs=1e-12)
    assert calibration.brier(bins) == pytest.approx(brier_score_loss(y, conf), rel=1e-9, abs=1e-12)


def test_ece_hand_example() -> None:
    # bin 9: conf 0.9, 1.0, correct 1 of 2 -> |0.5 - 0.95| = 0.45, weight 2/4
    # bin 2: conf 0.2, 0.3 -> bins 2 and 3; each correct 0 -> |0 - 0.2|, |0 - 0.3|, weight 1/4 each
    bins = _bins([0.9, 1.0, 0.2, 0.3], [True, False, False, False])
    assert calibration.ece(bins) == pytest.approx(0.5 * 0.45 + 0.25 * 0.2 + 0.25 * 0.3)
    assert calibration.brier(bins) == pytest.approx((0.01 + 1.0 + 0.04 + 0.09) / 4)


def test_psi_hand_example() -> None:
    reference = (2, 0, 0, 0, 0, 1, 0, 0, 0, 1)  # shares .5, .25, .25
    current = (1, 0, 0, 0, 0, 0, 0, 0, 0, 3)  # shares .25, 0 (floored), .75
    expected = ((0.25 - 0.5) * math.log(0.25 / 0.5)
                + (0.0001 - 0.25) * math.log(0.0001 / 0.25)
                + (0.75 - 0.25) * math.log(0.75 / 0.25))
    assert calibration.psi(reference, current) == pytest.approx(expected, rel=1e-12)
    assert calibration.psi(reference, current) == pytest.approx(2.6778, abs=1e-4)  # 0.1733 + 1.9552 + 0.5493
    assert calibration.psi(reference, reference) == 0.0


def test_calibration_nulls() -> None:
    empty = CalibrationBins()
    assert calibration.ece(empty) is None
    assert calibration.brier(empty) is None
    assert calibration.psi((0,) * 10, (1,) + (0,) * 9) is None
    assert calibration.psi((1,) + (0,) * 9, (0,) * 10) is None
    assert calibration.ece_drift(None, 0.1) is None
    assert calibration.ece_drift(0.1, None) is None
    assert calibration.ece_drift(0.3, 0.1) == pytest.approx(0.2)


def test_bins_merge() -> None:
    a, b = _bins([0.1, 0.95], [True, False]), _bins([0.15, 1.0], [False, True])
    assert a.merge(b) == _bins([0.1, 0.95, 0.15, 1.0], [True, False, False, True])


def test_reliability_bins_with_wilson_interval() -> None:
    bins = _bins([0.85] * 10, [True] * 8 + [False] * 2)
    bars = calibration.reliability_bins(bins)
    assert len(bars) == 10 and bars[0].count == 0 and bars[0].accuracy is None
    bar = bars[8]
    assert (bar.lower, bar.upper, bar.count) == (0.8, 0.9, 10)
    assert bar.accuracy == pytest.approx(0.8) and bar.mean_confidence == pytest.approx(0.85)
    # Wilson 95% interval of 8/10 (e.g. Newcombe 1998): 0.490 to 0.943
    assert bar.accuracy_low == pytest.approx(0.4902, abs=1e-4)
    assert bar.accuracy_high == pytest.approx(0.9433, abs=1e-4)
    assert calibration.wilson_interval(0, 0) is None
    low, high = calibration.wilson_interval(0, 5)  # type: ignore[misc]
    assert low == 0.0 and 0 < high < 1


# ---- latency ----------------------------------------------------------------------------------

def _sample(seconds: list[float], sla: float = 3600.0) -> latency.LatencySample:
    return latency.LatencySample(np.asarray(seconds, dtype=float), np.full(len(seconds), sla))


def test_percentiles_hand_example() -> None:
    sample = _sample([1, 2, 3, 4])
    assert latency.latency_p50_seconds(sample) == 2.5
    assert latency.latency_p90_seconds(sample) == pytest.approx(3.7)
    assert latency.latency_p99_seconds(sample) == pytest.approx(3.97)


@given(st.lists(st.floats(0, 1e7), min_size=1, max_size=50))
def test_percentiles_are_numpys_default(values: list[float]) -> None:
    sample = _sample(values)
    for q, function in ((50, latency.latency_p50_seconds), (90, latency.latency_p90_seconds),
                        (99, latency.latency_p99_seconds)):
        assert function(sample) == float(np.percentile(values, q))


def test_sla_breach_is_strictly_greater() -> None:
    sample = latency.LatencySample(np.array([900.0, 900.000001, 3600.0, 10.0]),
                                   np.array([900.0, 900.0, 3600.0, 5.0]))
    assert latency.sla_breach_rate(sample) == 0.5


def test_latency_nulls_and_merge() -> None:
    empty = latency.LatencySample()
    assert latency.latency_p50_seconds(empty) is None
    assert latency.latency_p99_seconds(empty) is None
    assert latency.sla_breach_rate(empty) is None
    merged = _sample([1.0]).merge(_sample([3.0]))
    assert latency.latency_p50_seconds(merged) == 2.0 and merged.count == 2


# ---- rates, overrides, cost -------------------------------------------------------------------

def test_rates() -> None:
    counts = rates.VerdictCounts(decisions=5, resolved=4, intervened=1, auto=2, pending=1,
                                 oldest_pending_us=1_000_000)
    assert rates.decisions(counts) == 5 and rates.pending(counts) == 1
    assert rates.intervention_rate(counts) == 0.25
    assert rates.auto_rate(counts) == 0.5
    assert rates.pending_oldest_age_seconds(counts, 3_500_000) == 2.5
    empty = rates.VerdictCounts()
    assert rates.intervention_rate(empty) is None and rates.auto_rate(empty) is None
    assert rates.pending_oldest_age_seconds(empty, 0) is None
    assert rates.decisions(empty) == 0 and rates.pending(empty) == 0
    merged = counts.merge(rates.VerdictCounts(1, 0, 0, 0, 1, 500_000))
    assert merged == rates.VerdictCounts(6, 4, 1, 2, 2, 500_000)


def test_overrides() -> None:
    sums = overrides.OverrideSums(count=4, agent_wrong=3, final_wrong=1, harmful=1,
                                  agent_error_cost=30.0, error_cost=12.5)
    assert overrides.override_count(sums) == 4
    assert overrides.override_error_delta(sums) == 0.5
    assert overrides.harmful_override_rate(sums) == 0.25
    assert overrides.cost_avoided(sums) == 17.5
    empty = overrides.OverrideSums()
    assert overrides.override_count(empty) == 0
    assert overrides.override_error_delta(empty) is None
    assert overrides.harmful_override_rate(empty) is None
    assert overrides.cost_avoided(empty) is None


def test_agent_error_cost_default() -> None:
    default = overrides.agent_error_cost_with_default
    assert default("auto", 5.0, None) == 5.0
    assert default("approve", 5.0, None) == 5.0
    assert default("approve", None, None) == 0.0
    assert default("edit", 5.0, None) == 0.0
    assert default("reject", 5.0, None) == 0.0
    assert default("pending", 5.0, None) == 0.0
    assert default("edit", 5.0, 2.0) == 2.0


def test_cost_per_decision() -> None:
    rate = {"q1": 120.0}.get
    sums = cost.CostSums(decisions=4, review_cost=3.0, review_seconds={"q1": 1800.0, None: 3600.0},
                         model_cost=1.0)
    # 3 + 1800 s x 120/h + 3600 s x 60/h (default) + 1 = 3 + 60 + 60 + 1 = 124, over 4 decisions
    assert cost.cost_per_decision(sums, lambda q: rate(q, 60.0) if q else 60.0) == 31.0
    assert cost.cost_per_decision(cost.CostSums(), lambda q: 60.0) is None
    merged = sums.merge(cost.CostSums(1, 1.0, {"q1": 1.0}, 0.5))
    assert merged.review_seconds == {"q1": 1801.0, None: 3600.0} and merged.decisions == 5
    # its two parts: the model's 1 and the reviews' 123, over 4 decisions
    assert cost.model_cost_per_decision(sums) == 0.25
    assert cost.review_cost_per_decision(sums, lambda q: rate(q, 60.0) if q else 60.0) == 30.75
    assert cost.model_cost_per_decision(cost.CostSums()) is None
    assert cost.review_cost_per_decision(cost.CostSums(), lambda q: 60.0) is None


@given(st.integers(1, 10_000), st.floats(0, 1e6), st.floats(0, 1e7), st.floats(0, 1e6), st.floats(0, 500))
def test_model_and_review_cost_add_up_to_cost_per_decision(decisions: int, explicit: float, seconds: float,
                                                          model: float, hourly: float) -> None:
    sums = cost.CostSums(decisions, explicit, {"q": seconds}, model)
    total = cost.cost_per_decision(sums, lambda q: hourly)
    parts = cost.model_cost_per_decision(sums), cost.review_cost_per_decision(sums, lambda q: hourly)
    assert total is not None and None not in parts
    assert math.isclose(parts[0] + parts[1], total, rel_tol=1e-12, abs_tol=1e-9)
