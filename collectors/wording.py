"""Words for counts and times, shared by the command line, the advice caveats and the dashboard."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count with its noun in the right number, "1 alert", "4 alerts", "1,234 decisions": a noun with
    "(s)" on it makes the reader do the grammar."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def utc_minute(us: int) -> str:
    """A time as a reader reads it, "2026-11-25 00:14 UTC", as the dashboard writes times (not the ISO
    "2026-11-25T00:14:50Z" of a file or a URL)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC")
