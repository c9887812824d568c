"""Staged autonomy: how far each (action type, model version) stands on the ladder shadow -> assisted -> auto,
and what it still lacks to climb one rung.

A rung is left when the evidence of the model *as it is now* clears the stage's exit criteria
(`config.autonomy`): over the evaluation period (the last `stable_days` UTC calendar days of the window)
at least `min_samples` decisions with evidence, a Wilson lower bound of agreement and of accuracy at
least the minimum, an ECE at most the maximum, and no day of the period clearly below a bar (its Wilson
band wholly under it), with at least half of the days holding enough samples to be judged. The window's
own figures and its day-by-day series are reported as the history behind the verdict.

Evidence: agreement counts decisions with a human final verdict (approve / edit / reject; approve means
the human did what the agent proposed or recommended; auto verdicts say nothing and are left out);
accuracy and ECE count decisions with an outcome, except auto-route decisions that were not drawn for
audit (their outcomes may surface selectively, e.g. by complaints; the audit sample is the random one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collectors.advice.frame import decision_frame
from collectors.advice.stats import share
from collectors.kpis.calibration import bins_of, ece
from collectors.validate import format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import Autonomy, StageCriteria, TowerConfig

STAGES = ("shadow", "assisted", "auto")
NEXT_STAGE = {"shadow": "assisted", "assisted": "auto", "auto": None}
EXIT_CRITERIA = {"shadow": "shadow_exit", "assisted": "assisted_exit", "auto": "assisted_exit"}
AUTO_STAGE_SHARE = 0.9  # auto on (almost) everything, humans only audit: the auto rung
HUMAN_VERDICTS = ("approve", "edit", "reject")
DAY_US = 86_400 * 1_000_000
KEYS = ("action_type", "model_version", "agent_id")


def autonomy_ladder(engine: Engine, config: TowerConfig, start_us: int, end_us: int,
                    filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ladder of every (action type, model version, agent) with decisions in [start, end)."""
    frame = decision_frame(engine, config, start_us, end_us, filters)
    return ladder_from_frame(frame, config.autonomy, start_us, end_us)


def ladder_from_frame(frame: pd.DataFrame, autonomy: Autonomy, start_us: int, end_us: int) -> dict[str, Any]:
    """The ladder over a decision frame (columns of `decision_frame`); pure, for tests without a store."""
    rows = []
    if len(frame):
        work = _evidence(frame)
        for key, group in work.groupby(list(KEYS), sort=True, dropna=False):
            rows.append(_row(dict(zip(KEYS, key)), group, autonomy, start_us, end_us))
    rows.sort(key=lambda r: (str(r["action_type"]), str(r["model_version"]), str(r["agent_id"])))
    return {
        "start": format_timestamp(start_us),
        "end": format_timestamp(end_us),
        "stages": list(STAGES),
        "criteria": autonomy.model_dump(),
        "rows": rows,
    }


def current_stage(auto: int, review: int, shadow: int) -> str:
    """The rung a route mix stands on: shadow when most decisions are shadow; else auto when at least 90%
    are auto (humans only audit); else assisted (review with auto-approve above a threshold, or review only)."""
    total = auto + review + shadow
    if total and shadow / total > 0.5:
        return "shadow"
    if total and auto / total >= AUTO_STAGE_SHARE:
        return "auto"
    return "assisted"


def ece_of(confidence: np.ndarray, correct: np.ndarray) -> float | None:
    """The contract's ECE (10 equal-width bins) of these decisions, via the KPI's own function."""
    return ece(bins_of(confidence, correct))


