"""The live demo: 30 days of synthetic traffic ending now, the metrics server, the dashboard, a live stream.

`hitl-tower demo` builds the store (`build_store`), then `run_live` starts
`hitl-tower serve-metrics` and `streamlit run app/main.py` as child processes,
keeps ingesting fresh synthetic events as their time comes (`collectors.live_traffic`:
the history's rate, reviews and outcomes after their decisions), evaluates the
alert rules now and then (so the Alerts page has something to show), and stops
everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.config import TowerConfig
    from collectors.drift import SequentialMonitor
    from collectors.ingest import IngestSummary
    from collectors.live_traffic import LiveTraffic

Echo = Callable[[str], None]


@dataclass(frozen=True)
class LiveSettings:
    """Ports and pacing of the live demo."""

    seed: int = 7
    metrics_port: int = 9464
    dashboard_port: int = 8501
    host: str = "127.0.0.1"
    stream_interval_seconds: float = 5.0
    alert_interval_seconds: float = 30.0
    stream: bool = True  # off for a store of the user's (--db): the demo writes only to its own
    replay_days: float = 10.0  # alert rules replayed over the generated history (0: none)
    replay_step_seconds: int = 3 * 3600


def dashboard_entrypoint() -> Path:
    """The installed dashboard entrypoint, app/main.py (package data of the `app` package)."""
    return Path(str(resources.files("app").joinpath("main.py")))


def dashboard_argv(port: int, host: str) -> list[str]:
    """How the tower starts its dashboard (the demo; the tests' server runs the same): `streamlit run`,
    headless, no usage statistics, and the viewer toolbar, without Streamlit's "Deploy" button and
    developer menu, which mean nothing to an ops lead."""
    return [sys.executable, "-m", "streamlit", "run", str(dashboard_entrypoint()), "--server.headless", "true",
            "--server.port", str(port), "--server.address", host, "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer"]


def generate_and_ingest(engine: Engine, *, seed: int, days: float, decisions_per_day: int,
                        end: datetime | None = None, incidents: bool = True, id_prefix: str | None = None,
                        steady: bool = False, progress: Any = None,
                        later: list[dict[str, Any]] | None = None) -> IngestSummary:
    """Write `days` of synthetic traffic ending at `end` (default now) to a temporary file and ingest it
    (`steady`: traffic that continues the generated story, see `collectors.synth.generate`).

    With `later`, the reviews and outcomes of those decisions that fall after `end` are generated
    too and appended to it, for the live stream to send when their time comes."""
    from collectors import synth
    from collectors.live_traffic import HORIZON, until

    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    events = synth.generate(seed=seed, days=days, decisions_per_day=decisions_per_day, start=start,
                            incidents=incidents, id_prefix=id_prefix, steady=steady,
                            horizon=None if later is None else end + HORIZON)
    return ingest_events(engine, events if later is None else until(events, end, later), progress)


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    import os

    return subprocess.Popen(args, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def start_children(url: str, settings: LiveSettings, config_path: str | None) -> list[subprocess.Popen[bytes]]:
    """Start the metrics server and the dashboard as child processes."""
    config_args = ["--config", config_path] if config_path else []
    metrics = _spawn([sys.executable, "-c", "from collectors.cli import main; main()", "serve-metrics",
                      "--db", url, "--host", settings.host, "--port", str(settings.metrics_port), *config_args])
    dashboard = _spawn(dashboard_argv(settings.dashboard_port, settings.host),
                       env={"HITL_TOWER_DB_URL": url, **({"HITL_TOWER_CONFIG": config_path} if config_path else {})})
    return [metrics, dashboard]


def stop_children(children: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """Terminate each child (SIGTERM), then kill any that does not exit in time."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_live(engine: Engine, config: TowerConfig, url: str, settings: LiveSettings, echo: Echo,
             config_path: str | None = None, stop: threading.Event | None = None,
             traffic: LiveTraffic | None = None) -> None:
    """Serve metrics and dashboard and stream fresh events until SIGINT/SIGTERM (or `stop` is set).

    `traffic` (when settings.stream) is where the events come from; default: steady traffic at
    2000 decisions a day from now on."""
    if settings.stream and traffic is None:
        from collectors.live_traffic import LiveTraffic

        traffic = LiveTraffic(seed=settings.seed, per_day=2000, start=datetime.now(UTC))
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = start_children(url, settings, config_path)
    try:
        echo(f"\nmetrics:   http://{settings.host}:{settings.metrics_port}/metrics")
        echo(f"dashboard: http://{settings.host}:{settings.dashboard_port}")
        echo(f"streaming new events every {settings.stream_interval_seconds:g} s; Ctrl-C to stop\n"
             if settings.stream else "Ctrl-C to stop\n")
        from collectors.drift import SequentialMonitor

        monitor = SequentialMonitor.from_config(config.alerts)  # ADWIN keeps its state between evaluations
        if settings.stream and settings.replay_days > 0:
            replay_alerts(engine, config, monitor, settings, echo, stop)
        _stream(engine, config, settings, echo, stop, children, monitor, traffic if settings.stream else None)
    finally:
        echo("stopping the dashboard and the metrics server ...")
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def replay_alerts(engine: Engine, config: TowerConfig, monitor: SequentialMonitor, settings: LiveSettings,
                  echo: Echo, stop: threading.Event) -> None:
    """Evaluate the alert rules at past instants (every replay step over the last replay days), so the
    alert history shows the planted incidents firing and resolving as if the tower had been watching."""
    from collectors.alerts import evaluate
    from collectors.drift import walk

    now = time.time_ns() // 1000
    step = settings.replay_step_seconds * 1_000_000
    instants = range(now - int(settings.replay_days * 86_400 * 1_000_000), now, step)
    echo(f"replaying the alert rules over the last {settings.replay_days:g} days ({len(instants)} evaluations) ...")
    for at in walk(monitor, engine, instants):  # the detectors see the history as it was at each instant
        if stop.is_set():
            return
        evaluate(engine, config, at, monitor)


