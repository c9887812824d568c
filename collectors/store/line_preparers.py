"""Validate and prepare a line in one pass: one generated function per event type.

Bulk ingest spends most of its per-line time in two generic loops: validation
(`collectors.validate.parse_line`, which interprets each type's field plan)
and row building (`collectors.store.prepared`, which walks the fields again).
Here each type gets a function written out from the contract's field table
(`collectors.contract.FIELDS`), the way `dataclasses` writes `__init__`: the
checks, the payload fixes, the canonical JSON and the row values in straight-line
code, with no plan to interpret and no intermediate `ValidEvent`.

These functions only take the common shape of a valid line. Anything else (a
missing field, a wrong type, a timestamp with an offset, an out-of-range
number...) raises `Unusual`, and `prepare_line` hands the line to the
reference path (`prepared.prepare_line`), which gives the verdict and the
reason. So the fast path returns exactly what the reference path returns, or
nothing: tests/test_ingest.py checks that on tricky lines, mutations and
synthetic traffic. `source(etype)` shows the code of one type.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any

import orjson

from collectors.contract import CHECK_RESULTS, FIELDS, KNOWN_KEYS, FieldSpec, Kind
from collectors.store import prepared
from collectors.store.prepared import Prepared
from collectors.validate import Unusual, fast_timestamp, outcome_key, without_absent_fields

__all__ = ["prepare_line", "source"]


def prepare_line(raw: bytes) -> Prepared | None:
    """Exactly `prepared.prepare_line(raw)`: None for a blank line, EventError for a bad one; faster."""
    if raw[:1] == b"{":
        try:
            obj = _loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if obj.__class__ is dict:
            etype = obj.get("type")
            fast = _PREPARERS.get(etype) if etype.__class__ is str else None
            if fast is not None:
                try:
                    return fast(obj)
                except Unusual:
                    pass  # the reference path parses the line afresh: `fast` may have changed obj
    return prepared.prepare_line(raw)


def source(etype: str) -> str:
    """The generated source of one type's preparer (for reading and debugging)."""
    return _SOURCES[etype]


# ---- code generation ----------------------------------------------------------------------------

def _check_lines(spec: FieldSpec, var: str) -> list[str]:
    """Statements that raise Unusual unless `var` (a present value) is of the common valid shape."""
    kind, name = spec.kind, spec.name
    if kind is Kind.STRING:
        test = f"{var}.__class__ is not str"
        if spec.choices:
            test += f" or {var} not in _CHOICES[{name!r}]"
        if spec.max_length is not None:
            test += f" or len({var}) > {spec.max_length}"
        return [f"if {test}: raise Unusual"]
    if kind is Kind.TIMESTAMP:
        return [f"{var} = fast_timestamp({var})", f"payload[{name!r}] = {var}"]
    if kind is Kind.NUMBER:
        out_of_range = [f"{var} - {var} != 0.0"]  # NaN or infinite
        if spec.minimum is not None:
            out_of_range.append(f"{var} {'<=' if spec.exclusive_minimum else '<'} {float(spec.minimum)!r}")
        if spec.maximum is not None:
            out_of_range.append(f"{var} > {float(spec.maximum)!r}")
        return [
            f"if {var}.__class__ is int: {var} = float({var})",
            f"elif {var}.__class__ is not float: raise Unusual",
            f"{var} += 0.0",  # -0.0 becomes 0.0, as in validate._check_number
            f"if {' or '.join(out_of_range)}: raise Unusual",
            f"payload[{name!r}] = {var}",
        ]
    if kind is Kind.BOOL:
        return [f"if {var}.__class__ is not bool: raise Unusual"]
    if kind is Kind.STR_MAP:
        return [f"if {var}.__class__ is not dict: raise Unusual",
                f"for _v in {var}.values():",
                "    if _v.__class__ is not str: raise Unusual"]
    if kind is Kind.POLICY_CHECKS:
        return [f"if {var}.__class__ is not list: raise Unusual",
                f"for _c in {var}:",
                ("    if _c.__class__ is not dict or _c.get('rule').__class__ is not str "
                 "or _c.get('result') not in _CHECK_RESULTS: raise Unusual")]
    return []  # Kind.ANY


