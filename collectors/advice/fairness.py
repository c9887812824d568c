"""Fairness: every rate per segment value with a Wilson interval, and a gap flagged only when the interval
excludes the overall rate and the sample is large enough; the same for human reviewers.

A rate is a share count / n of decisions of the window (`RATES` names the denominator of each). Per
segment key (config `fairness.segment_keys`) the `max_values` values with the most decisions keep
their own row; the others are summed into one `OTHER` row whose rates are recomputed over the merged
counts. A value's gap is flagged when its Wilson interval at `interval_level` excludes the overall
rate (all decisions of the window with the same filters) and its n reaches `min_samples`. Because a
report makes many comparisons, each row also says whether the flag survives a Bonferroni-adjusted
level. The reviewer rates separate "humans fix more because the agent is worse there"
(`reviewer_intervention_rate`) from "humans treat the group differently"
(`unnecessary_intervention_rate`: interventions on items where the agent was right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collectors.advice.frame import SEGMENT_PREFIX, decision_frame, segment_columns
from collectors.advice.stats import share, wilson_arrays
from collectors.kpis.rates import INTERVENTION_VERDICTS

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import Fairness, TowerConfig

#: Group of the values of a key beyond its `max_values` most frequent ones.
OTHER = "__other__"
_NULL = "\x00null"  # stands for a decision without the key while grouping (pandas drops None keys)
HUMAN_VERDICTS = ("approve", "edit", "reject")


@dataclass(frozen=True)
class RateSpec:
    """One fairness rate: its id, its denominator (population) and what a higher value means."""

    id: str
    population: str
    help: str
    good: str  # "up", "down" or "neutral"


RATES: tuple[RateSpec, ...] = (
    RateSpec("intervention_rate", "resolved",
             "resolved decisions with final verdict edit or reject / resolved decisions (the KPI)", "neutral"),
    RateSpec("auto_rate", "resolved", "resolved decisions with final verdict auto / resolved decisions (the KPI)",
             "neutral"),
    RateSpec("agent_accuracy", "outcomes", "decisions with agent_correct / decisions with an outcome", "up"),
    RateSpec("defect_rate", "outcomes", "decisions with final_correct false / decisions with an outcome", "down"),
    RateSpec("harmful_override_rate", "overrides",
             "overrides (edit/reject with an outcome) where the agent was right and the final action wrong "
             "/ overrides (the KPI)", "down"),
    RateSpec("reviewer_intervention_rate", "reviewed",
             "decisions a human resolved (final verdict approve, edit or reject) with edit or reject "
             "/ decisions a human resolved", "neutral"),
    RateSpec("unnecessary_intervention_rate", "reviewed_agent_right",
             "human-resolved decisions with an outcome and agent_correct, edited or rejected / those decisions",
             "down"),
    RateSpec("missed_error_rate", "reviewed_agent_wrong",
             "human-resolved decisions with an outcome and not agent_correct, approved / those decisions", "down"),
)
RATE_IDS: tuple[str, ...] = tuple(r.id for r in RATES)
REVIEWER_RATES: tuple[str, ...] = ("reviewer_intervention_rate", "unnecessary_intervention_rate",
                                   "missed_error_rate")


def indicators(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """rate id -> (in the denominator, in the numerator) per decision of a frame with final_verdict,
    has_outcome, agent_correct and final_correct (the `decision_frame` columns)."""
    verdict = frame["final_verdict"].to_numpy(dtype=object)
    resolved = verdict != "pending"
    intervened = np.isin(verdict, INTERVENTION_VERDICTS)
    human = np.isin(verdict, HUMAN_VERDICTS)
    outcome = frame["has_outcome"].to_numpy(dtype=bool)
    agent = frame["agent_correct"].to_numpy(dtype=float)
    right, wrong = outcome & (agent == 1.0), outcome & (agent == 0.0)
    final_wrong = outcome & (frame["final_correct"].to_numpy(dtype=float) == 0.0)
    overrides = outcome & intervened
    return {
        "intervention_rate": (resolved, intervened),
        "auto_rate": (resolved, verdict == "auto"),
        "agent_accuracy": (outcome, right),
        "defect_rate": (outcome, final_wrong),
        "harmful_override_rate": (overrides, overrides & right & final_wrong),
        "reviewer_intervention_rate": (human, intervened),
        "unnecessary_intervention_rate": (human & right, intervened & right),
        "missed_error_rate": (human & wrong, (verdict == "approve") & wrong),
    }


def segment_counts(frame: pd.DataFrame, column: str, max_values: int,
                   flags: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
    """Per value of `column` (None for decisions without it): decisions and, per rate, count and n;
    beyond the `max_values` values with the most decisions, one OTHER row of the summed counts.

    Columns: group, decisions, count:RATE, n:RATE. Rows: kept values in plain string order, None
    last, then OTHER. `flags` are the frame's `indicators`, when already computed.
    """
    flags = indicators(frame) if flags is None else flags
    data: dict[str, Any] = {"decisions": np.ones(len(frame), dtype=np.int64)}
    for rate in RATE_IDS:
        den, num = flags[rate]
        data[f"count:{rate}"] = (den & num).astype(np.int64)
        data[f"n:{rate}"] = den.astype(np.int64)
    values = (frame[column] if column in frame.columns else pd.Series([None] * len(frame))).astype(object)
    data["group"] = values.where(values.notna(), _NULL).to_numpy()
    grouped = pd.DataFrame(data).groupby("group", sort=False).sum()
    ranked = sorted(grouped.index, key=lambda g: (-int(grouped.at[g, "decisions"]), g == _NULL, g))
    kept = sorted(ranked[:max_values], key=lambda g: (g == _NULL, g))
    table = grouped.loc[kept]
    if len(ranked) > max_values:
        other = grouped.loc[ranked[max_values:]].sum().to_frame(OTHER).T
        table = pd.concat([table, other])
    table = table.reset_index(names="group")
    table["group"] = [None if g == _NULL else g for g in table["group"]]
    # The summed row, told apart from a real value spelt like OTHER (always the last row).
    table["folded"] = np.arange(len(table)) >= len(kept)
    return table


def overall_counts(flags: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[int, int]]:
    """rate id -> (count, n) over a frame's `indicators`."""
    return {rate: (int((den & num).sum()), int(den.sum())) for rate, (den, num) in flags.items()}


