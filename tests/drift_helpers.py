"""Hand-made drift data for the drift, alert and Alertmanager tests: two 24 h windows of one slice."""

from __future__ import annotations

from typing import Any

import numpy as np
from engine_helpers import HOUR, decision, outcome

DAY = 24 * HOUR
MODEL, ACTION = "kyc-v2.4", "kyc_approve"


def window_events(start_us: int, n: int, rng: np.random.Generator, *, prefix: str, drop: float = 0.0,
                  beta: tuple[float, float] = (8.0, 2.0), model: str = MODEL, action: str = ACTION,
                  span_us: int = DAY - 5 * 60_000_000) -> list[dict[str, Any]]:
    """`n` auto decisions of one slice spread over [start, start + span), each with an outcome a
    minute later: confidence ~ Beta(beta), agent_correct ~ Bernoulli(confidence - drop)."""
    times = np.sort(rng.uniform(0, span_us, n)).astype(np.int64) + start_us
    conf = rng.beta(*beta, n)
    correct = rng.random(n) < np.clip(conf - drop, 0.0, 1.0)
    events: list[dict[str, Any]] = []
    for i, (t, c, ok) in enumerate(zip(times.tolist(), conf.tolist(), correct.tolist())):
        did = f"{prefix}-{i:05d}"
        events.append(decision(did, t, model_version=model, action_type=action, confidence=round(c, 6),
                               route="auto", risk_class="medium", queue="kyc"))
        events.append(outcome(did, t + 60_000_000, agent_correct=bool(ok), final_correct=bool(ok)))
    return events


def planted_drift(now_us: int, n: int = 1100, *, seed: int = 1, drop: float = 0.2,
                  beta_after: tuple[float, float] = (8.0, 2.0), **slice_: Any) -> list[dict[str, Any]]:
    """A calibrated reference day [now - 48h, now - 24h) and a current day [now - 24h, now) whose
    accuracy is `drop` lower (at the same confidence unless `beta_after` says otherwise)."""
    rng = np.random.default_rng(seed)
    tag = f"{slice_.get('model', MODEL)}-{slice_.get('action', ACTION)}-{seed}"
    return (window_events(now_us - 2 * DAY, n, rng, prefix=f"ref-{tag}", **slice_)
            + window_events(now_us - DAY, n, rng, prefix=f"cur-{tag}", drop=drop, beta=beta_after, **slice_))
