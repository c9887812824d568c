"""Stores for the dashboard tests: a small synthetic one ending now, and an empty one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VIEWS = Path(__file__).parent.parent / "app" / "views"


def build_synth_store(folder: Path, *, days: float = 30, decisions_per_day: int = 80, seed: int = 7,
                      end: datetime | None = None) -> str:
    """A SQLite store of `days` of synthetic traffic (with the planted incidents) ending at `end` (default: now,
    so a test on it runs at whatever time of day the suite does; pin `end` to exercise one); its URL."""
    from collectors import synth
    from collectors.ingest import ingest
    from collectors.store.db import open_store

    events = folder / "events.jsonl"
    start = (end or datetime.now(UTC)) - timedelta(days=days)
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


def run_view(store_url: str, page: str, monkeypatch: Any, window: str, timeout: float = 120) -> Any:
    """One run of app/views/`page` (AppTest) on the store at `store_url` in the sidebar's `window`; no exception."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HITL_TOWER_DB_URL", store_url)
    at = AppTest.from_file(str(VIEWS / page), default_timeout=timeout)
    at.session_state["_keep_window"] = window
    at.run()
    assert not at.exception, [str(e.value) for e in at.exception]
    return at
