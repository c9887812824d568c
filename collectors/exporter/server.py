"""A small threaded HTTP server for the exporter: `/metrics` from cached bytes, `/` a pointer page.

Each request sends the exposition rendered at the last refresh (gzipped when
the client accepts it, as Prometheus does), so a scrape costs a memory copy
whatever the number of series, and never touches the database.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collectors.exporter.snapshot import Exposition

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INDEX = (b"<!doctype html><html><head><title>HITL Control Tower exporter</title></head><body>"
         b"<h1>HITL Control Tower exporter</h1><p>Prometheus metrics: <a href=\"/metrics\">/metrics</a>"
         b"</p></body></html>\n")


#: GIL switch interval of a serving process. A refresh renders in pure Python for up to ~1 s at 50k
#: series; with the default 5 ms a scrape arriving then waits ~5 ms at each of its GIL hand-offs
#: (p99 ~70 ms in bench/exporter.py), with 1 ms about 5x less.
SWITCH_INTERVAL_SECONDS = 0.001


def prefer_responsiveness() -> None:
    """Make the process hand the GIL over sooner, so scrapes are not held up by a refresh."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


class _HttpServer(ThreadingHTTPServer):
    # A burst of scrapes (several Prometheus servers, a dashboard) waits in the kernel's queue
    # instead of being refused and retried a second later (the default queue holds 5).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line for a client that went away mid-request, not a traceback in the exporter's log."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.info("scrape from %s:%s ended early: %s", *client_address[:2], error)
            return
        super().handle_error(request, client_address)


class MetricsServer:
    """Serves `source()` (the current exposition) on host:port in its own thread."""

    def __init__(self, source: Callable[[], Exposition], host: str = "127.0.0.1", port: int = 9464) -> None:
        handler = type("Handler", (_Handler,), {"source": staticmethod(source)})
        self.httpd = _HttpServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful after asking for port 0)."""
        return int(self.httpd.server_address[1])

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self.httpd.server_address[0])

    def start(self) -> None:
        """Serve in a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="hitl-metrics-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    source: Callable[[], Exposition]

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        headers: list[tuple[str, str]] = []
        if path == "/metrics":
            exposition = self.source()
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = exposition.gzipped
                headers.append(("Content-Encoding", "gzip"))
            else:
                body = exposition.text
            status, content_type = 200, CONTENT_TYPE
        elif path == "/":
            status, content_type, body = 200, "text/html; charset=utf-8", INDEX
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found: try /metrics\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
