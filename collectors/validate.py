"""Validate one interchange event against the contract and normalise it.

This is the single validation path: bulk ingest and the producer API
(`collectors.events`) both call `parse_line` (lines) or `validate_event` (parsed objects). It is plain
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
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from collectors.contract import CHECK_RESULTS, FIELDS, KNOWN_KEYS, FieldSpec, Kind

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:[0-5]\d)\Z"
)
# What _RFC3339 misses only by its zone (absent, or minutes past 59): the reason names that.
_NEAR_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?([+-]\d{2}:\d{2})?\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The earliest instant RFC 3339 writes (0001-01-01T00:00:00Z), in epoch microseconds.
EARLIEST_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


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
        near = _NEAR_RFC3339.match(value)
        if near is not None and near.group(1) is None:
            raise EventError(f"timestamp {value!r} has no zone (add Z or an offset like +01:00)")
        if near is not None:
            raise EventError(f"timestamp {value!r} has a zone offset whose minutes are not 00-59")
        raise EventError(f"timestamp {value!r} is not RFC 3339")
    date, time, frac, zone = m.groups()
    frac = (frac or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        dt = datetime.fromisoformat(f"{date}T{time}.{frac}{zone}")
    except ValueError as exc:
        raise EventError(f"timestamp {value!r} is not a valid date/time: {exc}") from None
    try:
        dt.astimezone(UTC)
    except OverflowError:
        raise EventError(f"timestamp {value!r} is out of range (UTC years 0001 to 9999)") from None
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_timestamp(micros: int) -> str:
    """Format epoch microseconds as the canonical UTC RFC 3339 string (inverse of parse_timestamp).

    `verify` formats every stored timestamp again: the date comes from a small cache (a store's
    events share few days) and the time of day from integer arithmetic, not a datetime per call.
    """
    days, us = divmod(micros, 86_400_000_000)
    seconds, us = divmod(us, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    day = _date_prefix(days)
    return (f"{day}{hours:02d}:{minutes:02d}:{seconds:02d}.{us:06d}Z" if us
            else f"{day}{hours:02d}:{minutes:02d}:{seconds:02d}Z")


@lru_cache(maxsize=4096)
def _date_prefix(days: int) -> str:
    """`YYYY-MM-DDT` of a day counted from the epoch."""
    day = _EPOCH + timedelta(days=days)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}T"


def _check_number(spec: FieldSpec, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventError(f"{spec.name} must be a number, got {_json_type(value)}")
    try:
        number = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0: equal numbers, one canonical form
    except OverflowError:
        raise EventError(f"{spec.name} is too large for a number") from None
    if math.isnan(number) or math.isinf(number):
        raise EventError(f"{spec.name} must be a finite number")
    if spec.minimum is not None:
        if spec.exclusive_minimum and number <= spec.minimum:
            raise EventError(f"{spec.name} must be > {spec.minimum:g}, got {_shown(number)}")
        if number < spec.minimum:
            raise EventError(f"{spec.name} must be >= {spec.minimum:g}, got {_shown(number)}")
    if spec.maximum is not None and number > spec.maximum:
        raise EventError(f"{spec.name} must be <= {spec.maximum:g}, got {_shown(number)}")
    return number


def _shown(number: float) -> str:
    """A number as short as it can be written without looking like another (1.0000001 is not "1")."""
    short = f"{number:g}"
    return short if float(short) == number else repr(number)


def _check_value(spec: FieldSpec, value: Any) -> Any:
    kind = spec.kind
    if kind is Kind.STRING:
        if not isinstance(value, str):
            raise EventError(f"{spec.name} must be a string, got {_json_type(value)}")
        if spec.choices is not None and value not in spec.choices:
            raise EventError(f"{spec.name} {value!r} is not one of {', '.join(spec.choices)}")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise EventError(f"{spec.name} is {len(value)} characters long, longer than the limit of "
                             f"{spec.max_length}")
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
    if specs is None or not isinstance(etype, str):
        allowed = ", ".join(FIELDS)
        raise EventError(f"type must be one of {allowed}, got {etype!r}" if "type" in obj
                         else f"missing required field type (one of {allowed})")
    payload = without_absent_fields(obj, KNOWN_KEYS[etype])
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
    if etype == "review" and parse_timestamp(payload["decided_at"]) < parse_timestamp(payload["enqueued_at"]):
        raise EventError(f"decided_at {payload['decided_at']} is before enqueued_at {payload['enqueued_at']}")


def event_key(etype: str, payload: dict[str, Any]) -> str:
    """The idempotency key: the id, or for an outcome (which has none) a digest of its content."""
    if etype == "outcome":
        return outcome_key(payload)
    return str(payload["id"])


def outcome_key(payload: dict[str, Any]) -> str:
    """An outcome's key: SHA-256 (hex) of its canonical JSON with numbers in one form.

    Two outcomes with the same content (`same_content`) have one key: the contract's numbers are
    floats already, and in extra fields an integer that a double holds exactly is written as that
    double (1 as 1.0) and -0.0 as 0.0. Without extras the key is the digest of the canonical JSON.
    """
    return hashlib.sha256(canonical_json(_digest_form(payload))).hexdigest()


def _digest_form(value: Any) -> Any:
    """The value with every number that equals a double written as that double (-0.0 as 0.0)."""
    cls = value.__class__
    if cls is int:
        try:
            number = float(value)
        except OverflowError:
            return value
        return number + 0.0 if number == value else value  # 2**53 + 1 stays an int: no double equals it
    if cls is float:
        return value + 0.0
    if cls is dict:
        return {k: _digest_form(v) for k, v in value.items()}
    if cls is list:
        return [_digest_form(v) for v in value]
    return value


def same_content(a: Any, b: Any) -> bool:
    """Whether two parsed JSON values are equal (contract 2b, "same content").

    Python's == almost says it, numbers by value (1 == 1.0) included, but it takes true for 1 and
    false for 0: a JSON boolean is never equal to a number, at any depth.
    """
    return bool(a == b) and _no_bool_for_number(a, b)


def _no_bool_for_number(a: Any, b: Any) -> bool:
    """For values known ==: True unless a boolean stands against a number somewhere inside them."""
    if a.__class__ is bool or b.__class__ is bool:
        return a.__class__ is b.__class__
    if a.__class__ is dict:
        return all(_no_bool_for_number(value, b[key]) for key, value in a.items())
    if a.__class__ is list:
        return all(map(_no_bool_for_number, a, b))
    return True


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a payload: sorted keys, no whitespace (orjson)."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def parse_line_reference(raw: bytes) -> ValidEvent | None:
    """Validate one physical line of JSON Lines; None for a blank line, EventError for a bad one.

    This is the definition of a valid line and of every reject reason;
    `parse_line` gives the same answers faster.
    """
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
        raise EventError(_explain_json_error(str(exc), raw)) from None
    return validate_event(obj)


_NON_JSON_NUMBER = re.compile(rb"[:\[,]\s*-?(NaN|Infinity)\b")


def _explain_json_error(reason: str, raw: bytes) -> str:
    """The JSON parser's message, worded for one line of a file."""
    found = _NON_JSON_NUMBER.search(raw)
    if found is not None:
        return f"invalid JSON: {found.group(1).decode()} is not a JSON number (use a finite number)"
    return "invalid JSON: " + reason.replace(": line 1 column ", ": column ")