def _evidence(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns every figure counts: human verdict, agreement, outcome evidence, the UTC day."""
    verdict = frame["final_verdict"]
    human = verdict.isin(HUMAN_VERDICTS).to_numpy()
    counted = frame["has_outcome"].astype(bool).to_numpy() & (
        (frame["route"] != "auto").to_numpy() | frame["audited"].astype(bool).to_numpy())
    return pd.DataFrame({
        **{k: frame[k].astype(object).where(frame[k].notna(), None) for k in KEYS},
        "route": frame["route"].to_numpy(),
        "day": (frame["proposed_at"].astype("int64") // DAY_US).to_numpy(),
        "proposed_at": frame["proposed_at"].astype("int64").to_numpy(),
        "human": human,
        "agree": human & (verdict == "approve").to_numpy(),
        "counted": counted,
        "correct": counted & (frame["agent_correct"].to_numpy() == 1.0),
        "confidence": frame["confidence"].astype(float).to_numpy(),
    })


def _figures(group: pd.DataFrame, level: float) -> dict[str, Any]:
    counted = group[group["counted"]]
    return {
        "samples": int((group["human"] | group["counted"]).sum()),
        "agreement": share(int(group["agree"].sum()), int(group["human"].sum()), level),
        "accuracy": share(int(counted["correct"].sum()), len(counted), level),
        "ece": ece_of(counted["confidence"].to_numpy(), counted["correct"].to_numpy()) if len(counted) else None,
        "ece_n": len(counted),
    }


def _row(key: dict[str, Any], group: pd.DataFrame, autonomy: Autonomy, start_us: int,
         end_us: int) -> dict[str, Any]:
    routes = group["route"].value_counts()
    counts = {r: int(routes.get(r, 0)) for r in ("auto", "review", "shadow")}
    stage = current_stage(counts["auto"], counts["review"], counts["shadow"])
    criteria_name = EXIT_CRITERIA[stage]
    crit: StageCriteria = getattr(autonomy, criteria_name)
    level, min_daily = autonomy.interval_level, autonomy.min_daily_samples
    first_day, last_day = start_us // DAY_US, (end_us - 1) // DAY_US
    eval_first = max(first_day, last_day - crit.stable_days + 1)
    evaluation = group[group["day"] >= eval_first]
    figures = _figures(evaluation, level)
    daily = _daily(group, first_day, last_day, crit, min_daily, level)
    stable = _stability(daily[eval_first - first_day:], crit, min_daily)
    checks = _checks(figures, stable, crit)
    ready = all(c["ok"] for c in checks)
    missing = [line for c in checks if not c["ok"] for line in c.get("problems", [c["detail"]])]
    if evaluation.empty:  # a retired model version: nothing to judge, and nothing worth a warning
        verdict, missing = "inactive", [f"no decisions in the last {crit.stable_days} days"]
    elif stage == "auto":
        verdict = "holds" if ready else "demotion warning"
    else:
        verdict = "ready" if ready else "not ready"
    return {
        **key,
        "current_stage": stage,
        "next_stage": NEXT_STAGE[stage],
        "criteria": criteria_name,
        "decisions": len(group),
        "routes": counts,
        "evaluation": {"start": format_timestamp(max(start_us, eval_first * DAY_US)), "end": format_timestamp(end_us),
                       "days": int(last_day - eval_first + 1)},
        **figures,
        "window": _figures(group, level),
        "streak_days": _streak(daily),
        "stable": stable,
        "daily": daily,
        "checks": checks,
        "ready": ready,
        "verdict": verdict,
        "missing": missing,
    }


def _daily(group: pd.DataFrame, first_day: int, last_day: int, crit: StageCriteria, min_daily: int,
           level: float) -> list[dict[str, Any]]:
    """One entry per UTC day of the window: its shares and whether it meets the bars ("met"), misses one
    ("failed") or is too thin on both to say ("thin")."""
    sums = group.groupby("day")[["human", "agree", "counted", "correct"]].sum()
    sizes = group.groupby("day").size()
    out = []
    for day in range(int(first_day), int(last_day) + 1):
        human, agree, counted, correct = (int(sums.at[day, c]) if day in sums.index else 0
                                          for c in ("human", "agree", "counted", "correct"))
        agreement, accuracy = share(agree, human, level), share(correct, counted, level)
        # A day misses a bar only when its whole Wilson band lies below it: with tens of samples a day,
        # judging the point estimate would fail a model that is truly above the bar every few days.
        judged = [(agreement["high"] >= crit.min_agreement) if human >= min_daily else None,
                  (accuracy["high"] >= crit.min_accuracy) if counted >= min_daily else None]
        shown = [j for j in judged if j is not None]
        status = "thin" if not shown else ("met" if all(shown) else "failed")
        out.append({
            "day": pd.Timestamp(day * DAY_US, unit="us").strftime("%Y-%m-%d"),
            "n": int(sizes.get(day, 0)),
            "agreement": agreement,
            "accuracy": accuracy,
            "agreement_met": judged[0],
            "accuracy_met": judged[1],
            "status": status,
        })
    return out


def _stability(days: list[dict[str, Any]], crit: StageCriteria, min_daily: int) -> dict[str, Any]:
    """No day of the last `stable_days` misses a bar, and at least half of them were judged (a thin day,
    with fewer than `min_daily` samples of either figure, neither proves nor breaks stability)."""
    need = math.ceil(crit.stable_days / 2)
    judged = [d for d in days if d["status"] != "thin"]
    failed = [d["day"] for d in days if d["status"] == "failed"]
    problems = [f"stable: the window holds only {len(days)} of the {crit.stable_days} days (widen it)"
                ] if len(days) < crit.stable_days else []
    if failed:
        problems.append(f"stable: bars missed on {len(failed)} of the last {len(days)} days ({_days(failed)})")
    if len(judged) < need:
        problems.append(f"stable: only {len(judged)} of the last {len(days)} days have >= {min_daily} human "
                        f"verdicts or outcomes (need {need})")
    return {
        "days": len(days),
        "days_required": crit.stable_days,
        "days_met": sum(d["status"] == "met" for d in days),
        "days_failed": len(failed),
        "days_thin": sum(d["status"] == "thin" for d in days),
        "ok": not problems,
        "problems": problems,
    }


def _days(days: list[str], shown: int = 3) -> str:
    """The latest few days as MM-DD, with an ellipsis for the earlier ones."""
    text = ", ".join(d[5:] for d in days[-shown:])
    return text if len(days) <= shown else f"..., {text}"


def _streak(daily: list[dict[str, Any]]) -> int:
    """Days meeting the bars counted back from the window's last day, up to the first failed day
    (thin days are skipped)."""
    streak = 0
    for day in reversed(daily):
        if day["status"] == "failed":
            break
        streak += day["status"] == "met"
    return streak


def _checks(figures: dict[str, Any], stable: dict[str, Any], crit: StageCriteria) -> list[dict[str, Any]]:
    """Each criterion with whether it holds and a line saying why (the Wilson lower bound is judged)."""
    samples = figures["samples"]
    checks = [{"name": "samples", "ok": samples >= crit.min_samples,
               "detail": f"samples {samples} < {crit.min_samples}" if samples < crit.min_samples
               else f"samples {samples} >= {crit.min_samples}"}]
    for name, bar, noun in (("agreement", crit.min_agreement, "human verdicts"),
                            ("accuracy", crit.min_accuracy, "outcomes")):
        s = figures[name]
        if not s["n"]:
            checks.append({"name": name, "ok": False, "detail": f"{name}: no {noun}"})
            continue
        ok = s["low"] >= bar
        relation = ">=" if ok else "<"
        checks.append({"name": name, "ok": ok, "detail": f"{name} {s['value']:.3f}, lower bound {s['low']:.3f} "
                       f"{relation} {bar:.2f} (n={s['n']})"})
    value = figures["ece"]
    if value is None:
        checks.append({"name": "ece", "ok": False, "detail": "ECE: no outcomes"})
    else:
        ok = value <= crit.max_ece
        checks.append({"name": "ece", "ok": ok, "detail": f"ECE {value:.3f} {'<=' if ok else '>'} "
                       f"{crit.max_ece:.2f} (n={figures['ece_n']})"})
    checks.append({"name": "stable", "ok": stable["ok"], "problems": stable["problems"],
                   "detail": "; ".join(stable["problems"]) if stable["problems"]
                   else f"stable: {stable['days_met']} of the last {stable['days']} days met the bars"})
    return checks
