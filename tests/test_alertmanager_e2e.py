"""End to end: `hitl-tower alerts` posts a planted calibration drift to a real Alertmanager, which
routes it (shipped config, webhook URL and timings rewritten) to a local webhook receiver."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from drift_helpers import ACTION, MODEL, planted_drift
from engine_helpers import load
from process_helpers import Webhook, free_port, stop, tower_command, webhook_receiver

from collectors.validate import format_timestamp

ROOT = Path(__file__).resolve().parent.parent
MINUTE_US = 60_000_000
WAIT_SECONDS = 30


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local webhook receiver: every POSTed JSON body lands in its `arrivals` queue."""
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    """A real Alertmanager on a free port with the shipped config, routed to the test's webhook."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        if os.environ.get("CI"):
            raise RuntimeError("prometheus-alertmanager is not installed")
        pytest.skip("prometheus-alertmanager is not installed")
    config = yaml.safe_load((ROOT / "config/alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook.url + "/"
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "am.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {(tmp_path / 'am.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("alertmanager did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        log.close()


def _hitl_tower(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tower_command(*args), capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def test_planted_drift_reaches_the_webhook_through_alertmanager(
        tmp_path: Path, alertmanager: str, webhook: Webhook) -> None:
    now_us = time.time_ns() // 1000 // 1_000_000 * 1_000_000
    db = f"sqlite:///{tmp_path / 'store.db'}"
    load(db, planted_drift(now_us)).dispose()
    common = ["alerts", "--once", "--db", db, "--config", str(ROOT / "config/tower.yaml"),
              "--alertmanager", alertmanager]
    first = _hitl_tower(*common, "--now", format_timestamp(now_us - 31 * MINUTE_US))  # pending (for: 30m)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PENDING  HitlCalibrationDrift [critical]" in first.stdout
    second = _hitl_tower(*common)  # now: firing, posted to Alertmanager
    assert second.returncode == 0, second.stdout + second.stderr
    assert "sent " in second.stdout

    seen: list[dict[str, Any]] = []
    message, found = _wait_for(webhook.arrivals, seen, "HitlCalibrationDrift", severity="critical")
    assert message["receiver"] == "hitl-webhook" and message["status"] == "firing"
    assert message["groupLabels"] == {"alertname": "HitlCalibrationDrift"}
    assert found["status"] == "firing"
    assert found["labels"] == {"alertname": "HitlCalibrationDrift", "severity": "critical",
                               "model_version": MODEL, "action_type": ACTION}
    assert found["annotations"]["runbook_url"] == "docs/alerts.md#hitlcalibrationdrift"
    assert found["annotations"]["summary"].startswith(f"Calibration drift on {MODEL} / {ACTION}: ECE drift ")
    assert "outcomes" in found["annotations"]["description"]
    _, change = _wait_for(webhook.arrivals, seen, "HitlCalibrationChange")
    assert change["labels"]["model_version"] == MODEL and change["labels"]["severity"] == "warning"
    # the shipped config's inhibit rule: the critical silences the warning of the same alert and slice
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
        held = json.load(response)
    drift = {a["labels"]["severity"]: a["status"] for a in held
             if a["labels"]["alertname"] == "HitlCalibrationDrift"}
    assert drift["critical"]["state"] == "active"
    assert drift["warning"]["state"] == "suppressed" and drift["warning"]["inhibitedBy"]


def _wait_for(received: queue.Queue[dict[str, Any]], seen: list[dict[str, Any]],
              alertname: str, severity: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first message (seen before or arriving within the wait) carrying a firing `alertname`.

    With `severity`, only an alert of that severity counts: a warning and a critical of the same
    alert may reach the webhook in either order when the machine is busy.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        for message in seen:
            for alert in message.get("alerts", []):
                labels = alert["labels"]
                if (labels.get("alertname") == alertname and alert["status"] == "firing"
                        and severity in (None, labels.get("severity"))):
                    return message, alert
        try:
            seen.append(received.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"no {alertname} reached the webhook within {WAIT_SECONDS} s; "
                                 f"got {seen}") from None


def test_the_shipped_webhook_echo_prints_each_alert_of_a_notification() -> None:
    port = free_port()
    proc = subprocess.Popen(["python3", str(ROOT / "config/alertmanager/webhook_echo.py"), "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "waiting for Alertmanager" in proc.stdout.readline()
        payload = {"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "HitlCalibrationChange", "severity": "warning",
                                            "model_version": "kyc-v2.4", "action_type": "kyc_approve"},
             "annotations": {"summary": "Sequential detector (ADWIN) saw a calibration change"}},
            {"status": "resolved", "labels": {"alertname": "HitlBacklogAge", "severity": "critical", "queue": "kyc"},
             "annotations": {}}]}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        lines = [proc.stdout.readline().strip() for _ in range(2)]
    finally:
        stop(proc)
    assert lines[0].split()[:3] == ["firing", "HitlCalibrationChange", "[warning]"]
    assert "model_version=kyc-v2.4" in lines[0] and lines[0].endswith("saw a calibration change")
    assert lines[1].startswith("resolved HitlBacklogAge [critical] queue=kyc")
