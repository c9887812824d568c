"""Words for counts, shared by the command line, the advice caveats and the dashboard."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count with its noun in the right number, "1 alert", "4 alerts", "1,234 decisions": a noun with
    "(s)" on it makes the reader do the grammar."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"
