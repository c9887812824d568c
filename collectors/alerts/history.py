"""The alert history table (`alert_history`, migration 0003): read and write alert episodes.

One row per episode of an alert (its labels' fingerprint): `pending` while
the condition holds for less than the rule's `for`, then `firing` (with
starts_at and the value it fired at), then `resolved` (with ends_at and the
value it resolved at, null when its series vanished). A new episode of the
same alert gets a new row, so the table is the alert history the dashboard
lists; `notified_state` is the last state delivered to a receiver, so a
failed delivery is retried at the next evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, func, insert, select, update

from collectors.store.models import AlertRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

_A = cast(Table, AlertRecord.__table__)
STATES = ("pending", "firing", "resolved")


@dataclass(frozen=True)
class AlertEpisode:
    """One row of the alert history."""

    id: int
    fingerprint: str
    alertname: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    threshold: float
    active_at: int
    starts_at: int | None
    ends_at: int | None
    fired_value: float | None
    resolved_value: float | None
    last_value: float | None
    worst_value: float | None
    evaluated_at: int
    notified_state: str | None

    @property
    def duration_us(self) -> int | None:
        """How long it fired (until now for a firing alert: None)."""
        return None if self.starts_at is None or self.ends_at is None else self.ends_at - self.starts_at


def _episode(row: Any) -> AlertEpisode:
    return AlertEpisode(**{name: row._mapping[name] for name in AlertEpisode.__dataclass_fields__})


def active_episodes(conn: Connection) -> dict[str, AlertEpisode]:
    """Pending and firing episodes by fingerprint (at most one active episode per alert)."""
    rows = conn.execute(select(_A).where(_A.c.state.in_(("pending", "firing"))).order_by(_A.c.id))
    return {episode.fingerprint: episode for episode in map(_episode, rows)}


def latest_evaluation(conn: Connection, states: Sequence[str] = STATES) -> int | None:
    """The newest instant an episode in one of `states` was evaluated at (None when there is none)."""
    value = conn.execute(select(func.max(_A.c.evaluated_at)).where(_A.c.state.in_(tuple(states)))).scalar()
    return None if value is None else int(value)


def episodes_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, AlertEpisode]:
    """The episodes with these ids (deleted ones are left out)."""
    if not ids:
        return {}
    rows = conn.execute(select(_A).where(_A.c.id.in_(list(ids))))
    return {episode.id: episode for episode in map(_episode, rows)}


def insert_episode(conn: Connection, values: dict[str, Any]) -> int:
    """Store a new episode; returns its id."""
    return int(conn.execute(insert(_A).values(**values).returning(_A.c.id)).scalar_one())


def update_episode(conn: Connection, episode_id: int, values: dict[str, Any]) -> None:
    """Change fields of an episode."""
    conn.execute(update(_A).where(_A.c.id == episode_id).values(**values))


def delete_episode(conn: Connection, episode_id: int) -> None:
    """Forget a pending episode whose condition cleared before it fired."""
    conn.execute(delete(_A).where(_A.c.id == episode_id, _A.c.state == "pending"))


def undelivered(conn: Connection) -> list[AlertEpisode]:
    """Firing and resolved episodes whose current state no receiver has been told yet."""
    rows = conn.execute(select(_A).where(
        _A.c.state.in_(("firing", "resolved")),
        (_A.c.notified_state.is_(None)) | (_A.c.notified_state != _A.c.state)).order_by(_A.c.id))
    return [_episode(row) for row in rows]


def firing(conn: Connection) -> list[AlertEpisode]:
    """Every firing episode, oldest first."""
    rows = conn.execute(select(_A).where(_A.c.state == "firing").order_by(_A.c.id))
    return [_episode(row) for row in rows]


def mark_notified(conn: Connection, episodes: Iterable[AlertEpisode]) -> None:
    """Record that each episode's current state was delivered."""
    for episode in episodes:
        conn.execute(update(_A).where(_A.c.id == episode.id, _A.c.state == episode.state)
                     .values(notified_state=episode.state))


def list_alerts(engine: Engine, *, states: Sequence[str] = ("firing", "resolved"),
                since_us: int | None = None, alertname: str | None = None,
                limit: int = 500) -> list[AlertEpisode]:
    """Alert episodes for the dashboard, newest first: firing and resolved by default.

    `since_us` keeps episodes that were active at or after that instant (still
    firing, or resolved after it).
    """
    unknown = set(states) - set(STATES)
    if unknown:
        raise ValueError(f"unknown alert states {sorted(unknown)} (choose from {', '.join(STATES)})")
    query = select(_A).where(_A.c.state.in_(tuple(states)))
    if since_us is not None:
        query = query.where((_A.c.ends_at.is_(None)) | (_A.c.ends_at >= since_us))
    if alertname is not None:
        query = query.where(_A.c.alertname == alertname)
    query = query.order_by(_A.c.active_at.desc(), _A.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [_episode(row) for row in conn.execute(query)]