def judge(frame: pd.DataFrame, columns: Sequence[str], settings: Fairness) -> dict[str, Any]:
    """The fairness figures of a decision frame for the segment `columns`: overall rates, one row per
    (column, value, rate) with its interval and gap flags, the number of comparisons. JSON-ready."""
    level = settings.interval_level
    flags = indicators(frame)
    overall = {rate: share(*counts, level) for rate, counts in overall_counts(flags).items()}
    keys, groups, folded, rates, decisions, counts, ns = _stack(frame, columns, settings.max_values, flags)
    base = np.array([_nan(overall[r]["value"]) for r in rates], dtype=float)
    enough = ns >= settings.min_samples
    judged = enough & ~np.isnan(base)
    comparisons = int(judged.sum())
    # Bonferroni: the family-wise error at 1 - level.
    adjusted = level if comparisons <= 1 else 1 - (1 - level) / comparisons
    low, high = wilson_arrays(counts, ns, level)
    low_adj, high_adj = wilson_arrays(counts, ns, adjusted)
    flagged = judged & ((base < low) | (base > high))
    flagged_adj = judged & ((base < low_adj) | (base > high_adj))
    population = {r.id: r.population for r in RATES}
    segments = []
    for i, (key, group, is_folded, rate) in enumerate(zip(keys, groups, folded, rates)):
        n, count = int(ns[i]), int(counts[i])
        value = count / n if n else None
        gap = None if value is None or np.isnan(base[i]) else value - float(base[i])
        segments.append({
            "key": key, "group": group if isinstance(group, str) else None, "folded": is_folded, "rate": rate,
            "population": population[rate], "decisions": int(decisions[i]), "value": value, "count": count,
            "n": n, "low": _float(low[i]), "high": _float(high[i]), "overall": _float(base[i]), "gap": gap,
            "direction": None if not gap else ("above" if gap > 0 else "below"),
            "enough_samples": bool(enough[i]), "flagged": bool(flagged[i]),
            "flagged_adjusted": bool(flagged_adj[i])})
    return {"level": level, "adjusted_level": adjusted, "min_samples": settings.min_samples,
            "max_values": settings.max_values, "comparisons": comparisons, "overall": overall,
            "segments": segments}