def _stream(engine: Engine, config: TowerConfig, settings: LiveSettings, echo: Echo, stop: threading.Event,
            children: list[subprocess.Popen[bytes]], monitor: SequentialMonitor,
            traffic: LiveTraffic | None) -> None:
    batch = 0
    last_alerts = 0.0
    while not stop.is_set():
        dead = [c for c in children if c.poll() is not None]
        if dead:
            echo(f"a child process exited (pid {dead[0].pid}, code {dead[0].returncode}): stopping")
            raise ChildExited(dead[0].returncode or 1)
        if time.monotonic() - last_alerts >= settings.alert_interval_seconds:
            _evaluate_alerts(engine, config, monitor, echo)
            last_alerts = time.monotonic()
        if stop.wait(settings.stream_interval_seconds):
            return
        if traffic is None:
            continue
        events = traffic.due(datetime.now(UTC))
        if not events:
            continue
        batch += 1
        summary = ingest_events(engine, events)
        if batch % 12 == 1:
            echo(f"live batch {batch}: {summary.stored} events stored ({traffic.held} reviews, outcomes "
                 "and decisions held until their time)")


class ChildExited(RuntimeError):
    """The metrics server or the dashboard stopped on its own: the demo stops with its exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"a child process exited with code {code}")
        self.code = code


def ingest_events(engine: Engine, events: Iterable[dict[str, Any]], progress: Any = None) -> IngestSummary:
    """Store events (streamed) through the ingest path, by way of a temporary JSON Lines file."""
    from collectors import synth
    from collectors.ingest import ingest

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        synth.write_jsonl(path, events)
        return ingest(engine, [str(path)], progress=progress)


def _evaluate_alerts(engine: Engine, config: TowerConfig, monitor: SequentialMonitor, echo: Echo) -> None:
    """Evaluate the alert rules once and record the episodes (no delivery), so the dashboard lists them."""
    from collectors.alerts import evaluate

    try:
        evaluation = evaluate(engine, config, time.time_ns() // 1000, monitor)
    except Exception as exc:  # noqa: BLE001 - the demo keeps streaming; the reason is shown
        echo(f"alert evaluation failed: {type(exc).__name__}: {exc}")
        return
    firing = [status.rule.alertname for status in evaluation.in_state("firing")]
    if firing:
        echo(f"alerts firing: {', '.join(sorted(set(firing)))}")
