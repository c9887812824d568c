"""Validate one interchange event against the contract and normalise it.

This is the single validation path: bulk ingest and the producer API
(`collectors.events`) both call `parse_line` / `validate_event`. It is plain
code over the field tables of `collectors.contract` rather than pydantic,
because it runs once per line on million-line files (see PERFORMANCE.md);
`tests/test_schema.py` checks it against the pydantic models built from the
same tables.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from collectors.contract import FIELDS, FieldSpec, Kind

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class EventError(ValueError):
    """An event that breaks the contract; the message is the reason shown to the operator."""


@dataclass(frozen=True)
class ValidEvent:
    """A validated event: its type, its idempotency key and its canonical payload.

    `payload` holds every field given (extras included, nulls dropped), with
    timestamps rewritten as UTC RFC 3339 strings and numbers as floats, so two
    events are "the same content" exactly when their payloads are equal.
    """

    type: str
    key: str
    payload: dict[str, Any]


def parse_timestamp(value: str) -> int:
    """Parse an RFC 3339 timestamp with a zone into integer microseconds since the epoch (UTC)."""
    m = _RFC3339.match(value)
    if m is None:
        if re.match(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?\Z", value):
            raise EventError(f"timestamp {value!r} has no zone (add Z or an offset like +01:00)")
        raise EventError(f"timestamp {value!r} is not RFC 3339")
    date, time, frac, zone = m.groups()
    frac = (frac or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        dt = datetime.fromisoformat(f"{date}T{time}.{frac}{zone}")
    except ValueError as exc:
        raise EventError(f"timestamp {value!r} is not a valid date/time: {exc}") from None
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_timestamp(micros: int) -> str:
    """Format epoch microseconds as the canonical UTC RFC 3339 string (inverse of parse_timestamp)."""
    seconds, us = divmod(micros, 1_000_000)
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{us:06d}Z" if us else f"{base}Z"


def _check_number(spec: FieldSpec, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError(f"{spec.name} must be a number, got {_json_type(value)}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise EventError(f"{spec.name} must be a finite number")
    if spec.minimum is not None:
        if spec.exclusive_minimum and number <= spec.minimum:
            raise EventError(f"{spec.name} must be > {spec.minimum:g}, got {number:g}")
        if number < spec.minimum:
            raise EventError(f"{spec.name} must be >= {spec.minimum:g}, got {number:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise EventError(f"{spec.name} must be <= {spec.maximum:g}, got {number:g}")
    return number


def _check_value(spec: FieldSpec, value: Any) -> Any:
    kind = spec.kind
    if kind is Kind.STRING:
        if not isinstance(value, str):
            raise EventError(f"{spec.name} must be a string, got {_json_type(value)}")
        if spec.choices is not None and value not in spec.choices:
            raise EventError(f"{spec.name} {value!r} is not one of {', '.join(spec.choices)}")
        return value
    if kind is Kind.TIMESTAMP:
        if not isinstance(value, str):
            raise EventError(f"{spec.name} must be an RFC 3339 string, got {_json_type(value)}")
        return format_timestamp(parse_timestamp(value))
    if kind is Kind.NUMBER:
        return _check_number(spec, value)
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise EventError(f"{spec.name} must be true or false, got {_json_type(value)}")
        return value
    if kind is Kind.STR_MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise EventError(f"{spec.name} must be an object of string to string")
        return value
    if kind is Kind.POLICY_CHECKS:
        return _check_policy_checks(spec, value)
    return value  # Kind.ANY


def _check_policy_checks(spec: FieldSpec, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise EventError(f"{spec.name} must be a list of {{rule, result}} objects")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("rule"), str):
            raise EventError(f"{spec.name}[{i}] must be an object with a string rule")
        if item.get("result") not in ("pass", "fail", "warn"):
            raise EventError(f"{spec.name}[{i}].result must be one of pass, fail, warn")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate_event(obj: Any) -> ValidEvent:
    """Check one parsed JSON value against the contract; raise EventError with the reason."""
    if not isinstance(obj, dict):
        raise EventError(f"an event must be a JSON object, got {_json_type(obj)}")
    etype = obj.get("type")
    specs = FIELDS.get(etype) if isinstance(etype, str) else None
    if specs is None:
        allowed = ", ".join(FIELDS)
        raise EventError(f"type must be one of {allowed}, got {etype!r}" if "type" in obj
                         else f"missing required field type (one of {allowed})")
    payload: dict[str, Any] = {k: v for k, v in obj.items() if v is not None}
    for spec in specs:
        value = payload.get(spec.name)
        if value is None:
            if spec.required:
                raise EventError(f"missing required field {spec.name}")
            continue
        payload[spec.name] = _check_value(spec, value)
    _check_cross_fields(etype, payload)
    return ValidEvent(etype, event_key(etype, payload), payload)


def _check_cross_fields(etype: str, payload: dict[str, Any]) -> None:
    if etype == "review":
        if parse_timestamp(payload["decided_at"]) < parse_timestamp(payload["enqueued_at"]):
            raise EventError(
                f"decided_at {payload['decided_at']} is before enqueued_at {payload['enqueued_at']}"
            )


def event_key(etype: str, payload: dict[str, Any]) -> str:
    """The idempotency key: the id, or for an outcome (which has none) a digest of its content."""
    if etype == "outcome":
        return hashlib.sha256(canonical_json(payload)).hexdigest()
    return str(payload["id"])


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a payload: sorted keys, no whitespace (orjson)."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def parse_line(raw: bytes) -> ValidEvent | None:
    """Validate one physical line of JSON Lines; None for a blank line, EventError for a bad one."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    raw = raw.rstrip(b"\r\n")
    if not raw.strip():
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _is_bad_utf8(raw):
            raise EventError("line is not valid UTF-8") from None
        raise EventError(f"invalid JSON: {exc}") from None
    return validate_event(obj)


def _is_bad_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