def _is_bad_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def without_absent_fields(obj: dict[str, Any], named: frozenset[str]) -> dict[str, Any]:
    """The event without its contract fields given as null (section 2b: they count as absent).

    An extra field given as null is kept: extras are kept, never dropped (section 1), so
    `{"note": null}` is stored and differs from an event without `note`.
    """
    return {k: v for k, v in obj.items() if v is not None or k not in named}


# ---- parse_line: the fast path of parse_line_reference ----------------------------------------

# parse_line_reference is the definition of a valid line and of every reject reason. On
# million-line files its generic per-field dispatch is the main cost, so lines are first tried on
# this specialised path: it accepts only what parse_line_reference accepts, returns an equal
# ValidEvent, and hands anything unusual (errors included) to parse_line_reference itself.
# tests/test_validate.py checks the two agree.

_S, _T, _N, _B, _M, _P, _A = range(7)
_CODES = {Kind.STRING: _S, Kind.TIMESTAMP: _T, Kind.NUMBER: _N, Kind.BOOL: _B, Kind.STR_MAP: _M,
          Kind.POLICY_CHECKS: _P, Kind.ANY: _A}
_INF = float("inf")
_NO_LIMIT = 1 << 62  # a string length no line reaches
_PLANS = {
    etype: tuple(
        (spec.name, _CODES[spec.kind], spec.required, frozenset(spec.choices) if spec.choices else None,
         -_INF if spec.minimum is None else spec.minimum, spec.exclusive_minimum,
         _INF if spec.maximum is None else spec.maximum, spec.max_length or _NO_LIMIT)
        for spec in specs)
    for etype, specs in FIELDS.items()
}
_CANONICAL_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?Z\Z").match
_GOOD_DATES: dict[str, bool] = {}
_CHECK_RESULTS = frozenset(CHECK_RESULTS)


