"""Prometheus rules, Alertmanager config and the Grafana dashboard: promtool and amtool accept them,
thresholds equal config and the built-in engine, every KPI is on the dashboard and every dashboard
expression is checked by promtool."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.alerts import Observation, build_rules
from collectors.config import duration_seconds, load_config
from collectors.exporter import names

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "config/prometheus"
ALERTS = PROM / "alerts.yml"
RECORDING = PROM / "recording.yml"
DASHBOARD = ROOT / "config/grafana/dashboards/hitl-control-tower.json"
EXPORTER_ALERTS = {"HitlExporterDown", "HitlExporterAbsent", "HitlExporterStale", "HitlAuditFeedSilent"}
sys.path.insert(0, str(ROOT / "config/grafana"))
import build as grafana_build


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _config():  # type: ignore[no-untyped-def]
    return load_config(ROOT / "config/tower.yaml")


# ---- promtool ----------------------------------------------------------------------------------


def test_promtool_checks_the_alert_and_recording_rules() -> None:
    result = _run(_tool("promtool"), "check", "rules", str(ALERTS), str(RECORDING))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    result = _run(_tool("promtool"), "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (PROM / "tests/alerts_test.yml").read_text()))
    assert {r["alert"] for r in _alert_rules()} <= tested


def _promtool_expected(alertname: str) -> list[dict[str, str]]:
    tests = yaml.safe_load((PROM / "tests/alerts_test.yml").read_text())["tests"]
    return [alert["exp_annotations"] for test in tests for case in test.get("alert_rule_test", [])
            if case["alertname"] == alertname for alert in case["exp_alerts"]]


def test_backlog_summary_reads_the_same_from_prometheus_and_the_built_in_engine() -> None:
    """The promtool-checked summaries of HitlBacklogAge (ages 20000 s and 12000 s) are the built-in rule's."""
    rule = next(r for r in build_rules(_config()) if r.alertname == "HitlBacklogAge")
    expected = {notes["summary"] for notes in _promtool_expected("HitlBacklogAge")}
    ours = {rule.annotations(Observation({"queue": "q"}, age, 1, {"pending": 1}))["summary"] for age in (20000, 12000)}
    assert ours == expected
    assert all(" s " not in notes["description"] for notes in _promtool_expected("HitlBacklogAge"))


@pytest.mark.parametrize(("alertname", "values", "bound"), [
    ("HitlAgreementCollapse", (0.400, 0.550), "resolves above 0.6"),
    ("HitlSlaBreachRate", (0.20, 0.09), "resolves below 8%"),
])
def test_hysteresis_summaries_name_the_resolve_bound_in_both_paths(alertname: str, values: tuple[float, ...],
                                                                   bound: str) -> None:
    """A firing alert whose value is back inside its threshold but not past the resolve bound (alpha 0.55,
    a 9% breach rate) said only "(threshold ...)", which read as a false alarm: both paths name the bound."""
    rule = next(r for r in build_rules(_config()) if r.alertname == alertname)
    expected = {notes["summary"] for notes in _promtool_expected(alertname)}
    ours = {rule.annotations(Observation({"queue": "q"}, value, 1000, {"decisions": 1000}))["summary"]
            for value in values}
    assert ours == expected
    assert all(bound in summary for summary in ours)


