"""Generate the Grafana dashboard and the recording rules that let promtool check its PromQL.

    python config/grafana/build.py          # rewrite both files
    python config/grafana/build.py --check  # exit 1 if either is out of date (tests/test_rules.py does this)

Writes config/grafana/dashboards/hitl-control-tower.json (a panel per KPI
family covering every metric of `collectors.exporter.names.KPI_METRICS` and
the sample-size gauges of `SAMPLE_METRICS` that the alerts gate on,
the drift detectors, the counters, firing alerts and the exporter's
self-health; template variables `window` and `risk_class`) and
config/prometheus/recording.yml: every PromQL expression of the dashboard,
with the template variables replaced by sample values, as a recording rule,
so `promtool check rules` parses each of them. recording.yml is a check
artefact: loading it in Prometheus is harmless but not needed.

Metric names come from `collectors.exporter.names` and threshold lines from
the shipped config's `alerts` section, so a renamed metric or a changed
threshold shows up here after a rebuild.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config/grafana/dashboards/hitl-control-tower.json"
RECORDING = ROOT / "config/prometheus/recording.yml"
DATASOURCE = {"type": "prometheus", "uid": "hitl-prometheus"}
RISK_ALL = ".{0}"  # the risk_class "All" value: matches only the unsliced series (label empty)
# Money is a plain number in one currency (the contract names none): shown as a number, no symbol.
MONEY = "short"
#: Sample values for the template variables when an expression is checked by promtool.
SAMPLE_VALUES = {"$window": "24h", "$risk_class": RISK_ALL, "$__rate_interval": "5m"}


def _whole(metric: str) -> str:
    """A KPI gauge of the chosen window and risk class, not sliced by any other label."""
    return (f'{metric}{{window="$window", risk_class=~"$risk_class", queue="", model_version="", '
            f'action_type=""}}')


def _by(metric: str, label: str) -> str:
    """A KPI gauge of the chosen window, one series per value of `label`."""
    return f'{metric}{{window="$window", {label}!=""}}'


class _Layout:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0
        self.row_height = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"id": self._id(), "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel = {"id": self._id(), **panel, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _targets(queries: list[tuple[str, str]], instant: bool = False) -> list[dict[str, Any]]:
    out = []
    for i, (expr, legend) in enumerate(queries):
        target: dict[str, Any] = {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                                  "legendFormat": legend, "range": not instant, "instant": instant}
        if instant:
            target["format"] = "table"
        out.append(target)
    return out


def _thresholds(steps: list[tuple[float | None, str]]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def timeseries(title: str, description: str, queries: list[tuple[str, str]], unit: str = "none",
               steps: list[tuple[float | None, str]] | None = None,
               decimals: int | None = None) -> dict[str, Any]:
    """A time series panel; `steps` draw threshold lines."""
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "spanNulls": False,
                              "showPoints": "never"}
    if steps:
        custom["thresholdsStyle"] = {"mode": "line+area" if len(steps) > 2 else "line"}
    defaults: dict[str, Any] = {"unit": unit, "custom": custom,
                                "thresholds": _thresholds(steps or [(None, "green")])}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {"type": "timeseries", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets(queries), "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, description: str, expr: str, unit: str = "none",
         steps: list[tuple[float | None, str]] | None = None) -> dict[str, Any]:
    """A single-value panel showing the latest value."""
    return {"type": "stat", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets([(expr, "")]),
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": _thresholds(steps or [(None, "green")])},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}}


def build_dashboard() -> dict[str, Any]:
    """The dashboard JSON model."""
    from collectors.config import TowerConfig
    from collectors.exporter import names

    a = TowerConfig().alerts
    m = names.KPI_METRICS
    sizes = names.SAMPLE_METRICS
    ok, warn, bad = "green", "orange", "red"
    lay = _Layout()

    lay.row("Traffic and rates")
    lay.add(stat("Decisions", "Decisions proposed in the window.", _whole(m["decisions"])), 4, 5)
    lay.add(stat("Pending", "Decisions of the window still pending now.", _whole(m["pending"])), 4, 5)
    lay.add(stat("Oldest pending", "Age of the oldest pending decision of the window.",
                 _whole(m["pending_oldest_age_seconds"]), "s",
                 [(None, ok), (a.backlog_age_seconds_max, bad)]), 4, 5)
    lay.add(stat("Intervention rate", "Resolved decisions edited or rejected by humans.",
                 _whole(m["intervention_rate"]), "percentunit"), 4, 5)
    lay.add(stat("Auto-approval rate", "Resolved decisions executed with no human before them.",
                 _whole(m["auto_rate"]), "percentunit"), 4, 5)
    lay.add(stat("Cost per decision", "Review and model cost per decision of the window.",
                 _whole(m["cost_per_decision"]), MONEY), 4, 5)
    lay.add(timeseries("Intervention and auto-approval rate", "Shares of resolved decisions.",
                       [(_whole(m["intervention_rate"]), "intervention"), (_whole(m["auto_rate"]), "auto")],
                       "percentunit"), 12)
    lay.add(timeseries("Intervention rate by model version",
                       f"A spike of +{a.intervention_rate_spike:g} against the window before alerts "
                       "(HitlInterventionRateSpike).",
                       [(_by(m["intervention_rate"], "model_version"), "{{model_version}}")],
                       "percentunit"), 12)
    lay.add(timeseries("Decisions and pending", "Decisions proposed in the window and those still pending.",
                       [(_whole(m["decisions"]), "decisions"), (_whole(m["pending"]), "pending")]), 12)
    lay.add(timeseries("Decisions stored per second by route", "From the cumulative counter.",
                       [(f"sum by (route) (rate({names.DECISIONS_TOTAL}[$__rate_interval]))", "{{route}}")],
                       "ops"), 12)

    lay.row("Calibration and drift")
    lay.add(timeseries("ECE and Brier score", "Calibration over the window's decisions with an outcome.",
                       [(_whole(m["ece"]), "ece"), (_whole(m["brier"]), "brier")], decimals=3), 8)
    lay.add(timeseries("PSI of confidence", "This window against the reference window; label-free.",
                       [(_whole(m["psi"]), "psi")],
                       steps=[(None, ok), (a.psi_warn, warn), (a.psi_alert, bad)],
                       decimals=3), 8)
    lay.add(timeseries("ECE drift", "ECE of the window minus ECE of the reference window.",
                       [(_whole(m["ece_drift"]), "ece_drift")],
                       steps=[(None, ok), (a.ece_drift_warn, warn), (a.ece_drift_alert, bad)], decimals=3), 8)
    lay.add(timeseries("ECE drift per model version / action type",
                       f"The alert window ({a.window}); no series below {a.min_outcomes} outcomes "
                       "is alerted on.",
                       [(names.DRIFT_ECE, "{{model_version}} / {{action_type}}")],
                       steps=[(None, ok), (a.ece_drift_warn, warn), (a.ece_drift_alert, bad)],
                       decimals=3), 12)
    lay.add(timeseries("PSI per model version / action type",
                       f"No sample below {a.psi_min_decisions} decisions in either window.",
                       [(names.DRIFT_PSI, "{{model_version}} / {{action_type}}")],
                       steps=[(None, ok), (a.psi_warn, warn), (a.psi_alert, bad)], decimals=3), 12)
    lay.add(timeseries("ADWIN calibration change detected",
                       f"1 while ADWIN (delta {a.adwin_delta:g}) on confidence - agent_correct signalled a "
                       f"rise within the last {a.window}, or the error stays at least "
                       f"{a.calibration_persist_delta:g} above its level before the signal.",
                       [(names.DRIFT_DETECTED, "{{model_version}} / {{action_type}}")],
                       steps=[(None, ok), (1, bad)]), 6)
    lay.add(timeseries("ADWIN confidence shift detected",
                       f"1 while ADWIN (delta {a.adwin_delta:g}) on confidence confirmed a shift of the mean "
                       f"confidence by at least {a.confidence_shift_min_delta:g} within the last {a.window}; "
                       "label-free.",
                       [(names.DRIFT_SHIFT_DETECTED, "{{model_version}} / {{action_type}}")],
                       steps=[(None, ok), (1, warn)]), 6)
    lay.add(timeseries("Outcomes behind ECE drift", "The smaller outcome count of the two windows.",
                       [(names.DRIFT_OUTCOMES, "{{model_version}} / {{action_type}}")],
                       steps=[(None, warn), (a.min_outcomes, ok)]), 6)
    lay.add(timeseries("Outcomes stored per second", "By agent_correct, from the cumulative counter.",
                       [(f"sum by (agent_correct) (rate({names.OUTCOMES_TOTAL}[$__rate_interval]))",
                         "agent_correct={{agent_correct}}")], "ops"), 6)

    lay.row("Overrides")
    lay.add(timeseries("Overrides with an outcome", "Edited or rejected decisions whose outcome is known.",
                       [(_whole(m["override_count"]), "overrides")]), 8)
    lay.add(timeseries("Override impact", "Agent error rate minus final error rate (> 0: humans fixed more "
                       "than they broke) and harmful overrides (agent right, final wrong).",
                       [(_whole(m["override_error_delta"]), "error delta"),
                        (_whole(m["harmful_override_rate"]), "harmful")], "percentunit"), 8)
    lay.add(timeseries("Cost avoided by overrides", "Agent error cost minus error cost of what was done.",
                       [(_whole(m["cost_avoided"]), "cost avoided")], MONEY), 8)

    lay.row("Reviewer agreement")
    lay.add(timeseries("Agreement (Krippendorff's alpha)", f"Below {a.agreement_alpha_min:g} in a queue "
                       "alerts (HitlAgreementCollapse).",
                       [(_whole(m["agreement_alpha"]), "all queues")],
                       steps=[(None, bad), (a.agreement_alpha_min, ok)], decimals=3), 8)
    lay.add(timeseries("Agreement by queue", "Alpha per queue over the window.",
                       [(_by(m["agreement_alpha"], "queue"), "{{queue}}")],
                       steps=[(None, bad), (a.agreement_alpha_min, ok)], decimals=3), 8)
    lay.add(timeseries("Double-reviewed items by queue", "Items of the window reviewed by two or more "
                       "reviewers: the units alpha is computed from. A queue with fewer than "
                       f"{a.agreement_min_units} is not alerted on (alerts.agreement_min_units).",
                       [(_by(sizes["agreement_units"], "queue"), "{{queue}}")],
                       steps=[(None, warn), (a.agreement_min_units, ok)]), 8)

    lay.row("Latency, SLA and backlog")
    lay.add(timeseries("Review latency percentiles", "Enqueue to decision of primary reviews decided in the "
                       "window (exact percentiles).",
                       [(_whole(m["latency_p50_seconds"]), "p50"), (_whole(m["latency_p90_seconds"]), "p90"),
                        (_whole(m["latency_p99_seconds"]), "p99")], "s"), 12)
    lay.add(timeseries("SLA breach rate", "Share of primary reviews over their risk class's SLA.",
                       [(_whole(m["sla_breach_rate"]), "all queues"),
                        (_by(m["sla_breach_rate"], "queue"), "{{queue}}")], "percentunit",
                       steps=[(None, ok), (a.sla_breach_rate_max, bad)]), 12)
    lay.add(timeseries("Primary reviews by queue", "Primary reviews decided in the window: what the latency "
                       f"percentiles and the SLA breach rate are computed from. A queue with fewer than "
                       f"{a.sla_min_reviews} is not alerted on (alerts.sla_min_reviews).",
                       [(_by(sizes["primary_reviews"], "queue"), "{{queue}}")],
                       steps=[(None, warn), (a.sla_min_reviews, ok)]), 12)
    lay.add(timeseries("Oldest pending item by queue", "Longest over the exported windows "
                       "(HitlBacklogAge).",
                       [(f'max by (queue) ({m["pending_oldest_age_seconds"]}{{queue!=""}})', "{{queue}}")],
                       "s",
                       steps=[(None, ok), (a.backlog_age_seconds_max, bad)]), 12)
    lay.add(timeseries("Latency p90 from the histogram", "Primary reviews stored recently, per risk class "
                       "(bucket estimate, unlike the exact percentiles).",
                       [((f"histogram_quantile(0.9, sum by (le, risk_class) "
                         f"(rate({names.REVIEW_LATENCY_HISTOGRAM}_bucket[$__rate_interval])))"),
                         "{{risk_class}}")],
                       "s"), 12)
    lay.add(timeseries("Primary reviews per second by verdict", "From the cumulative counter.",
                       [((f'sum by (verdict) '
                         f'(rate({names.REVIEWS_TOTAL}{{kind="primary"}}[$__rate_interval]))'),
                         "{{verdict}}")], "ops"), 12)
    lay.add(timeseries("Cost per decision", "Review costs plus model costs, per decision of the window.",
                       [(_whole(m["cost_per_decision"]), "cost per decision")], MONEY), 12)

    lay.row("Alerts")
    lay.add({"type": "table", "title": "Firing HITL alerts", "description": "From Prometheus' ALERTS series "
             "(config/prometheus/alerts.yml). The built-in engine's history is in the store (alert_history).",
             "datasource": DATASOURCE,
             "targets": _targets([('ALERTS{alertname=~"Hitl.*", alertstate="firing"}', "")], instant=True),
             "fieldConfig": {"defaults": {}, "overrides": []},
             "options": {"showHeader": True},
             "transformations": [{"id": "organize", "options": {
                 "excludeByName": {"Time": True, "Value": True, "__name__": True}}}]}, 24, 7)

    lay.row("Self-health")
    lay.add(stat("Exporter scraped", "Prometheus' up for the hitl-tower job.", 'up{job="hitl-tower"}',
                 steps=[(None, bad), (1, ok)]), 4, 5)
    lay.add(stat("Store read OK", "1 if the last KPI refresh read the store.", names.UP,
                 steps=[(None, bad), (1, ok)]), 4, 5)
    lay.add(stat("Serving stale values", "1 if the last refresh failed and older values are served.",
                 names.STALE, steps=[(None, ok), (1, bad)]), 4, 5)
    lay.add(stat("Since last good refresh", "Seconds since the last successful KPI refresh.",
                 f"time() - {names.LAST_SUCCESS}", "s"), 4, 5)
    lay.add(stat("Refresh duration", "Duration of the last KPI refresh attempt.", names.COLLECT_DURATION,
                 "s"), 4, 5)
    lay.add(stat("Newest event age", "Age of the newest decision, review or outcome at the last refresh: "
                 "producers stopped writing when it grows.", names.NEWEST_EVENT_AGE, "s"), 4, 5)
    lay.add(timeseries("Refresh duration and event age", "History of the two figures above.",
                       [(names.COLLECT_DURATION, "refresh {{instance}}"),
                        (names.NEWEST_EVENT_AGE, "newest event age {{instance}}")], "s"), 24)

    variables = [
        {"name": "window", "label": "Window", "type": "query", "datasource": DATASOURCE,
         "definition": f"label_values({names.KPI_METRICS['decisions']}, window)",
         "query": {"query": f"label_values({names.KPI_METRICS['decisions']}, window)", "refId": "window"},
         "current": {"selected": True, "text": a.window, "value": a.window},
         "refresh": 1, "sort": 0, "multi": False, "includeAll": False, "options": []},
        {"name": "risk_class", "label": "Risk class", "type": "query", "datasource": DATASOURCE,
         "description": "All: the whole window (the series sliced by no label).",
         "definition": f'label_values({names.KPI_METRICS["decisions"]}{{window="$window", risk_class!=""}}, '
                       "risk_class)",
         "query": {"query": f'label_values({names.KPI_METRICS["decisions"]}'
                            '{window="$window", risk_class!=""}, risk_class)', "refId": "risk_class"},
         "current": {"selected": True, "text": "All", "value": "$__all"},
         "refresh": 2, "sort": 1, "multi": False, "includeAll": True, "allValue": RISK_ALL, "options": []},
    ]
    return {
        "uid": "hitl-control-tower",
        "title": "HITL Control Tower",
        "description": "KPIs of AI agents with humans in the loop: rates, calibration and drift, overrides, "
                       "agreement, latency and SLA, cost, alerts and the exporter's health.",
        "tags": ["hitl", "ai-agents"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
             "type": "dashboard"},
        ]},
        "links": [],
        "panels": lay.panels,
    }


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and the selectors of label_values()."""
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
        if match:
            exprs.append(match.group(1))
    return exprs


