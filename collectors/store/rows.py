"""Map validated event payloads to table rows and back, losslessly.

`row_to_payload(row_to_... (payload)) == payload` for every valid event: the
hash chain is recomputed from stored rows, so this round trip is what makes
tamper evidence possible (tests/test_rows.py checks it with hypothesis).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    for name in _FIELD_NAMES[etype]:
        value = row[name]
        if value is None:
            continue
        if name in _TIMESTAMPS[etype]:
            value = format_timestamp(int(value))
        elif isinstance(value, bool) or name in ("agent_correct", "final_correct"):
            value = bool(value)
        elif isinstance(value, int) and not isinstance(value, bool) and _is_number(etype, name):
            value = float(value)
        payload[name] = value
    extra = row["extra"]
    if extra:
        payload.update(extra)
    return payload


def _is_number(etype: str, name: str) -> bool:
    return any(spec.name == name and spec.kind is Kind.NUMBER for spec in FIELDS[etype])