def test_alerts_yml_prints_durations_as_the_built_in_engine_does(tmp_path: Path) -> None:
    """Every duration template of alerts.yml, run by promtool on ages from 0.25 s to weeks, prints
    collectors.alerts.rules.humanize_duration's text."""
    from collectors.alerts.rules import humanize_duration

    templates = {t for rule in _alert_rules() for note in rule["annotations"].values()
                 for t in re.findall(r"\{\{ \$value \| humanizeDuration.*?\}\}", note)}
    assert len(templates) == 1, templates  # one way to print a duration
    template = templates.pop()
    ages = [0.25, 1, 45.5, 60, 61, 3599, 3600, 3661, 11520, 14400, 20000, 66149.9, 86400, 86700, 90061, 1209600]
    rules = [{"alert": f"Age{i}", "expr": f"vector({age})", "annotations": {"summary": template}}
             for i, age in enumerate(ages)]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "ages", "rules": rules}]}))
    cases = [{"eval_time": "1m", "alertname": f"Age{i}",
              "exp_alerts": [{"exp_annotations": {"summary": humanize_duration(age)}}]} for i, age in enumerate(ages)]
    (tmp_path / "test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "tests": [{"interval": "1m", "alert_rule_test": cases}]}))
    result = _run(_tool("promtool"), "test", "rules", str(tmp_path / "test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


# ---- thresholds equal config and the built-in rules --------------------------------------------

_COMPARISON = re.compile(r"(?:>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)")


def _numbers(expr: str) -> set[float]:
    return {float(n) for n in _COMPARISON.findall(expr)}


def _same(a: set[float], b: set[float]) -> bool:
    return len(a) == len(b) and all(any(math.isclose(x, y, abs_tol=1e-9) for y in b) for x in a)


def test_prometheus_rules_mirror_the_built_in_rules_and_config() -> None:
    config = _config()
    prom = {(r["alert"], r["labels"]["severity"]): r for r in _alert_rules()}
    builtin = {(r.alertname, r.severity): r for r in build_rules(config)}
    assert set(prom) - {k for k in prom if k[0] in EXPORTER_ALERTS} == set(builtin)
    for key, rule in builtin.items():
        expr = prom[key]["expr"]
        expected = {rule.threshold, rule.resolve_bound}
        # the PSI gate is applied by the exporter (no sample below psi_min_decisions), the sequential
        # detectors' gates by the detectors themselves (their flags stay 0 below them)
        if rule.min_samples and rule.source not in ("psi", "adwin", "confidence_shift"):
            expected.add(float(rule.min_samples))
        assert _same(_numbers(expr), expected), (key, _numbers(expr), expected)
        assert duration_seconds(prom[key]["for"]) == rule.for_seconds, key
        if rule.resolve_bound != rule.threshold:  # hysteresis through the alert's own ALERTS series
            assert f'ALERTS{{alertname="{rule.alertname}"' in expr, key
        assert prom[key]["annotations"]["runbook_url"] == rule.runbook_url, key


def test_rules_read_the_configured_window() -> None:
    config = _config()
    window = config.alerts.window
    assert window in config.exporter.windows
    for rule in _alert_rules():
        for found in re.findall(r'window="([^"]+)"', rule["expr"]):
            assert found == window, rule["alert"]
        for found in re.findall(r"offset (\w+)", rule["expr"]):
            assert duration_seconds(found) == duration_seconds(window), rule["alert"]


def test_thresholds_in_the_shipped_config_equal_the_defaults_used_by_the_rules() -> None:
    from collectors.config import TowerConfig

    assert _config().alerts == TowerConfig().alerts


def test_every_alert_is_well_formed_and_documented() -> None:
    doc = (ROOT / "docs/alerts.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{2,4} (.+)$", doc, re.MULTILINE)}
    for rule in _alert_rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        page, anchor = annotations["runbook_url"].split("#")
        assert page == "docs/alerts.md" and anchor in anchors, rule["alert"]
        assert rule["alert"].startswith("Hitl")
    for rule in build_rules(_config()):
        assert rule.runbook_url.split("#")[1] in anchors


def test_queue_rules_gate_on_what_their_value_is_computed_from() -> None:
    """Alpha rests on the items reviewed by two or more reviewers, the SLA breach rate on primary reviews:
    gating them on the queue's decisions let alpha 0.000 from 7 items raise HitlAgreementCollapse."""
    a = _config().alerts
    rules = {r["alert"]: r["expr"] for r in _alert_rules()}
    gates = {"HitlAgreementCollapse": (names.SAMPLE_METRICS["agreement_units"], a.agreement_min_units),
             "HitlSlaBreachRate": (names.SAMPLE_METRICS["primary_reviews"], a.sla_min_reviews)}
    for alert, (metric, minimum) in gates.items():
        expr = rules[alert]
        assert re.search(rf'and on\(queue\) {metric}\{{window="{a.window}", queue!=""\}} >= {minimum}\s*$', expr), expr
        assert names.KPI_METRICS["decisions"] not in expr, alert


def test_rules_use_only_exported_metric_names() -> None:
    known = {*names.KPI_METRICS.values(), *names.SAMPLE_METRICS.values(), names.DRIFT_PSI, names.DRIFT_ECE, names.DRIFT_DETECTED,
             names.DRIFT_SHIFT_DETECTED, names.DRIFT_OUTCOMES, names.UP, names.STALE, names.NEWEST_EVENT_AGE}
    for rule in _alert_rules():
        metrics = set(re.findall(r"\bhitl_[a-z0-9_]+", rule["expr"]))
        assert metrics <= known, (rule["alert"], metrics - known)
        assert metrics or rule["alert"] in EXPORTER_ALERTS, rule["alert"]


# ---- Alertmanager ------------------------------------------------------------------------------


def test_alertmanager_config_is_valid_and_routes_to_the_webhook() -> None:
    path = ROOT / "config/alertmanager/alertmanager.yml"
    result = _run(_tool("amtool"), "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    assert config["route"]["group_by"] == ["alertname"]
    [receiver] = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:5001/"
    assert receiver["webhook_configs"][0]["send_resolved"] is True


# ---- Grafana -----------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _exprs() -> list[str]:
    return grafana_build.dashboard_exprs(_dashboard())


def test_dashboard_loads_and_uses_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "hitl-control-tower" and dashboard["title"]
    datasource = yaml.safe_load((ROOT / "config/grafana/provisioning/datasources/prometheus.yml").read_text())
    [ds] = datasource["datasources"]
    assert ds["uid"] == "hitl-prometheus" and ds["type"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": ds["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == ds["uid"] and target["expr"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provider = yaml.safe_load((ROOT / "config/grafana/provisioning/dashboards/hitl.yml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_dashboard_has_window_and_risk_class_variables_and_a_self_health_row() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"window", "risk_class"} <= set(variables)
    assert variables["window"]["current"]["value"] == _config().alerts.window
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert "Self-health" in rows
    exprs = " ".join(_exprs())
    for metric in (names.UP, names.STALE, names.LAST_SUCCESS, names.COLLECT_DURATION, names.NEWEST_EVENT_AGE):
        assert metric in exprs


def test_every_kpi_metric_is_on_the_dashboard() -> None:
    exprs = " ".join(_exprs())
    wanted = (*names.KPI_METRICS.values(), *names.SAMPLE_METRICS.values(), names.DRIFT_PSI, names.DRIFT_ECE, names.DRIFT_DETECTED,
              names.DRIFT_SHIFT_DETECTED, names.DRIFT_OUTCOMES)
    missing = [m for m in wanted if not re.search(rf"\b{m}\b", exprs)]
    assert not missing
    for expr in _exprs():  # every KPI gauge is read on the chosen window (or across windows for max)
        for metric in (*names.KPI_METRICS.values(), *names.SAMPLE_METRICS.values()):
            if re.search(rf"\b{metric}\{{", expr) and "max by (queue)" not in expr:
                assert 'window="$window"' in expr, expr


def test_every_dashboard_expression_is_a_recording_rule_promtool_checks() -> None:
    rules = yaml.safe_load(RECORDING.read_text())["groups"][0]["rules"]
    recorded = {rule["expr"] for rule in rules}
    for expr in _exprs():
        concrete = grafana_build.concrete(expr)
        assert "$" not in concrete, concrete
        assert concrete in recorded, concrete
    result = _run(_tool("promtool"), "check", "rules", str(RECORDING))
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_files_are_up_to_date() -> None:
    result = _run(sys.executable, str(ROOT / "config/grafana/build.py"), "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_rules_value_kind_is_how_its_summary_prints_the_value() -> None:
    """`Rule.kind` is what the CLI and the dashboard read a value as; the summary on-call gets prints it the same
    way (a backlog age as a duration, an SLA breach share in %, a spike signed, a detector without a value), so a
    kind set wrong shows up here. Rules of one name (warning, critical) share their kind."""
    from collectors.alerts.rules import build_rules
    from collectors.config import load_config

    printed = {"duration": "{value:duration}", "rate": "{value:.0%}", "points": "{value:+.3f}", "score": "{value:.3f}"}
    rules = build_rules(load_config())
    for rule in rules:
        if rule.kind == "signal":
            assert "{value" not in rule.summary and rule.signal_only, rule.alertname
        else:
            assert printed[rule.kind] in rule.summary and not rule.signal_only, (rule.alertname, rule.kind)
    assert len({(r.alertname, r.kind) for r in rules}) == len({r.alertname for r in rules})
    assert {r.alertname: r.kind for r in rules}["HitlBacklogAge"] == "duration"