def _stack(frame: pd.DataFrame, columns: Sequence[str], max_values: int,
           flags: Mapping[str, tuple[np.ndarray, np.ndarray]]
           ) -> tuple[list[str], list[str | None], list[bool], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """One entry per (column, group, rate): keys, groups, folded (the OTHER row), rates, decisions,
    counts, ns (numpy, not a DataFrame per rate, which costs more than the counting on an exporter
    refresh)."""
    keys: list[str] = []
    groups: list[str | None] = []
    folded: list[bool] = []
    rates: list[str] = []
    arrays: dict[str, list[np.ndarray]] = {"decisions": [], "count": [], "n": []}
    for column in columns:
        table = segment_counts(frame, column, max_values, flags)
        names = table["group"].tolist()
        summed = table["folded"].tolist()
        for rate in RATE_IDS:
            keys += [column] * len(names)
            groups += names
            folded += summed
            rates += [rate] * len(names)
            arrays["decisions"].append(table["decisions"].to_numpy(dtype=np.int64))
            arrays["count"].append(table[f"count:{rate}"].to_numpy(dtype=np.int64))
            arrays["n"].append(table[f"n:{rate}"].to_numpy(dtype=np.int64))
    decisions, counts, ns = (np.concatenate(arrays[c]) if keys else np.zeros(0, dtype=np.int64)
                             for c in ("decisions", "count", "n"))
    return keys, groups, folded, rates, decisions, counts, ns


def segment_key_columns(keys: Sequence[str]) -> list[str]:
    """Frame columns of segment keys given as "region" or "segment.region", in order, without repeats."""
    columns = [k if k.startswith(SEGMENT_PREFIX) else SEGMENT_PREFIX + k for k in keys]
    return list(dict.fromkeys(columns))


def fairness_report(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                    filters: Mapping[str, str] | None = None, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Fairness figures of the decisions proposed in [start, end) (with `filters`), per value of the
    configured segment keys (or of `keys`, e.g. ["segment.region"]). JSON-ready.

    Keys: start_us, end_us, filters, decisions (in the window), keys (judged), available_keys
    (configured and present in the window), rates ({id: {population, help, good}}), level,
    adjusted_level, min_samples, max_values, comparisons, overall ({rate: {value, count, n, low,
    high}}), segments (one row per key, group, rate) and flagged (the flagged rows, largest absolute
    gap first).
    """
    frame = decision_frame(engine, config, start_us, end_us, filters)
    settings = config.fairness
    columns = segment_key_columns(settings.segment_keys if keys is None else keys)
    result = judge(frame, columns, settings)
    flagged = sorted((s for s in result["segments"] if s["flagged"]), key=lambda s: -abs(s["gap"]))
    return {"start_us": start_us, "end_us": end_us, "filters": dict(filters or {}), "decisions": len(frame),
            "keys": columns,
            "available_keys": list(dict.fromkeys([*segment_key_columns(settings.segment_keys),
                                                  *segment_columns(frame)])),
            "rates": {r.id: {"population": r.population, "help": r.help, "good": r.good} for r in RATES},
            **result, "flagged": flagged}


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