def concrete(expr: str) -> str:
    """An expression with its template variables replaced by sample values (longest names first)."""
    for name in sorted(SAMPLE_VALUES, key=len, reverse=True):
        expr = expr.replace(name, SAMPLE_VALUES[name])
    return expr


def build_recording(dashboard: dict[str, Any]) -> str:
    """recording.yml: one recording rule per distinct dashboard expression."""
    import yaml

    seen: dict[str, str] = {}
    for expr in dashboard_exprs(dashboard):
        seen.setdefault(concrete(expr), f"hitl_dashboard:expr_{len(seen) + 1:02d}")
    rules = [{"record": name, "expr": expr} for expr, name in seen.items()]
    header = (
        "# Generated by config/grafana/build.py: do not edit by hand.\n"
        "# Every PromQL expression of config/grafana/dashboards/hitl-control-tower.json, template\n"
        "# variables replaced by sample values (" + ", ".join(f"{k} -> {v}" for k, v in SAMPLE_VALUES.items())
        + "),\n# as a recording rule, so that `promtool check rules` parses each one (tests/test_rules.py).\n"
        "# A check artefact: loading it in Prometheus is harmless but not needed.\n")
    body = yaml.safe_dump({"groups": [{"name": "hitl-dashboard-expressions", "rules": rules}]},
                          sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) the dashboard and the recording rules."""
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboard and recording.yml.")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    dashboard = build_dashboard()
    files = {DASHBOARD: json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n",
             RECORDING: build_recording(dashboard)}
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python config/grafana/build.py")
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
