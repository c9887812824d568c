"""Deliver alerts: Alertmanager's v2 API, or any webhook in Alertmanager's webhook format.

- Alertmanager (`POST {url}/api/v2/alerts`): every evaluation sends every
  firing alert again with `endsAt` = now + 4 x the evaluation interval (as
  Prometheus does, so Alertmanager resolves it by itself if the engine
  stops), and each newly resolved alert once with its `endsAt`.
  Alertmanager groups, deduplicates, repeats and routes.
- Plain webhook: the JSON body Alertmanager would post to a webhook receiver
  (version 4: status, groupLabels, commonLabels, alerts with startsAt/endsAt
  and fingerprint), one message per alertname, sent only on a change of
  state (fired or resolved), since nothing downstream deduplicates.

A delivery that fails leaves the episodes' `notified_state` behind their
state, so the next evaluation sends them again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from collectors.alerts import history
from collectors.alerts.history import AlertEpisode
from collectors.validate import format_timestamp

if TYPE_CHECKING:
    from sqlalchemy import Engine

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"
RECEIVER = "hitl-tower"


class DeliveryError(RuntimeError):
    """A receiver could not be reached or refused the alerts."""


@dataclass(frozen=True)
class Target:
    """Where alerts go: an Alertmanager (base URL) or a plain webhook (full URL)."""

    kind: Literal["alertmanager", "webhook"]
    url: str

    @property
    def endpoint(self) -> str:
        """The URL posted to."""
        return self.url.rstrip("/") + "/api/v2/alerts" if self.kind == "alertmanager" else self.url


def alertmanager_alert(episode: AlertEpisode, wall_us: int, resend_us: int) -> dict[str, Any]:
    """One alert of the v2 API body. Times are wall-clock (Alertmanager's clock), never in its future."""
    starts = min(episode.starts_at or wall_us, wall_us)
    if episode.state == "firing":
        ends = wall_us + resend_us
    else:
        ends = max(min(episode.ends_at or wall_us, wall_us), starts)
    return {"labels": dict(episode.labels), "annotations": dict(episode.annotations),
            "startsAt": format_timestamp(starts), "endsAt": format_timestamp(ends)}


def alertmanager_body(episodes: Sequence[AlertEpisode], wall_us: int, resend_us: int) -> list[dict[str, Any]]:
    """The JSON body of POST /api/v2/alerts."""
    return [alertmanager_alert(e, wall_us, resend_us) for e in episodes]


def webhook_messages(episodes: Sequence[AlertEpisode], wall_us: int,
                     receiver: str = RECEIVER) -> list[dict[str, Any]]:
    """Alertmanager webhook (version 4) messages, one per alertname, alerts in episode order."""
    groups: dict[str, list[AlertEpisode]] = {}
    for episode in episodes:
        groups.setdefault(episode.alertname, []).append(episode)
    messages = []
    for name, members in groups.items():
        alerts: list[dict[str, Any]] = [{
            "status": e.state,
            "labels": dict(e.labels),
            "annotations": dict(e.annotations),
            "startsAt": format_timestamp(min(e.starts_at or wall_us, wall_us)),
            "endsAt": (ZERO_TIME if e.state == "firing"
                       else format_timestamp(min(e.ends_at or wall_us, wall_us))),
            "generatorURL": "",
            "fingerprint": e.fingerprint[:16],
        } for e in members]
        messages.append({
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{name}"}}',
            "truncatedAlerts": 0,
            "status": "firing" if any(e.state == "firing" for e in members) else "resolved",
            "receiver": receiver,
            "groupLabels": {"alertname": name},
            "commonLabels": _common([dict(e.labels) for e in members]),
            "commonAnnotations": _common([dict(e.annotations) for e in members]),
            "externalURL": "",
            "alerts": alerts,
        })
    return messages


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def post_json(url: str, body: Any, timeout: float = 10.0) -> None:
    """POST a JSON body; raises DeliveryError unless the receiver answers 2xx."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    try:
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "hitl-tower"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()[:200]
        raise DeliveryError(f"{url} answered {exc.code} {exc.reason}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {url}: {reason}") from None
    except ValueError as exc:  # a URL urllib cannot use (the CLI checks its URLs before this)
        raise DeliveryError(f"cannot post to {url}: {exc}") from None


def pending_delivery(engine: Engine, target: Target) -> list[AlertEpisode]:
    """The episodes the next delivery sends: for Alertmanager every firing one plus undelivered
    resolutions; for a webhook every undelivered change."""
    with engine.connect() as conn:
        changed = history.undelivered(conn)
        if target.kind == "webhook":
            return changed
        firing = history.firing(conn)
    return firing + [e for e in changed if e.state == "resolved"]


def payload(target: Target, episodes: Sequence[AlertEpisode], wall_us: int, resend_us: int) -> Any:
    """What `deliver` posts for these episodes (a list of webhook messages for a webhook)."""
    if target.kind == "alertmanager":
        return alertmanager_body(episodes, wall_us, resend_us)
    return webhook_messages(episodes, wall_us)


def deliver(engine: Engine, target: Target, wall_us: int, resend_us: int, timeout: float = 10.0) -> int:
    """Send what is due to the target and record it as delivered; returns the number of alerts sent.

    Raises DeliveryError (the episodes stay due) when the receiver fails.
    """
    episodes = pending_delivery(engine, target)
    if not episodes:
        return 0
    if target.kind == "alertmanager":
        post_json(target.endpoint, alertmanager_body(episodes, wall_us, resend_us), timeout)
        _mark(engine, episodes)
        return len(episodes)
    sent = 0
    for message in webhook_messages(episodes, wall_us):
        post_json(target.endpoint, message, timeout)
        delivered = [e for e in episodes if e.alertname == message["groupLabels"]["alertname"]]
        _mark(engine, delivered)
        sent += len(delivered)
    return sent


def _mark(engine: Engine, episodes: Sequence[AlertEpisode]) -> None:
    with engine.begin() as conn:
        history.mark_notified(conn, episodes)
