"""Map validated event payloads to table rows and back, losslessly.

`row_to_payload(row_to_... (payload)) == payload` for every valid event: the
hash chain is recomputed from stored rows, so this round trip is what makes
tamper evidence possible (tests/test_rows.py checks it with hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from collectors.contract import FIELDS, KNOWN_KEYS, Kind
from collectors.validate import format_timestamp, parse_timestamp

_TIMESTAMPS = {
    etype: tuple(spec.name for spec in specs if spec.kind is Kind.TIMESTAMP)
    for etype, specs in FIELDS.items()
}
_FIELD_NAMES = {etype: tuple(spec.name for spec in specs) for etype, specs in FIELDS.items()}

# Columns of each event table besides the contract's fields, in insert order.
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    etype: ("seq",) + (("key",) if etype == "outcome" else ()) + names + ("extra", "hash")
    for etype, names in _FIELD_NAMES.items()
}


def payload_to_row(etype: str, payload: Mapping[str, Any], key: str, seq: int, hash_: str) -> dict[str, Any]:
    """The table row for a validated payload (timestamps as epoch microseconds, extras apart)."""
    row: dict[str, Any] = {name: payload.get(name) for name in _FIELD_NAMES[etype]}
    for name in _TIMESTAMPS[etype]:
        if row[name] is not None:
            row[name] = parse_timestamp(row[name])
    known = KNOWN_KEYS[etype]
    extra = {k: v for k, v in payload.items() if k not in known}
    row["extra"] = extra or None
    row["seq"] = seq
    row["hash"] = hash_
    if etype == "outcome":
        row["key"] = key
    return row


def row_to_payload(etype: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical payload a stored row was written from."""
    payload: dict[str, Any] = {"type": etype}
    for name, convert in _READ_PLAN[etype]:
        value = row[name]
        if value is not None:
            payload[name] = value if convert is None else convert(value)
    extra = row["extra"]
    if extra:
        payload.update(extra)
    return payload


def _as_number(value: Any) -> Any:
    """A contract number as the payload holds it: a float (SQLite returns a REAL equal to an integer
    as an int), a driver's boolean left as it is."""
    return float(value) if value.__class__ is int else value


def _read_plan(etype: str) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Each contract field of a type and how its stored value turns back into the payload's."""
    plan: list[tuple[str, Callable[[Any], Any] | None]] = []
    for spec in FIELDS[etype]:
        if spec.kind is Kind.TIMESTAMP:
            plan.append((spec.name, _format_stored_timestamp))
        elif spec.name in ("agent_correct", "final_correct"):
            plan.append((spec.name, bool))
        elif spec.kind is Kind.NUMBER:
            plan.append((spec.name, _as_number))
        else:
            plan.append((spec.name, None))
    return tuple(plan)


def _format_stored_timestamp(value: Any) -> str:
    return format_timestamp(int(value))


_READ_PLAN = {etype: _read_plan(etype) for etype in FIELDS}
