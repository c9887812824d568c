"""Guardrail results: how often each policy check fails or warns, and how often a failed check still
went through (approved by a human or auto-executed), with what defect rate.

A decision's policy_checks is a list of {rule, result} (pass, fail, warn) or None (not checked).
A rule is `flagged` when its failed items that went through are wrong more often than its passing
ones that went through, with p < SIGNIFICANCE, and both groups hold at least `min_samples` outcomes
(`fairness.min_samples`, see `collectors.advice.quality`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collectors.advice.stats import SIGNIFICANCE, share, two_proportion_test

WENT_THROUGH = ("auto", "approve")


def explode_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (decision, rule): `pos` (the decision's row position in the frame), `rule` and
    `result`, the worst result when a rule appears twice (fail > warn > pass)."""
    pos, rules, results = [], [], []
    for i, checks in enumerate(frame["policy_checks"].tolist()):
        if not isinstance(checks, list):
            continue
        for check in checks:
            if isinstance(check, dict) and check.get("rule") is not None:
                pos.append(i)
                rules.append(str(check["rule"]))
                results.append(str(check.get("result")))
    long = pd.DataFrame({"pos": np.asarray(pos, dtype=np.int64), "rule": rules, "result": results})
    rank = long["result"].map({"fail": 2, "warn": 1}).fillna(0)
    long = long.assign(rank=rank).sort_values(["pos", "rule", "rank"])
    return long.drop_duplicates(["pos", "rule"], keep="last").drop(columns="rank").reset_index(drop=True)


def failed_any(frame: pd.DataFrame, checks: pd.DataFrame | None = None) -> np.ndarray:
    """Per decision: True when at least one of its policy checks failed."""
    checks = explode_checks(frame) if checks is None else checks
    out = np.zeros(len(frame), dtype=bool)
    out[checks.loc[checks["result"] == "fail", "pos"].to_numpy()] = True
    return out


def flag_wrongly_overridden(failed: dict[str, Any], passed: dict[str, Any], p_value: float | None,
                            min_samples: int) -> bool:
    """Failures that went through are wrong significantly more often than passes that went through,
    on at least `min_samples` outcomes each."""
    return bool(p_value is not None and p_value < SIGNIFICANCE and failed["value"] > passed["value"]
                and failed["rows"] >= min_samples and passed["rows"] >= min_samples)


def guardrail_table(frame: pd.DataFrame, weights: np.ndarray, min_samples: int) -> dict[str, Any]:
    """Per rule: checks, fail and warn rates (Wilson); among resolved decisions that failed it, the
    share that went through anyway; the defect rate (weighted evaluation sample) of failed items
    that went through vs passing items that went through, with a two-proportion p-value; and the
    flag of `flag_wrongly_overridden`."""
    from collectors.advice.quality import weighted_share

    checks = explode_checks(frame)
    verdict = frame["final_verdict"].to_numpy(dtype=object)
    through = np.isin(verdict, WENT_THROUGH)
    resolved = verdict != "pending"
    wrong = frame["final_correct"].to_numpy(dtype=float) == 0.0
    rows = []
    for rule, part in checks.groupby("rule", sort=True):
        n = len(part)
        failed = part.loc[part["result"] == "fail", "pos"].to_numpy()
        passed = part.loc[part["result"] == "pass", "pos"].to_numpy()
        failed_resolved = failed[resolved[failed]]
        ft, pt = failed[through[failed]], passed[through[passed]]
        defect_failed = weighted_share(wrong[ft], weights[ft])
        defect_passed = weighted_share(wrong[pt], weights[pt])
        p_value = _weighted_test(defect_failed, defect_passed)
        rows.append({
            "rule": str(rule), "checks": n,
            "fail": share(int((part["result"] == "fail").sum()), n),
            "warn": share(int((part["result"] == "warn").sum()), n),
            "failed_but_went_through": share(int(through[failed_resolved].sum()), len(failed_resolved)),
            "failed_but_auto": int((verdict[failed] == "auto").sum()),
            "failed_but_approved": int((verdict[failed] == "approve").sum()),
            "defect_failed_through": defect_failed,
            "defect_passed_through": defect_passed,
            "p_value": p_value,
            "flagged": flag_wrongly_overridden(defect_failed, defect_passed, p_value, min_samples),
        })
    any_fail = failed_any(frame, checks)
    fr = any_fail & resolved
    return {"rows": rows,
            "any_failed": share(int(any_fail.sum()), int(frame["policy_checks"].map(
                lambda c: isinstance(c, list) and len(c) > 0).sum())),
            "any_failed_went_through": share(int((fr & through).sum()), int(fr.sum()))}


def _weighted_test(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a["value"] is None or b["value"] is None:
        return None
    return two_proportion_test(a["value"] * a["n"], a["n"], b["value"] * b["n"], b["n"])
