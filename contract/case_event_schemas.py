"""JSON Schemas and CloudEvent headers of the case-events topic's messages."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, create_model

from contract.case_events import (
    ENUM_OF_FIELD,
    ORIGIN_HEADERS,
    ORIGIN_MEANS,
    PERSONAL_FIELDS,
    RETIRED_TYPES,
    TRACE_HEADERS,
    left_out,
    payload_fields,
    type_name,
)
from contract.schema_parts import (
    DECIMAL,
    DRAFT,
    GAP_RULE,
    SCHEMA_BASE,
    kafka_message,
    text,
    without_property_titles,
)

# W3C Trace Context version 00 (later versions may append fields after a dash).
TRACEPARENT = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$"


def json_schema(event_class: type, *, include_personal: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an event's analytics payload."""
    kind = type_name(event_class)
    dropped = left_out(kind, include_personal)
    hints = typing.get_type_hints(event_class)
    fields: dict[str, Any] = {}
    for f in payload_fields(event_class):
        if f.name not in dropped:
            hint = hints[f.name]
            if f.name in ENUM_OF_FIELD and hint in (str, str | None):
                enum = ENUM_OF_FIELD[f.name]
                hint = enum if hint is str else enum | None
            elif f.name in ENUM_OF_FIELD and hint == tuple[str, ...]:
                hint = tuple[ENUM_OF_FIELD[f.name], ...]  # type: ignore[name-defined,valid-type]
            default: Any = ... if f.default is dataclasses.MISSING else f.default
            if f.default_factory is not dataclasses.MISSING:
                default = Field(default_factory=f.default_factory)
            fields[f.name] = (hint, default)
    model = create_model(event_class.__name__, __config__=ConfigDict(extra="forbid"), **fields)
    schema: dict[str, Any] = without_property_titles(TypeAdapter(model).json_schema())
    description = summary(event_class)
    personal = sorted(PERSONAL_FIELDS[kind] - schema["properties"].keys())
    if personal:
        description += (
            f" Personal fields left out unless the deployment publishes personal data: "
            f"{', '.join(personal)}."
        )
    return schema | {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_BASE}events/{kind}.json",
        "title": kind,
        "description": description,
    }


def retired_json_schema(kind: str) -> dict[str, Any]:
    """The schema a retired event version was published with."""
    successor, added = RETIRED_TYPES[kind]
    schema = json_schema(successor)
    properties = {k: v for k, v in schema["properties"].items() if k not in added}
    required = [name for name in schema.get("required", []) if name not in added]
    retired = schema | {
        "$id": f"{SCHEMA_BASE}events/{kind}.json",
        "title": kind,
        "properties": properties,
        "required": required,
    }
    if "$defs" in schema:
        retired["$defs"] = _defs_used(properties, schema["$defs"])
    return retired


def _defs_used(properties: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The `$defs` the properties still reach: a retired version leaves out the
    definitions only its successor's added fields needed."""
    used: set[str] = set()
    pending = [json.dumps(properties)]
    while pending:
        for name, definition in defs.items():
            if name not in used and f'"#/$defs/{name}"' in pending[-1]:
                used.add(name)
                pending.append(json.dumps(definition))
                break
        else:
            pending.pop()
    return {name: definition for name, definition in defs.items() if name in used}


def summary(event_class: type) -> str:
    # eventsourcing subclasses each event as a dataclass, whose __doc__ is its signature;
    # the docstring is on the class as written in the domain's events module.
    declared = next(b for b in event_class.__mro__ if b.__module__.endswith(".events"))
    return (declared.__doc__ or "").strip().splitlines()[0]


def headers_schema(aggregate: str) -> dict[str, Any]:
    properties = {
        "ce_specversion": text("CloudEvents version.", const="1.0"),
        "ce_id": text(
            "Stable per stored event: a redelivery carries the same id, so consumers "
            "deduplicate on it.",
            minLength=1,
        ),
        "ce_source": text(
            "The casebook deployment that recorded the event.", format="uri-reference"
        ),
        "ce_type": text(
            "casebook.<aggregate>.<event>.v<version>; names the payload schema.",
            pattern=r"^casebook\.[a-z_]+\.[a-z_]+\.v[0-9]+$",
        ),
        "ce_time": text("When the event happened (its timestamp), RFC 3339.", format="date-time"),
        "ce_subject": text(f"The {aggregate} id, as in the message key.", format="uuid"),
        "content-type": text("The payload is JSON.", const="application/json"),
        "ce_sequence": text(
            f"The {aggregate}'s version after this event (1, 2, ...), a decimal integer "
            "as a string: compare numerically, not as text. " + GAP_RULE,
            pattern=DECIMAL,
        ),
        "ce_position": text(
            "The event's position in the event store's global log, a decimal integer as "
            "a string; increases with every recorded event.",
            pattern=DECIMAL,
        ),
    }
    origin = {
        header: text(
            f"Optional (extension `{header.removeprefix('ce_')}`): {ORIGIN_MEANS[field]}",
            minLength=1,
            **({"pattern": TRACEPARENT} if field == "traceparent" else {}),
        )
        for header, field in (ORIGIN_HEADERS | TRACE_HEADERS).items()
    }
    return {
        "type": "object",
        "description": f"CloudEvents 1.0 Kafka binary-mode headers of a {aggregate} event.",
        "required": sorted(properties),
        "properties": properties | origin,
    }


def message(kind: str, event_class: type) -> dict[str, Any]:
    aggregate = kind.split(".")[1]  # casebook.<aggregate>.<event>.v<n>
    return kafka_message(
        kind,
        title=event_class.__name__,
        summary=summary(event_class),
        headers=f"{aggregate}EventHeaders",
        key={
            "type": "string",
            "format": "uuid",
            "description": f"The {aggregate} id: all events of one {aggregate} "
            "share a partition, in order.",
        },
    )
