"""Model version comparison: per (agent, action type), each model version's accuracy, intervention
rate and calibration, canary against stable.

Within a pair, the version with the most decisions in the window is "stable"; another version
whose median proposal time is later than the stable one's is a "canary", an earlier one is "previous"
(a rollout that completed inside the window leaves the old version with less traffic, and it is not
a canary). Each other version is
tested against the stable one with a two-proportion z-test on accuracy
(weighted evaluation sample, effective counts) and on intervention rate.

A version is `flagged` (less accurate than stable) when its accuracy is lower with p < SIGNIFICANCE and
both it and the stable version have at least `min_samples` outcomes (`rows`; the caller passes
`fairness.min_samples`, see `collectors.advice.quality`): a canary with one wrong outcome is not news.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collectors.advice.stats import SIGNIFICANCE, share, two_proportion_test
from collectors.kpis import calibration


def version_ece(confidence: np.ndarray, agent_correct: np.ndarray) -> float | None:
    """The contract's ece over decisions with an outcome (unweighted, so it equals the report's)."""
    known = ~np.isnan(agent_correct)
    return calibration.ece(calibration.bins_of(confidence[known], agent_correct[known] == 1.0))


def _version_row(part: pd.DataFrame, weights: np.ndarray) -> dict[str, Any]:
    from collectors.advice.quality import weighted_share

    verdict = part["final_verdict"]
    resolved = int((verdict != "pending").sum())
    return {
        "decisions": len(part),
        "accuracy": weighted_share(part["agent_correct"].to_numpy(dtype=float) == 1.0, weights),
        "intervention_rate": share(int(verdict.isin(("edit", "reject")).sum()), resolved),
        "ece": version_ece(part["confidence"].to_numpy(dtype=float), part["agent_correct"].to_numpy(dtype=float)),
        "outcomes": int(part["has_outcome"].sum()),
        "mean_confidence": float(part["confidence"].mean()) if len(part) else None,
    }


def _test(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a["value"] is None or b["value"] is None:
        return None
    return two_proportion_test(a["value"] * a["n"], a["n"], b["value"] * b["n"], b["n"])


def flag_less_accurate(row: dict[str, Any], stable: dict[str, Any], min_samples: int) -> bool:
    """A version is flagged when it is significantly less accurate than stable, on enough outcomes on
    both sides (a z-test on a handful of outcomes flags noise)."""
    p, delta = row["accuracy_p_value"], row["accuracy_delta"]
    return bool(p is not None and p < SIGNIFICANCE and delta is not None and delta < 0
                and row["accuracy"]["rows"] >= min_samples and stable["accuracy"]["rows"] >= min_samples)


def compare_versions(frame: pd.DataFrame, weights: np.ndarray, min_samples: int) -> list[dict[str, Any]]:
    """One row per (agent_id, action_type, model_version), stable first within each pair; the other
    rows carry the accuracy difference to the stable version, the p-values of both tests and whether
    the version is flagged as less accurate (`flag_less_accurate`)."""
    out: list[dict[str, Any]] = []
    positions = np.arange(len(frame))
    for (agent, action), group in frame.groupby(["agent_id", "action_type"], sort=True):
        rows = []
        for version, part in group.groupby("model_version", sort=True):
            idx = positions[frame.index.get_indexer(part.index)]
            rows.append({"agent_id": str(agent), "action_type": str(action), "model_version": str(version),
                         "median_proposed_at": int(part["proposed_at"].median()), **_version_row(part, weights[idx])})
        rows.sort(key=lambda r: (-r["decisions"], r["model_version"]))
        stable = rows[0]
        for i, row in enumerate(rows):
            row["role"] = ("stable" if i == 0 else
                           "canary" if row["median_proposed_at"] >= stable["median_proposed_at"] else "previous")
            row["versions_in_pair"] = len(rows)
            row["enough_samples"] = row["accuracy"]["rows"] >= min_samples
            if i == 0:
                row.update(accuracy_delta=None, accuracy_p_value=None, intervention_p_value=None, flagged=False)
                continue
            a, s = row["accuracy"]["value"], stable["accuracy"]["value"]
            row["accuracy_delta"] = a - s if a is not None and s is not None else None
            row["accuracy_p_value"] = _test(row["accuracy"], stable["accuracy"])
            row["intervention_p_value"] = _test(row["intervention_rate"], stable["intervention_rate"])
            row["flagged"] = flag_less_accurate(row, stable, min_samples)
        out.extend(rows)
    return out
