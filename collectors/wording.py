"""Words for counts, money and times, shared by the command line, the advice caveats and the dashboard."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count with its noun in the right number, "1 alert", "4 alerts", "1,234 decisions": a noun with
    "(s)" on it makes the reader do the grammar."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def with_currency(amount: str, currency: str) -> str:
    """A formatted amount with the configured currency: a code of letters after it ("1,415.64 EUR"),
    a symbol before it, after the sign ("$1.4k", "-$12.00", "R$3.50"); unchanged when none is set.

    The contract has money in one currency and names none, so it is display only (config `currency`).
    """
    if not currency:
        return amount
    if currency.isascii() and currency.isalpha():
        return f"{amount} {currency}"
    sign, digits = (amount[0], amount[1:]) if amount[:1] in "+-\u2212" else ("", amount)
    return f"{sign}{currency}{digits}"


def utc_minute(us: int) -> str:
    """A time as a reader reads it, "2026-11-25 00:14 UTC", as the dashboard writes times (not the ISO
    "2026-11-25T00:14:50Z" of a file or a URL)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC")