def _row_value(spec: FieldSpec, var: str) -> str:
    """The expression of a present value's row value (as `prepared` builds it)."""
    if spec.kind is Kind.TIMESTAMP:
        return f"_micros({var})"
    if spec.name in prepared.JSON_COLUMNS:
        return f"_json_text({var})"
    if spec.kind is Kind.STRING and spec.name not in prepared.UNIQUE_TEXT:
        return f"_intern({var})"
    return var


def _generate(etype: str) -> str:
    specs = FIELDS[etype]
    var = {spec.name: f"v_{spec.name}" for spec in specs}
    body = [
        "payload = obj if None not in obj.values() else _without_absent_fields(obj, _KNOWN)",
        "get = payload.get",
    ]
    values = ["None", "key"] if etype == "outcome" else ["None"]  # seq (and the outcome's key)
    optional = []
    for spec in specs:
        v = var[spec.name]
        body.append(f"{v} = get({spec.name!r})")
        checks = _check_lines(spec, v)
        if spec.required:
            if spec.kind is Kind.ANY:  # every other kind's class test rejects None already
                body.append(f"if {v} is None: raise Unusual")
            body += checks
            values.append(_row_value(spec, v))
        else:
            optional.append(v)
            if checks:
                body.append(f"if {v} is not None:")
                body += [f"    {line}" for line in checks]
            row_value = _row_value(spec, v)
            values.append(v if row_value == v else f"None if {v} is None else {row_value}")
    if etype == "review":
        # Canonical UTC strings of one length order like their instants.
        body.append("if len(v_decided_at) != len(v_enqueued_at) or v_decided_at < v_enqueued_at: raise Unusual")
    body += [
        "canonical = _dumps(payload, option=_SORT_KEYS)",
        "if b'\\\\u0000' in canonical: raise Unusual",  # the reference path says which field
    ]
    required = 1 + sum(spec.required for spec in specs)  # "type" and the required fields
    present = " + ".join([str(required), *(f"({v} is not None)" for v in optional)])
    body.append(f"extra = _json_text({{k: v for k, v in payload.items() if k not in _KNOWN}}) "
                f"if len(payload) > {present} else None")
    values += ["extra", "None"]  # extras, then the hash the writer fills in
    if etype == "decision":
        values.append("min(int(10 * v_confidence), 9)")  # confidence is in [0, 1]: int() is floor()
    # An outcome's key digests its canonical JSON, numbers in extras in one form (validate.outcome_key).
    body.append("key = _outcome_key(payload) if extra is not None else _sha256(canonical).hexdigest()"
                if etype == "outcome" else "key = v_id")
    body.append(f"row = [{', '.join(values)}]")
    decision_id = "v_decision_id" if "decision_id" in var else "None"
    body.append(f"return {etype!r}, key, canonical, row, {decision_id}")
    return f"def prepare_{etype}(obj):\n" + "".join(f"    {line}\n" for line in body)


def _compile(etype: str) -> tuple[Callable[[dict[str, Any]], Prepared], str]:
    code = _generate(etype)
    namespace: dict[str, Any] = {
        "Unusual": Unusual, "fast_timestamp": fast_timestamp, "_without_absent_fields": without_absent_fields,
        "_CHOICES": {spec.name: frozenset(spec.choices) for spec in FIELDS[etype] if spec.choices},
        "_CHECK_RESULTS": frozenset(CHECK_RESULTS), "_micros": prepared.micros, "_json_text": prepared.json_text,
        "_intern": sys.intern, "_dumps": orjson.dumps, "_SORT_KEYS": orjson.OPT_SORT_KEYS,
        "_sha256": hashlib.sha256, "_outcome_key": outcome_key, "_KNOWN": KNOWN_KEYS[etype],
    }
    exec(compile(code, f"<line_preparers:{etype}>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace[f"prepare_{etype}"], code


_loads = orjson.loads
_COMPILED = {etype: _compile(etype) for etype in FIELDS}
_PREPARERS = {etype: fn for etype, (fn, _code) in _COMPILED.items()}
_SOURCES = {etype: code for etype, (_fn, code) in _COMPILED.items()}
