"""Pydantic models and the JSON Schema of the interchange format, built from the contract's field tables.

Producers in other languages validate their output with the JSON Schema
(`hitl-tower schema`); Python producers can use the models. Both come from
`collectors.contract`, like the line validator, so all three agree on what a
valid event is (tests/test_schema.py checks it). One rule cannot be written in
JSON Schema: a review's decided_at must not precede its enqueued_at. The
review model enforces it; the schema states it in the field's description.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, MaxLen
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from collectors.contract import CHECK_RESULTS, FIELDS, FieldSpec, Kind
from collectors.validate import EventError, format_timestamp, parse_timestamp

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:hitl-tower:schema:interchange-event"

# RFC 3339 date-time with a zone, as collectors.validate accepts it ("T", "t" or a space;
# "Z", "z" or an offset). Calendar validity (no 30 February) is left to `format`.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)

TYPE_DESCRIPTIONS = {
    "decision": "An agent's proposed action.",
    "review": "One human judgement on one decision.",
    "outcome": "Ground truth about a decision, known later; a later outcome supersedes an earlier one.",
    "change": "A threshold, policy or model change, marking time series for pre/post comparison.",
}
_KIND_HINTS = {
    Kind.TIMESTAMP: "RFC 3339 timestamp with a zone, e.g. 2026-11-24T09:30:00Z or +01:00",
    Kind.STR_MAP: "object of string to string",
    Kind.POLICY_CHECKS: "list of {rule, result: pass/fail/warn}",
    Kind.ANY: "any JSON value",
}


def _check_timestamp(value: str) -> str:
    try:
        format_timestamp(parse_timestamp(value))
    except EventError as exc:
        raise ValueError(str(exc)) from None
    return value


Timestamp = Annotated[str, Strict(), AfterValidator(_check_timestamp),
                      WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN})]


class PolicyCheck(BaseModel):
    """One guardrail result at decision time."""

    model_config = ConfigDict(extra="allow")

    rule: Annotated[str, Strict()] = Field(title="rule", description="the guardrail rule's name")
    result: Literal["pass", "fail", "warn"] = Field(title="result", description="one of " + ", ".join(CHECK_RESULTS))


def _python_type(spec: FieldSpec) -> Any:
    """The strict pydantic type of one field: JSON numbers only, enums as Literal, ranges as constraints."""
    if spec.kind is Kind.STRING:
        if spec.choices:
            return Literal[spec.choices]  # type: ignore[valid-type]
        if spec.max_length is not None:
            return Annotated[str, Strict(), MaxLen(spec.max_length)]
        return Annotated[str, Strict()]
    if spec.kind is Kind.TIMESTAMP:
        return Timestamp
    if spec.kind is Kind.NUMBER:
        bounds: list[Any] = []
        if spec.minimum is not None:
            bounds.append(Gt(spec.minimum) if spec.exclusive_minimum else Ge(spec.minimum))
        if spec.maximum is not None:
            bounds.append(Le(spec.maximum))
        return Annotated[float, Strict(), AllowInfNan(False), *bounds]
    if spec.kind is Kind.BOOL:
        return Annotated[bool, Strict()]
    if spec.kind is Kind.STR_MAP:
        return Annotated[dict[Annotated[str, Strict()], Annotated[str, Strict()]], Strict()]
    if spec.kind is Kind.POLICY_CHECKS:
        return Annotated[list[PolicyCheck], Strict()]
    return Any


def _description(spec: FieldSpec) -> str:
    parts = [spec.description] if spec.description else []
    if spec.choices:
        parts.append("one of " + ", ".join(spec.choices))
    elif spec.kind in _KIND_HINTS:
        parts.append(_KIND_HINTS[spec.kind])
    elif spec.kind is Kind.NUMBER:
        parts.append(_range(spec))
    elif spec.max_length is not None:
        parts.append(f"at most {spec.max_length} characters")
    parts.append("required" if spec.required else "optional; null counts as absent")
    return "; ".join(parts)


def _range(spec: FieldSpec) -> str:
    low = "" if spec.minimum is None else f"{'>' if spec.exclusive_minimum else '>='} {spec.minimum:g}"
    high = "" if spec.maximum is None else f"<= {spec.maximum:g}"
    return "JSON number " + " and ".join(p for p in (low, high) if p) if low or high else "JSON number"


def _decided_after_enqueued(model: Any) -> Any:
    decided, enqueued = model.decided_at, model.enqueued_at
    if parse_timestamp(decided) < parse_timestamp(enqueued):
        raise ValueError(f"decided_at {decided} is before enqueued_at {enqueued}")
    return model


def _event_model(etype: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "type": (Literal[etype], Field(title="type", description=f"always {etype!r}")),  # type: ignore[valid-type]
    }
    for spec in FIELDS[etype]:
        python_type = _python_type(spec)
        info = Field(title=spec.name, description=_description(spec))
        fields[spec.name] = (python_type, info) if spec.required else (python_type | None, _optional(info))
    validators: dict[str, Any] = {}
    if etype == "review":
        validators["decided_after_enqueued"] = model_validator(mode="after")(_decided_after_enqueued)
    return create_model(  # type: ignore[call-overload, no-any-return]
        etype.capitalize() + "Event",
        __config__=ConfigDict(extra="allow", protected_namespaces=(), title=etype),
        __doc__=TYPE_DESCRIPTIONS[etype],
        __validators__=validators,
        **fields,
    )


def _optional(info: Any) -> Any:
    return Field(None, title=info.title, description=info.description)


MODELS: dict[str, type[BaseModel]] = {etype: _event_model(etype) for etype in FIELDS}
"""One pydantic model per event type; unknown fields are kept as extras, as the contract says."""

InterchangeEvent = Annotated[functools.reduce(operator.or_, MODELS.values()),  # type: ignore[valid-type]
                             Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(InterchangeEvent)  # type: ignore[arg-type]  # pydantic >= 2.14 stubs


def parse_event(obj: Any) -> BaseModel:
    """Validate one parsed JSON value as an interchange event (raises pydantic.ValidationError)."""
    return EVENT_ADAPTER.validate_python(obj)  # type: ignore[no-any-return]


def json_schema(etype: str | None = None) -> dict[str, Any]:
    """The draft 2020-12 JSON Schema of one interchange line, or of one event type."""
    if etype is None:
        schema = EVENT_ADAPTER.json_schema()
        title, description = "HITL Control Tower interchange event", (
            "One line of the JSON Lines interchange format: a decision, review, outcome or change, "
            "chosen by its type field. Fields not named here are kept as attributes.")
    else:
        schema = MODELS[etype].model_json_schema()
        title, description = f"HITL Control Tower {etype} event", schema.pop("description", "")
    head = {"$schema": SCHEMA_DIALECT, "$id": _schema_id(etype), "title": title, "description": description}
    schema.pop("title", None)
    return {**head, **schema}


def _schema_id(etype: str | None) -> str:
    return SCHEMA_ID if etype is None else SCHEMA_ID.replace("interchange-event", f"{etype}-event")
