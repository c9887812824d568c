"""Events made ready for the writer: row values, canonical JSON and idempotency key, built once.

Preparing an event is pure (no database), so bulk ingest runs it in worker
processes (`collectors.parse_pool`) while the writer stores earlier batches.
A prepared event is a plain tuple, cheap to send between processes:

    (type, key, canonical JSON, row values, decision_id or None)

The row values follow `COLUMNS[type]`, with `seq` (first) and `hash` (last
but, for decisions, `conf_bin`) left None for the writer, which assigns them
in chain order. The mapping is the one of `collectors.store.rows`
(tests/test_ingest.py checks the two agree).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from collectors.contract import FIELDS, KNOWN_KEYS, Kind
from collectors.store.rows import ROW_COLUMNS
from collectors.validate import EventError, ValidEvent, parse_line, parse_timestamp

# (type, key, canonical JSON, row values with seq and hash None, decision_id of a review or outcome)
Prepared = tuple[str, str, bytes, list[Any], str | None]

EVENT_TYPES = ("decision", "review", "outcome", "change")
JSON_COLUMNS = frozenset({"segment", "policy_checks", "extra", "scope", "before", "after"})
# Every column of each event table, in the order the row values are built.
COLUMNS: dict[str, tuple[str, ...]] = {
    etype: cols + (("conf_bin",) if etype == "decision" else ()) for etype, cols in ROW_COLUMNS.items()
}
# Where the writer puts the hash in each type's row values.
HASH_INDEX = {etype: cols.index("hash") for etype, cols in COLUMNS.items()}

# Text fields that differ from event to event; the others (agent, model, queue, verdict...) take a
# few values and are interned: one object per value, so a chunk pickled by a worker process carries
# each value once and the writer unpickles references instead of new strings (~40% faster loads).
UNIQUE_TEXT = frozenset({"id", "decision_id", "reason"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def prepare(ev: ValidEvent) -> Prepared:
    """The prepared form of a validated event; EventError if the store cannot hold it."""
    return _BUILDERS[ev.type](ev)


def prepare_line(raw: bytes) -> Prepared | None:
    """Validate one physical line and prepare it: None for a blank line, EventError for a bad one."""
    event = parse_line(raw)
    return None if event is None else _BUILDERS[event.type](event)


def micros(value: str) -> int:
    """Epoch microseconds of a validated (canonical UTC RFC 3339) timestamp, via the C parser."""
    try:
        return (datetime.fromisoformat(value) - _EPOCH) // _MICROSECOND
    except (ValueError, TypeError):
        pass
    try:
        return parse_timestamp(value)
    except EventError:
        raise EventError(f"timestamp {value!r} cannot be stored (years before 1000 are not supported)"
                         if value[:4].count("-") else f"timestamp {value!r} cannot be stored") from None


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _builder(etype: str) -> Callable[[ValidEvent], Prepared]:
    """The function preparing one event type."""
    specs = FIELDS[etype]
    plan = tuple(
        (spec.name, micros if spec.kind is Kind.TIMESTAMP
         else json_text if spec.name in JSON_COLUMNS
         else sys.intern if spec.kind is Kind.STRING and spec.name not in UNIQUE_TEXT else None)
        for spec in specs
    )
    known = KNOWN_KEYS[etype]
    is_outcome, is_decision = etype == "outcome", etype == "decision"
    has_decision_id = etype in ("review", "outcome")
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS

    def build(ev: ValidEvent) -> Prepared:
        payload = ev.payload
        canonical = dumps(payload, option=sort_keys)
        if b"\\u0000" in canonical:
            _check_no_nul(payload)
        values: list[Any] = [None, ev.key] if is_outcome else [None]
        get = payload.get
        present = 1  # "type"
        for name, convert in plan:
            value = get(name)
            if value is not None:
                present += 1
                if convert is not None:
                    value = convert(value)
            values.append(value)
        if len(payload) > present:
            values.append(json_text({k: v for k, v in payload.items() if k not in known}))
        else:
            values.append(None)
        values.append(None)  # hash
        if is_decision:
            values.append(min(math.floor(10 * payload["confidence"]), 9))
        return etype, ev.key, canonical, values, payload["decision_id"] if has_decision_id else None

    return build


def _check_no_nul(payload: dict[str, Any]) -> None:
    """EventError naming the first field that holds U+0000 anywhere: in its value, or in a key or string
    nested in it (segment, policy_checks, scope, before/after, extras).

    PostgreSQL text cannot hold U+0000, nor can it extract one from JSON (`report --by segment.KEY`);
    it is rejected on every engine so both behave alike.
    """
    for name, value in payload.items():
        if "\x00" in name:
            raise EventError("a field name contains a NUL character (\\u0000), which the store cannot hold")
        if _holds_nul(value):
            raise EventError(f"{name} contains a NUL character (\\u0000), which the store cannot hold")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


_BUILDERS = {etype: _builder(etype) for etype in EVENT_TYPES}
