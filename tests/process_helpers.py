"""Helpers of the end-to-end tests that run real processes: ports, the CLI command, stopping, a webhook."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tower_command(*args: str) -> list[str]:
    """argv running `hitl-tower args...` with this interpreter's install (the script, else `python -c`)."""
    script = Path(sys.executable).with_name("hitl-tower")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from collectors.cli import main; main()", *args]


def wait_http_ok(url: str, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail early if `proc` (the server behind it) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def stop(*procs: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Terminate the processes (last started first), then wait for each, killing one that hangs."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Webhook:
    """What a local webhook receiver got: every POST as (path, JSON body), also queued as it arrives;
    it answers with `status`, which a test may change to simulate a failing receiver."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.status = 200
        self.received: list[tuple[str, Any]] = []
        self.arrivals: queue.Queue[Any] = queue.Queue()  # the bodies, for tests that wait for one


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """Serve a Webhook on a free local port for the duration of the block."""
    hook: Webhook | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert hook is not None
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hook.received.append((self.path, body))
            hook.arrivals.put(body)
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a downloaded browser


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright, with the flags this machine needs as root (no sandbox, no
    background networking or component updates: the network is closed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


ROOT = Path(__file__).parent.parent


@contextmanager
def streamlit_server(store_url: str) -> Iterator[str]:
    """`streamlit run app/main.py` on the store at `store_url`, on a free port; its base address once healthy."""
    import os

    port = free_port()
    env = {**os.environ, "HITL_TOWER_DB_URL": store_url, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    from collectors.demo_run import dashboard_argv

    proc = subprocess.Popen([*dashboard_argv(port, "127.0.0.1"), "--global.developmentMode", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/_stcore/health", proc)
        yield base
    finally:
        stop(proc)
