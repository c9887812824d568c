"""The built-in alert engine behind `hitl-tower alerts`.

- `rules`: the rule table (thresholds from config, hysteresis, min samples, `for`);
- `observe`: per-slice values read from the engine's reports and `collectors.drift`;
- `engine`: one evaluation, moving each alert pending -> firing -> resolved, recorded in the store;
- `notify`: Alertmanager v2 API and plain-webhook delivery;
- `history`: the alert history table, and `list_alerts` for the dashboard.
"""

from __future__ import annotations

from collectors.alerts.engine import AlertStatus, Evaluation, evaluate
from collectors.alerts.history import AlertEpisode, list_alerts
from collectors.alerts.notify import DeliveryError, Target, deliver
from collectors.alerts.rules import Observation, Rule, build_rules, fingerprint

__all__ = [
    "AlertEpisode",
    "AlertStatus",
    "DeliveryError",
    "Evaluation",
    "Observation",
    "Rule",
    "Target",
    "build_rules",
    "deliver",
    "evaluate",
    "fingerprint",
    "list_alerts",
]
