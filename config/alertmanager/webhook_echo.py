"""Print Alertmanager's webhook notifications, one line per alert: a stand-in for your pager or chat.

    python3 config/alertmanager/webhook_echo.py          # listens on 127.0.0.1:5001 (alertmanager.yml's URL)
    python3 config/alertmanager/webhook_echo.py --port 5002

Standard library only, so it runs anywhere Alertmanager does. Each POST is one
notification (Alertmanager's webhook payload, version 4): a group of alerts
with their status, labels and annotations.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Echo(BaseHTTPRequestHandler):
    """Answers every POST with 200 and prints its alerts."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        try:
            payload = json.loads(body)
        except ValueError:
            print(f"not JSON: {body[:200]!r}", flush=True)
            return
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            where = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
            print(f"{alert.get('status', '?'):8} {labels.get('alertname', '?')} [{labels.get('severity', '?')}] "
                  f"{where}: {alert.get('annotations', {}).get('summary', '')}", flush=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the alerts are the output."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args(argv)
    server = HTTPServer((args.host, args.port), Echo)  # bound before it says so
    print(f"waiting for Alertmanager notifications on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
