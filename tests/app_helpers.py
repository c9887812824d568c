"""Stores for the dashboard tests: a small synthetic one ending now, and an empty one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path


def build_synth_store(folder: Path, *, days: float = 30, decisions_per_day: int = 80, seed: int = 7) -> str:
    """A SQLite store of `days` of synthetic traffic (with the planted incidents) ending now; its URL."""
    from collectors import synth
    from collectors.ingest import ingest
    from collectors.store.db import open_store

    events = folder / "events.jsonl"
    start = datetime.now(UTC) - timedelta(days=days)
    synth.write_jsonl(events, synth.generate(seed=seed, days=days, decisions_per_day=decisions_per_day,
                                             start=start))
    url = f"sqlite:///{folder / 'synth.db'}"
    engine = open_store(url)
    try:
        summary = ingest(engine, [str(events)])
        assert summary.stored > 0 and not summary.rejected, summary
    finally:
        engine.dispose()
    return url


def build_empty_store(folder: Path) -> str:
    """A migrated SQLite store with no events; its URL."""
    from collectors.store.db import open_store

    url = f"sqlite:///{folder / 'empty.db'}"
    open_store(url).dispose()
    return url
