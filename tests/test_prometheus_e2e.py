"""End to end with the real Prometheus: the shipped config scrapes `hitl-tower serve-metrics`, and what
Prometheus's HTTP API returns equals `hitl-tower report --format json` for the same window.

The store holds synthetic traffic from 22 h to 2 h before the test starts, so the exporter's 24h window
(ending at its last refresh) and the report's (ending a few seconds later) hold the same events.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from process_helpers import free_port, stop, tower_command

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_YML = ROOT / "config/prometheus/prometheus.yml"
TOWER_YAML = ROOT / "config/tower.yaml"
TOTAL = 'window="24h",risk_class="",queue="",model_version="",action_type=""'


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing (Debian package prometheus)")
        pytest.skip(f"{name} is not installed (Debian package prometheus); CI installs it")
    return path


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    data = _get_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert data["status"] == "success", data
    return data["data"]["result"]


def _one_value(base: str, promql: str) -> float:
    result = _query(base, promql)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])


def _wait(what: str, check: Any, procs: list[subprocess.Popen[Any]], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                log = _log_of(proc)
                pytest.fail(f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}: {log}")
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError, IndexError) as exc:
            last = exc
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


_LOGS: dict[int, Path] = {}


def _log_of(proc: subprocess.Popen[Any]) -> str:
    path = _LOGS.get(proc.pid)
    return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""


def _prometheus_config(tmp_path: Path, exporter_port: int) -> Path:
    """A copy of the shipped config: target rewritten to the test's exporter, 1 s scrapes, rules kept,
    and no Alertmanager (so the test never notifies a real one listening on :9093)."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting", None)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "hitl-tower"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    rules = [r for r in config.get("rule_files", []) if (PROMETHEUS_YML.parent / r).is_file()]
    for rule_file in rules:
        shutil.copy(PROMETHEUS_YML.parent / rule_file, tmp_path / rule_file)
    config["rule_files"] = rules
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _load_store(url: str) -> None:
    from collectors import synth
    from collectors.events import EventRecorder

    # The exporter's windows end at the wall clock, so the store must end near now, and its size depends on
    # when that is (the generator's weekday factor and hours of the day): at 1,500 a day, 20 hours starting on
    # a weekend day stored as few as 1,735 events (a run on a Monday at 00:00:30 UTC). At 2,000 a day the
    # fewest over every half hour of a week are 2,290.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=22)
    with EventRecorder(url) as recorder:
        summary = recorder.record_many(synth.generate(seed=5, start=start, days=20 / 24, decisions_per_day=2000))
    assert summary.stored > 2000 and not summary.rejected


def test_prometheus_scrapes_the_exporter_and_agrees_with_report(tmp_path: Path) -> None:
    prometheus = _binary("prometheus")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    _load_store(db)
    exporter_port, prometheus_port = free_port(), free_port()
    procs: list[subprocess.Popen[Any]] = []
    # stderr goes to files, never to a pipe nobody drains (a full pipe would block the process)
    exporter_log, prometheus_log = (tmp_path / "exporter.log").open("w"), (tmp_path / "prometheus.log").open("w")
    try:
        exporter = subprocess.Popen(
            tower_command("serve-metrics", "--db", db, "--config", str(TOWER_YAML), "--port", str(exporter_port),
                           "--interval", "1"), stdout=subprocess.PIPE, stderr=exporter_log, text=True)
        _LOGS[exporter.pid] = tmp_path / "exporter.log"
        procs.append(exporter)
        assert f"127.0.0.1:{exporter_port}/metrics" in exporter.stdout.readline()
        server = subprocess.Popen(
            [prometheus, f"--config.file={_prometheus_config(tmp_path, exporter_port)}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=subprocess.DEVNULL, stderr=prometheus_log, text=True)
        _LOGS[server.pid] = tmp_path / "prometheus.log"
        procs.append(server)
        base = f"http://127.0.0.1:{prometheus_port}"

        def target_up() -> bool:
            targets = _get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
            return any(t["labels"]["job"] == "hitl-tower" and t["health"] == "up" for t in targets)

        _wait("a successful scrape of the exporter", target_up, procs)
        # The target can read "up" a moment before its first sample answers a query: an empty result waits too.
        _wait("a scrape of a refreshed exporter",
              lambda: [float(r["value"][1]) for r in _query(base, "hitl_tower_up")] == [1.0], procs)

        end = datetime.now(UTC)
        report = json.loads(subprocess.run(
            tower_command("report", "--db", db, "--config", str(TOWER_YAML), "--by", "risk_class",
                           "--start", (end - timedelta(hours=24)).isoformat(), "--end", end.isoformat(),
                           "--format", "json", "--no-extras"),
            capture_output=True, text=True, check=True, timeout=120).stdout)
        total = report["total"]
        assert total["decisions"] > 500
        assert _one_value(base, f"hitl_window_decisions{{{TOTAL}}}") == total["decisions"]
        assert _one_value(base, 'hitl_window_decisions{window="7d",risk_class="",queue="",model_version="",'
                                'action_type=""}') == total["decisions"]
        assert _one_value(base, "sum(hitl_decisions_total)") == total["decisions"]
        for kpi, metric in (("intervention_rate", "hitl_intervention_ratio"),
                            ("auto_rate", "hitl_auto_approval_ratio"),
                            ("latency_p90_seconds", "hitl_review_latency_p90_seconds"),
                            ("sla_breach_rate", "hitl_sla_breach_ratio"),
                            ("cost_per_decision", "hitl_cost_per_decision")):
            assert total[kpi] is not None, kpi
            assert _one_value(base, f"{metric}{{{TOTAL}}}") == pytest.approx(total[kpi], rel=1e-9), kpi
        for row in report["rows"]:
            labels = f'window="24h",risk_class="{row["risk_class"]}"'
            assert _one_value(base, f"hitl_window_decisions{{{labels}}}") == row["decisions"]
            if row["intervention_rate"] is not None:
                assert _one_value(base, f"hitl_intervention_ratio{{{labels}}}") == pytest.approx(
                    row["intervention_rate"], rel=1e-9)
        assert report["total"]["psi"] is None  # the reference window is empty: no sample either
        assert _query(base, f"hitl_confidence_psi{{{TOTAL}}}") == []
    finally:
        stop(*procs, timeout=15)
        exporter_log.close()
        prometheus_log.close()


def test_shipped_prometheus_config_passes_promtool() -> None:
    promtool = _binary("promtool")
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    missing = [r for r in config.get("rule_files", []) if not (PROMETHEUS_YML.parent / r).is_file()]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"rule files {missing} named by {PROMETHEUS_YML.name} are not written yet")
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