class Unusual(Exception):
    """Leave this line to parse_line."""


def parse_line(raw: bytes) -> ValidEvent | None:
    """Exactly `parse_line_reference(raw)`, faster on the common shape of valid lines."""
    if raw[:1] != b"{":
        return parse_line_reference(raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return parse_line_reference(raw)
    etype = obj.get("type")
    plan = _PLANS.get(etype) if etype.__class__ is str else None
    if plan is not None:
        try:
            return _fast_validate(obj, plan)
        except Unusual:
            pass
    return validate_event(obj)


def _fast_validate(obj: dict[str, Any], plan: tuple[Any, ...]) -> ValidEvent:
    # The parsed object is reused as the payload when it has no nulls; the values written back
    # below are already canonical, so the fallback to validate_event sees an equivalent object.
    payload = obj if None not in obj.values() else without_absent_fields(obj, KNOWN_KEYS[obj["type"]])
    get = payload.get
    for name, code, required, choices, low, exclusive, high, longest in plan:
        value = get(name)
        if value is None:
            if required:
                raise Unusual
            continue
        cls = value.__class__
        if code == _S:
            if cls is not str or (choices is not None and value not in choices) or len(value) > longest:
                raise Unusual
        elif code == _T:
            payload[name] = fast_timestamp(value)
        elif code == _N:
            if cls is int:
                value = float(value)
            elif cls is not float:
                raise Unusual
            value += 0.0  # -0.0 becomes 0.0, as in _check_number
            if not (low < value if exclusive else low <= value) or value > high or value - value != 0.0:
                raise Unusual
            payload[name] = value
        elif code == _B:
            if cls is not bool:
                raise Unusual
        elif code == _M:
            if cls is not dict or any(v.__class__ is not str for v in value.values()):
                raise Unusual
        elif code == _P and (cls is not list or not all(
                c.__class__ is dict and c.get("rule").__class__ is str and c.get("result") in _CHECK_RESULTS
                for c in value)):
            raise Unusual
    etype = obj["type"]
    if etype == "review":
        decided, enqueued = payload["decided_at"], payload["enqueued_at"]
        # Canonical UTC strings of one length order like their instants.
        if len(decided) != len(enqueued) or decided < enqueued:
            raise Unusual
    if etype == "outcome":
        return ValidEvent(etype, event_key(etype, payload), payload)
    return ValidEvent(etype, payload["id"], payload)


def fast_timestamp(value: Any) -> str:
    """The canonical form of an already canonical-looking timestamp (else Unusual)."""
    if value.__class__ is not str or _CANONICAL_TS(value) is None:
        raise Unusual
    if not (value[11:13] <= "23" and value[14:16] <= "59" and value[17:19] <= "59"):
        raise Unusual
    good = _GOOD_DATES.get(value[:10])
    if good is None:
        try:
            good = format_timestamp(parse_timestamp(value[:10] + "T00:00:00Z"))[:10] == value[:10]
        except (EventError, ValueError, OverflowError):
            good = False
        if len(_GOOD_DATES) < 100_000:
            _GOOD_DATES[value[:10]] = good
    if not good:
        raise Unusual
    return value[:19] + "Z" if value.endswith(".000000Z") else value
