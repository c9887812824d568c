"""The pydantic models and JSON Schema of the interchange format agree with the line validator.

`collectors.validate` (fast, hand-written) and `collectors.schema` (pydantic,
JSON Schema) are both built from the field tables of `collectors.contract`.
Hypothesis throws valid events and mutated ones at both and checks they
accept exactly the same candidates.

Documented differences:
- pydantic models vs validate_event: none. The review model also enforces
  decided_at >= enqueued_at.
- JSON Schema vs validate_event: JSON Schema cannot compare two fields, so
  it accepts a review decided before it was enqueued (the description says
  so). Its timestamp pattern checks shape and ranges but not calendar
  validity (30 February, year 0000); validators that assert `format:
  date-time` catch those. NaN and Infinity are not JSON, so the schema is
  not asked about them. Python's `re` lets `$` match before a final newline,
  so jsonschema-in-Python accepts "…Z\\n" where ECMA-262 regexes do not.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from collectors.cli import app
from collectors.contract import FIELDS, FieldSpec, Kind
from collectors.schema import MODELS, SCHEMA_DIALECT, TIMESTAMP_PATTERN, json_schema, parse_event
from collectors.validate import EventError, parse_timestamp, validate_event

jsonschema = pytest.importorskip("jsonschema")

# ---- strategies -------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json_scalar = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | _text
_json = st.recursive(_json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 strings in every form the contract allows: T/t/space, Z/z/offsets, 0-9 fraction digits.

    Every year 0001..9999, but not the first and last day: there an offset can push the UTC instant
    out of range, which the contract rejects (invalid_value draws those instants on purpose).
    """
    day = draw(st.dates(min_value=dt.date(1, 1, 2), max_value=dt.date(9999, 12, 30)))
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.text("0123456789", min_size=0, max_size=9))
    sep = draw(st.sampled_from("TtT "))
    zone = draw(st.sampled_from(["Z", "z"]) | st.builds(
        lambda sign, hh, mm: f"{sign}{hh:02d}:{mm:02d}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)))
    return f"{day.isoformat()}{sep}{h:02d}:{m:02d}:{s:02d}{'.' + frac if frac else ''}{zone}"


def test_id_and_slice_fields_are_limited_to_256_characters() -> None:
    """Ids and slice fields are indexed (PostgreSQL's b-tree takes ~2.7 KB at most); free text is not limited."""
    limited = {(etype, spec.name) for etype, specs in FIELDS.items() for spec in specs if spec.max_length}
    assert all(spec.max_length == 256 for specs in FIELDS.values() for spec in specs if spec.max_length)
    assert {name for _etype, name in limited} == {
        "id", "decision_id", "agent_id", "model_version", "policy_version", "risk_class", "queue", "action_type",
        "reviewer_id", "reason_code", "actor"}
    assert ("change", "reason") not in limited
    event = {"type": "change", "id": "c", "changed_at": "2026-01-01T00:00:00Z", "actor": "\U0001F600" * 256,
             "kind": "other", "reason": "x" * 10_000}
    assert _validator_accepts(event)[0] and _pydantic_accepts(event)
    jsonschema.Draft202012Validator(json_schema()).validate(event)
    event["actor"] += "a"
    assert _validator_accepts(event) == (False, "actor is 257 characters long, longer than the limit of 256")
    assert not _pydantic_accepts(event)
    assert not jsonschema.Draft202012Validator(json_schema()).is_valid(event)


def _valid_number(spec: FieldSpec) -> st.SearchStrategy[Any]:
    low = spec.minimum if spec.minimum is not None else -1e9
    high = spec.maximum if spec.maximum is not None else 1e12
    floats = st.floats(low, high, exclude_min=spec.exclusive_minimum)
    ints = st.integers(math.ceil(low) + (1 if spec.exclusive_minimum and low == int(low) else 0), int(min(high, 10**9)))
    edges = [v for v in (low, high, 0, 1) if low <= v <= high and not (spec.exclusive_minimum and v == low)]
    return floats | ints | st.sampled_from(edges)


def valid_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A value the contract accepts for this field."""
    kind = spec.kind
    if kind is Kind.STRING:
        return st.sampled_from(spec.choices) if spec.choices else _text
    if kind is Kind.TIMESTAMP:
        return timestamps()
    if kind is Kind.NUMBER:
        return _valid_number(spec)
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.STR_MAP:
        return st.dictionaries(_text, _text, max_size=3)
    if kind is Kind.POLICY_CHECKS:
        item = st.fixed_dictionaries({"rule": _text, "result": st.sampled_from(["pass", "fail", "warn"])},
                                     optional={"note": _json})
        return st.lists(item, max_size=3)
    return _json


def invalid_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A non-null value the contract rejects for this field (wrong type, range, enum or shape)."""
    kind = spec.kind
    not_string = st.integers() | st.floats() | st.booleans() | st.lists(_json_scalar, max_size=2) | st.just({})
    if kind is Kind.STRING:
        bad_enum = _text.filter(lambda t: t not in (spec.choices or ())) | st.sampled_from(
            [c.upper() for c in spec.choices or ("x",)] + [c + " " for c in spec.choices or ("x",)])
        if spec.max_length is not None:  # also 4-byte characters: the limit counts characters, not bytes
            too_long = st.text("a\u00e9\U0001F600", min_size=spec.max_length + 1, max_size=spec.max_length + 3)
            return not_string | too_long
        return not_string | bad_enum if spec.choices else not_string
    if kind is Kind.TIMESTAMP:
        zoneless = timestamps().map(lambda t: t.rstrip("Zz")[:-6] if t[-6] in "+-" else t.rstrip("Zz"))
        return not_string | zoneless | st.sampled_from([
            "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00+24:00", "2026-01-01", "2026-01-01T00:00Z", "0000-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z\n", " 2026-01-01T00:00:00Z", "2026-01-01T00:00:00+0100", "yesterday",
            "２０２６-01-01T00:00:00Z", "2026-01-01T00:00:00.Z", "1767225600",
            "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999999-00:01"])
    if kind is Kind.NUMBER:
        wrong = st.booleans() | _valid_number(spec).map(str) | st.lists(st.integers(), max_size=1) | st.just({})
        non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
        out = []
        if spec.minimum is not None:
            out.append(st.floats(max_value=spec.minimum, exclude_max=not spec.exclusive_minimum, allow_nan=False))
        if spec.maximum is not None:
            out.append(st.floats(min_value=spec.maximum, exclude_min=True, allow_nan=False))
        return st.one_of(wrong, non_finite, *out)
    if kind is Kind.BOOL:
        return st.sampled_from([0, 1, 0.0, "true", "false", [], {}]) | _text
    if kind is Kind.STR_MAP:
        bad_map = st.dictionaries(_text, st.integers() | st.booleans() | st.lists(_text, max_size=1), min_size=1,
                                  max_size=2)
        return bad_map | st.lists(_text, max_size=2) | _text | st.integers()
    if kind is Kind.POLICY_CHECKS:
        bad_item = st.sampled_from([{"rule": "r"}, {"result": "pass"}, {"rule": 1, "result": "pass"},
                                    {"rule": "r", "result": "PASS"}, {"rule": "r", "result": None},
                                    {"rule": None, "result": "fail"}, "pass", 3, []])
        return st.lists(bad_item, min_size=1, max_size=2) | st.just({"rule": "r", "result": "pass"}) | _text
    return st.nothing()  # Kind.ANY takes every value


@st.composite
def valid_events(draw: st.DrawFn, etype: str | None = None) -> dict[str, Any]:
    """A contract-valid event: required fields, some optional ones (some as null), extras."""
    etype = etype or draw(st.sampled_from(sorted(FIELDS)))
    event: dict[str, Any] = {"type": etype}
    for spec in FIELDS[etype]:
        if spec.required or draw(st.booleans()):
            event[spec.name] = draw(valid_value(spec))
        elif draw(st.integers(0, 4)) == 0:
            event[spec.name] = None  # null counts as absent
    names = {spec.name for spec in FIELDS[etype]} | {"type"}
    event.update(draw(st.dictionaries(_text.filter(lambda k: k not in names), _json, max_size=3)))
    if etype == "review":
        if draw(st.booleans()):
            event["decided_at"] = event["enqueued_at"]  # ties are allowed
        elif parse_timestamp(event["decided_at"]) < parse_timestamp(event["enqueued_at"]):
            event["decided_at"], event["enqueued_at"] = event["enqueued_at"], event["decided_at"]
    return event


@st.composite
def candidates(draw: st.DrawFn) -> Any:
    """A valid event, or one broken in one or two ways."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([[], "decision", 3, None, True]))
    event = draw(valid_events())
    specs = FIELDS[event["type"]]
    for _ in range(draw(st.integers(0, 2))):
        mutation = draw(st.sampled_from(["drop", "null", "invalid", "invalid", "invalid", "type", "order"]))
        spec = draw(st.sampled_from(specs))
        if mutation == "drop":
            event.pop(spec.name, None)
        elif mutation == "null":
            event[spec.name] = None
        elif mutation == "invalid" and spec.kind is not Kind.ANY:
            event[spec.name] = draw(invalid_value(spec))
        elif mutation == "type":
            bad = draw(st.sampled_from([None, "Decision", "reviews", "", 1, ["review"]]) | st.just(...))
            if bad is ...:
                event.pop("type", None)
            else:
                event["type"] = bad
        elif mutation == "order" and event.get("type") == "review":
            event["enqueued_at"], event["decided_at"] = "2026-01-02T00:00:00Z", "2026-01-01T23:59:59.999999Z"
    return event


def _validator_accepts(candidate: Any) -> tuple[bool, str]:
    try:
        validate_event(candidate)
    except EventError as exc:  # any other exception is a crash and fails the test
        return False, str(exc)
    return True, ""


def _pydantic_accepts(candidate: Any) -> bool:
    try:
        parse_event(candidate)
    except ValidationError:
        return False
    return True


# ---- the JSON Schema ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json_schema()


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == SCHEMA_DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)
    for etype in FIELDS:
        jsonschema.Draft202012Validator.check_schema(json_schema(etype))


def test_union_is_a_one_of_over_the_four_types(schema: dict[str, Any]) -> None:
    refs = [branch["$ref"].rsplit("/", 1)[-1] for branch in schema["oneOf"]]
    assert [schema["$defs"][r]["properties"]["type"]["const"] for r in refs] == list(FIELDS)
    assert schema["discriminator"]["propertyName"] == "type"


@pytest.mark.parametrize("etype", list(FIELDS))
def test_schema_covers_every_field_of_the_table(schema: dict[str, Any], etype: str) -> None:
    definition = schema["$defs"][f"{etype.capitalize()}Event"]
    assert definition == {k: v for k, v in json_schema(etype).items() if not k.startswith("$")
                          and k not in ("title", "description")} | {"title": etype, "description": definition["description"]}
    assert definition["additionalProperties"] is True  # extras are kept, never dropped
    assert definition["description"]
    properties = definition["properties"]
    assert list(properties) == ["type"] + [spec.name for spec in FIELDS[etype]]
    assert definition["required"] == ["type"] + [spec.name for spec in FIELDS[etype] if spec.required]
    for spec in FIELDS[etype]:
        prop = properties[spec.name]
        assert prop["title"] == spec.name and prop["description"]
        if spec.description:
            assert prop["description"].startswith(spec.description)
        branch = prop if spec.required else _non_null_branch(prop)
        _check_kind(spec, branch, schema)


def _non_null_branch(prop: dict[str, Any]) -> dict[str, Any]:
    assert prop["default"] is None and {"type": "null"} in prop["anyOf"]  # null counts as absent
    (branch,) = [b for b in prop["anyOf"] if b != {"type": "null"}]
    return branch


def _check_kind(spec: FieldSpec, branch: dict[str, Any], schema: dict[str, Any]) -> None:
    kind = spec.kind
    if kind is Kind.STRING:
        assert branch["type"] == "string"
        assert branch.get("enum") == (list(spec.choices) if spec.choices else None)
        assert branch.get("maxLength") == spec.max_length
    elif kind is Kind.TIMESTAMP:
        assert (branch["type"], branch["format"], branch["pattern"]) == ("string", "date-time", TIMESTAMP_PATTERN)
    elif kind is Kind.NUMBER:
        assert branch["type"] == "number"
        low = "exclusiveMinimum" if spec.exclusive_minimum else "minimum"
        assert branch.get(low) == spec.minimum and branch.get("maximum") == spec.maximum
    elif kind is Kind.BOOL:
        assert branch["type"] == "boolean"
    elif kind is Kind.STR_MAP:
        assert (branch["type"], branch["additionalProperties"]) == ("object", {"type": "string"})
    elif kind is Kind.POLICY_CHECKS:
        item = schema["$defs"][branch["items"]["$ref"].rsplit("/", 1)[-1]]
        assert branch["type"] == "array" and item["required"] == ["rule", "result"]
        assert item["properties"]["result"]["enum"] == ["pass", "fail", "warn"]
    else:
        assert "type" not in branch  # any JSON value


def test_review_cross_field_rule_is_described(schema: dict[str, Any]) -> None:
    assert ">= enqueued_at" in schema["$defs"]["ReviewEvent"]["properties"]["decided_at"]["description"]


# ---- the models agree with the validator ------------------------------------------------------

@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(candidates())
def test_pydantic_models_accept_exactly_what_validate_event_accepts(candidate: Any) -> None:
    accepted, reason = _validator_accepts(candidate)
    assert _pydantic_accepts(candidate) == accepted, reason or "validate_event accepted it"


@settings(max_examples=150)
@given(valid_events())
def test_valid_events_are_accepted_by_all_three(event: dict[str, Any]) -> None:
    assert _validator_accepts(event)[0]
    model = parse_event(event)
    assert type(model) is MODELS[event["type"]]
    extras = {k: v for k, v in event.items() if k not in type(model).model_fields}
    assert model.__pydantic_extra__ == extras  # unknown fields are kept as attributes
    _union_validator().validate(event)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


@functools.cache
def _union_validator() -> Any:
    return jsonschema.Draft202012Validator(json_schema())


def _documented_gap(candidate: dict[str, Any], reason: str) -> bool:
    """Rejections the JSON Schema cannot express (see the module docstring)."""
    if any(gap in reason for gap in ("is before enqueued_at", "is not a valid date/time", "is out of range")):
        return True
    return "is not RFC 3339" in reason and any(isinstance(v, str) and v.endswith("\n") for v in candidate.values())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(candidates())
def test_json_schema_agrees_with_validate_event_on_json_documents(candidate: Any) -> None:
    assume(_finite(candidate))
    validator = _union_validator()
    accepted, reason = _validator_accepts(candidate)
    schema_ok = validator.is_valid(json.loads(json.dumps(candidate)))
    if accepted:
        assert schema_ok, "the schema rejects an event the store accepts"
    elif schema_ok:
        assert _documented_gap(candidate, reason), reason


@pytest.mark.parametrize("etype", list(FIELDS))
@settings(max_examples=40)
@given(data=st.data())
def test_one_type_schema_accepts_its_valid_events(etype: str, data: st.DataObject) -> None:
    event = data.draw(valid_events(etype))
    jsonschema.Draft202012Validator(json_schema(etype)).validate(event)


def test_the_cross_field_rule_is_in_the_model() -> None:
    review = {"type": "review", "id": "r", "decision_id": "d", "reviewer_id": "u", "kind": "primary",
              "enqueued_at": "2026-01-01T10:00:00+01:00", "decided_at": "2026-01-01T09:00:00Z", "verdict": "edit"}
    assert _validator_accepts(review)[0] and _pydantic_accepts(review)  # equal instants
    review["decided_at"] = "2026-01-01T08:59:59.999Z"
    assert not _validator_accepts(review)[0] and not _pydantic_accepts(review)


# ---- timestamp edges and a known validator bug (collectors/validate.py) ------------------------

def test_canonical_timestamp_of_a_year_before_1000_is_rfc3339() -> None:
    event = {"type": "change", "id": "c", "changed_at": "0999-12-31T00:00:00Z", "actor": "a", "kind": "other"}
    assert validate_event(event).payload["changed_at"] == "0999-12-31T00:00:00Z"


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_instant_is_an_event_error(stamp: str) -> None:
    event = {"type": "change", "id": "c", "changed_at": stamp, "actor": "a", "kind": "other"}
    with pytest.raises(EventError, match="out of range"):
        validate_event(event)
    assert not _pydantic_accepts(event)


def test_huge_integer_is_an_event_error() -> None:
    event = {"type": "decision", "id": "d", "proposed_at": "2026-01-01T00:00:00Z", "agent_id": "a",
             "model_version": "m", "risk_class": "low", "action_type": "x", "confidence": 0.5,
             "route": "auto", "model_cost": 10**400}
    with pytest.raises(EventError):
        validate_event(event)


# ---- the command --------------------------------------------------------------------------------

def test_cli_prints_the_union_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(json_schema()))


@pytest.mark.parametrize("etype", list(FIELDS))
def test_cli_prints_one_type(etype: str) -> None:
    result = CliRunner().invoke(app, ["schema", "--type", etype])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["$schema"] == SCHEMA_DIALECT and document["properties"]["type"]["const"] == etype


def test_cli_rejects_an_unknown_type() -> None:
    assert CliRunner().invoke(app, ["schema", "--type", "verdict"]).exit_code == 2
