"""The contract of the case-events topic: published events, their schemas, AsyncAPI.

Every event of `ServiceRequest` and `Organisation` is published to
`casebook.case-events.v1` as a CloudEvent in Kafka binary mode. Its payload is
`analytics_payload(event)`: the event's own fields, without secrets, and without
personal data unless the deployment chooses to publish it. The JSON Schemas and the
AsyncAPI document under `schemas/` are generated from the event classes here
(`casebook schemas write`) and checked against them in the tests.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, create_model

from casebook.event_types import ENVELOPE, event_type, payload
from domain.cases import NoteVisibility, ServiceRequest
from domain.organisations import Organisation, PurchaseChannel
from domain.values import Agreement, Category, ContactKind, Severity
from projections.audit.checkpoint import EVENT_TYPE as CHECKPOINT_TYPE
from projections.audit.checkpoint import FORMAT as CHECKPOINT_FORMAT
from projections.sla.clocks import Change
from projections.sla.events import ClockEvent
from projections.sla.events import event_type as sla_event_type

TOPIC = "casebook.case-events.v1"
SLA_TOPIC = "casebook.sla-events.v1"
CHECKPOINT_TOPIC = "casebook.audit-checkpoints.v1"
# Event types no longer written but still on the topic (records published before their
# class version was bumped): their schemas stay published, so a consumer reading the
# topic from the beginning can validate every record. Each is its successor's schema
# without the fields the newer version added.
RETIRED_TYPES: dict[str, tuple[type, tuple[str, ...]]] = {
    "casebook.case.responded.v1": (ServiceRequest.Responded, ("via",)),
    "casebook.case.opened.v1": (
        ServiceRequest.Opened,
        ("customer_timezone", "customer_country"),
    ),
}
# Every SLA transition kind shares the payload `ClockEvent`; the type names the change.
SLA_EVENT_TYPES: dict[str, Change] = {sla_event_type(change): change for change in Change}
SCHEMA_BASE = "https://casebook.example/schemas/"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_AGGREGATES: tuple[type, ...] = (ServiceRequest, Organisation)
# Kafka headers are bytes; CloudEvents extension values travel as strings.
_DECIMAL = "^(0|[1-9][0-9]*)$"
# Where the command that recorded an event came from (NIST SP 800-53 AU-3 "from where"):
# optional CloudEvent extension attributes (lowercase alphanumeric names, as the spec
# asks; `ce_` + name in Kafka binary mode), by header, with the `Origin` field and audit
# entry column each one carries. Only events of commands sent through the API have them.
ORIGIN_HEADERS: dict[str, str] = {
    "ce_casebookclient": "api_key_id",
    "ce_casebookaddress": "client_address",
    "ce_casebookrequestid": "request_id",
}
_ORIGIN_MEANS = {
    "api_key_id": "the id of the API key the command that recorded this event was sent "
    "with. Absent for events recorded otherwise (the command line) and for events recorded "
    "before origins were kept.",
    "client_address": "the network address of the API client that sent the command, as "
    "the API saw it.",
    "request_id": "the request id of that API request (its X-Request-ID), to find it in "
    "the API's logs.",
}


def _type_name(event_class: type) -> str:
    # event_type names an event by its class alone; a bare, never initialised
    # instance lends it the class without inventing field values.
    return event_type(object.__new__(event_class))


def _published(aggregate: type) -> list[type]:
    events_module = aggregate.__module__.rsplit(".", 1)[0] + ".events"
    return [
        value
        for value in vars(aggregate).values()
        if isinstance(value, type) and any(b.__module__ == events_module for b in value.__mro__)
    ]


EVENT_CLASSES: dict[str, type] = {
    _type_name(cls): cls for aggregate in _AGGREGATES for cls in _published(aggregate)
}


def _payload_fields(event_class: type) -> list[dataclasses.Field[Any]]:
    fields = dataclasses.fields(event_class)
    return [f for f in fields if f.name not in ENVELOPE and not f.name.startswith("_")]


def _by_type(table: dict[type, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """One entry per published type; a name that is no field of its event is a bug."""
    for cls, names in table.items():
        unknown = set(names) - {f.name for f in _payload_fields(cls)}
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return {kind: frozenset(table.get(cls, ())) for kind, cls in EVENT_CLASSES.items()}


# Phones, e-mails and people's contacts, plus free text: people type names, numbers
# and addresses into titles, notes and reasons, and nothing can tell them apart.
PERSONAL_FIELDS: dict[str, frozenset[str]] = _by_type(
    {
        ServiceRequest.Opened: (
            "contact_phone",
            "contact_email",
            "caller_phone",
            "title",
            "description",
        ),
        ServiceRequest.Escalated: ("reason",),
        ServiceRequest.CustomerUnresponsive: ("requested",),
        ServiceRequest.Downgraded: ("reason", "evidence_requested"),
        ServiceRequest.Responded: ("message_summary",),
        ServiceRequest.NoteAdded: ("text",),
        ServiceRequest.Resolved: ("resolution",),
        ServiceRequest.Reopened: ("reason",),
        ServiceRequest.SatisfactionRecorded: ("comment",),
        Organisation.Registered: ("phones", "emails", "partner_contact"),
        Organisation.ContactRegistered: ("value",),
        Organisation.ContactRemoved: ("value",),
        Organisation.PurchaseChannelChanged: ("partner_contact",),
        Organisation.CallerVerificationRequested: ("caller_phone", "send_to"),
    }
)
# A short numeric code is guessable offline from its digest: never published.
SECRET_FIELDS: dict[str, frozenset[str]] = _by_type(
    {Organisation.CallerVerificationRequested: ("code_digest",)}
)

# Events type enum-valued attributes as `str` (they come back from the store as plain
# strings); the contract still names the allowed values.
_ENUM_OF_FIELD: dict[str, type[StrEnum]] = {
    "category": Category,
    "severity": Severity,
    "previous_severity": Severity,
    "agreement": Agreement,
    "preferred_contact": ContactKind,
    "kind": ContactKind,
    "send_to_kind": ContactKind,
    "visibility": NoteVisibility,
    "purchase_channel": PurchaseChannel,
}


def _left_out(kind: str, include_personal: bool) -> frozenset[str]:
    if kind not in EVENT_CLASSES:
        raise ValueError(f"{kind} is not a published event type")
    return SECRET_FIELDS[kind] | (frozenset() if include_personal else PERSONAL_FIELDS[kind])


def analytics_payload(event: object, *, include_personal: bool) -> dict[str, Any]:
    """The published payload: the event's fields minus secrets and, by default, personal data."""
    dropped = _left_out(event_type(event), include_personal)
    return {key: value for key, value in payload(event).items() if key not in dropped}


def json_schema(event_class: type, *, include_personal: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an event's analytics payload."""
    kind = _type_name(event_class)
    dropped = _left_out(kind, include_personal)
    hints = typing.get_type_hints(event_class)
    fields: dict[str, Any] = {}
    for f in _payload_fields(event_class):
        if f.name not in dropped:
            hint = _ENUM_OF_FIELD.get(f.name, str) if hints[f.name] is str else hints[f.name]
            default: Any = ... if f.default is dataclasses.MISSING else f.default
            if f.default_factory is not dataclasses.MISSING:
                default = Field(default_factory=f.default_factory)
            fields[f.name] = (hint, default)
    model = create_model(event_class.__name__, __config__=ConfigDict(extra="forbid"), **fields)
    schema: dict[str, Any] = _without_property_titles(TypeAdapter(model).json_schema())
    description = _summary(event_class)
    personal = sorted(PERSONAL_FIELDS[kind] - schema["properties"].keys())
    if personal:
        description += (
            f" Personal fields left out unless the deployment publishes personal data: "
            f"{', '.join(personal)}."
        )
    return schema | {
        "$schema": _DRAFT,
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
    return schema | {
        "$id": f"{SCHEMA_BASE}events/{kind}.json",
        "title": kind,
        "properties": properties,
        "required": required,
    }


def sla_json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of an SLA clock event's payload (every kind has the same shape)."""
    change = SLA_EVENT_TYPES[kind]
    schema: dict[str, Any] = _without_property_titles(ClockEvent.model_json_schema())
    return schema | {
        "$schema": _DRAFT,
        "$id": f"{SCHEMA_BASE}events/{kind}.json",
        "title": kind,
        "description": f"A case's SLA clock {change.value.replace('_', ' ')}: "
        "what changed, when it truly happened, why, and the clock after it.",
    }


def checkpoint_json_schema() -> dict[str, Any]:
    """JSON Schema of a signed audit checkpoint (projections/audit/checkpoint.py)."""
    hex64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    count = {"type": "integer", "minimum": 0}
    properties: dict[str, Any] = {
        "format": {"const": CHECKPOINT_FORMAT, "description": "Version of the signed encoding."},
        "number": count | {"minimum": 1, "description": "1, 2, ... with no gaps."},
        "after": count | {"description": "The previous checkpoint's upto (0 for the first)."},
        "upto": count | {"description": "The last audit entry id covered."},
        "count": count | {"minimum": 1, "description": "Entries with id in (after, upto]."},
        "merkle_root": hex64
        | {"description": "RFC 6962 Merkle root of those entries' hashes in entry id order."},
        "prev_digest": hex64 | {"description": "The previous checkpoint's digest (zeros first)."},
        "created_at": {"type": "string", "format": "date-time", "description": "When signed."},
        "key_fingerprint": hex64 | {"description": "SHA-256 of the raw Ed25519 public key."},
        "digest": hex64 | {"description": "SHA-256 of the signed bytes."},
        "signature": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "Ed25519 over the signed bytes: the canonical JSON (keys sorted, "
            "no spaces) of every field but digest, signature and public_key.",
        },
        "public_key": {"type": "string", "description": "The signing key's public half, PEM."},
    }
    return {
        "$schema": _DRAFT,
        "$id": f"{SCHEMA_BASE}events/{CHECKPOINT_TYPE}.json",
        "title": CHECKPOINT_TYPE,
        "description": "A signed checkpoint of the audit log: the entries appended since "
        "the previous checkpoint, by their Merkle root, chained to that checkpoint.",
        "type": "object",
        "additionalProperties": False,
        "required": sorted(properties),
        "properties": properties,
    }


def _checkpoint_message() -> dict[str, Any]:
    headers = _sla_headers()
    headers["description"] = "CloudEvents 1.0 Kafka binary-mode headers of a checkpoint."
    headers["properties"] |= {
        "ce_id": _text(
            "checkpoint:<number>:<first 16 hex digits of its digest>: stable, deduplicate on it.",
            minLength=1,
        ),
        "ce_type": _text("The checkpoint type.", const=CHECKPOINT_TYPE),
        "ce_time": _text("When the checkpoint was signed, RFC 3339.", format="date-time"),
        "ce_subject": _text("Always `audit-log`, as in the message key.", const="audit-log"),
        "ce_sequence": _text("The checkpoint's outbox position; increases.", pattern=_DECIMAL),
        "ce_position": _text("The checkpoint's outbox position.", pattern=_DECIMAL),
    }
    return {
        "name": CHECKPOINT_TYPE,
        "title": "Checkpoint signed",
        "summary": checkpoint_json_schema()["description"],
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": f"events/{CHECKPOINT_TYPE}.json"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "const": "audit-log",
                    "description": "One key: every checkpoint on one partition, in order.",
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _summary(event_class: type) -> str:
    # eventsourcing subclasses each event as a dataclass, whose __doc__ is its signature;
    # the docstring is on the class as written in the domain's events module.
    declared = next(b for b in event_class.__mro__ if b.__module__.endswith(".events"))
    return (declared.__doc__ or "").strip().splitlines()[0]


def _without_property_titles(schema: Any) -> Any:
    """Drop pydantic's generated property titles ("Organisation Id"): noise for readers."""
    if isinstance(schema, dict):
        cleaned = {key: _without_property_titles(value) for key, value in schema.items()}
        if isinstance(cleaned.get("properties"), dict):
            for prop in cleaned["properties"].values():
                prop.pop("title", None)
        return cleaned
    if isinstance(schema, list):
        return [_without_property_titles(item) for item in schema]
    return schema


def _text(description: str, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rules}


def _headers(aggregate: str) -> dict[str, Any]:
    properties = {
        "ce_specversion": _text("CloudEvents version.", const="1.0"),
        "ce_id": _text(
            "Stable per stored event: a redelivery carries the same id, so consumers "
            "deduplicate on it.",
            minLength=1,
        ),
        "ce_source": _text(
            "The casebook deployment that recorded the event.", format="uri-reference"
        ),
        "ce_type": _text(
            "casebook.<aggregate>.<event>.v<version>; names the payload schema.",
            pattern=r"^casebook\.[a-z_]+\.[a-z_]+\.v[0-9]+$",
        ),
        "ce_time": _text("When the event happened (its timestamp), RFC 3339.", format="date-time"),
        "ce_subject": _text(f"The {aggregate} id, as in the message key.", format="uuid"),
        "content-type": _text("The payload is JSON.", const="application/json"),
        "ce_sequence": _text(
            f"The {aggregate}'s version after this event (1, 2, ...), a decimal integer "
            "as a string: compare numerically, not as text.",
            pattern=_DECIMAL,
        ),
        "ce_position": _text(
            "The event's position in the event store's global log, a decimal integer as "
            "a string; increases with every recorded event.",
            pattern=_DECIMAL,
        ),
    }
    origin = {
        header: _text(
            f"Optional (extension `{header.removeprefix('ce_')}`): {_ORIGIN_MEANS[field]}",
            minLength=1,
        )
        for header, field in ORIGIN_HEADERS.items()
    }
    return {
        "type": "object",
        "description": f"CloudEvents 1.0 Kafka binary-mode headers of a {aggregate} event.",
        "required": sorted(properties),
        "properties": properties | origin,
    }


def _sla_headers() -> dict[str, Any]:
    properties = {
        "ce_specversion": _text("CloudEvents version.", const="1.0"),
        "ce_id": _text(
            "<case id>:<metric>:<n>, the clock's n-th transition: stable, so a consumer "
            "deduplicates on it and a rebuilt tracker names the same transition alike.",
            minLength=1,
        ),
        "ce_source": _text("The casebook deployment.", format="uri-reference"),
        "ce_type": _text(
            "casebook.sla.clock_<change>.v<version>.", pattern=r"^casebook\.sla\.[a-z_]+\.v[0-9]+$"
        ),
        "ce_time": _text(
            "When the transition happened (a breach: its deadline), RFC 3339.", format="date-time"
        ),
        "ce_subject": _text("The case id, as in the message key.", format="uuid"),
        "content-type": _text("The payload is JSON.", const="application/json"),
        "ce_sequence": _text(
            "Increases with every SLA event of the case (not by one): a consumer drops a "
            "record whose sequence is not above the last it applied. Decimal, as a string.",
            pattern=_DECIMAL,
        ),
        "ce_position": _text(
            "The transition's position in the tracker's outbox, a decimal integer as a string.",
            pattern=_DECIMAL,
        ),
    }
    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary-mode headers of an SLA event.",
        "required": sorted(properties),
        "properties": properties,
    }


def _sla_message(kind: str) -> dict[str, Any]:
    return {
        "name": kind,
        "title": f"Clock {SLA_EVENT_TYPES[kind].value.replace('_', ' ')}",
        "summary": sla_json_schema(kind)["description"],
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/slaEventHeaders"},
                {"properties": {"ce_type": {"const": kind}}},
            ]
        },
        "payload": {"$ref": f"events/{kind}.json"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The case id: a case's transitions share a partition, in order.",
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _message(kind: str, event_class: type) -> dict[str, Any]:
    aggregate = kind.split(".")[1]  # casebook.<aggregate>.<event>.v<n>
    return {
        "name": kind,
        "title": event_class.__name__,
        "summary": _summary(event_class),
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{aggregate}EventHeaders"},
                {"properties": {"ce_type": {"const": kind}}},
            ]
        },
        "payload": {"$ref": f"events/{kind}.json"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "format": "uuid",
                    "description": f"The {aggregate} id: all events of one {aggregate} "
                    "share a partition, in order.",
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 description of the case-events and SLA-events topics and their messages."""
    messages = {kind: _message(kind, cls) for kind, cls in EVENT_CLASSES.items()}
    sla_messages = {kind: _sla_message(kind) for kind in SLA_EVENT_TYPES}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "casebook events",
            "version": "1.2.0",
            "description": "Every event recorded for service requests (cases) and "
            "organisations, published by casebook's relay in the order of the event store; "
            "and every SLA clock transition, published by the SLA tracker.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "caseEvents": {
                "address": TOPIC,
                "title": "Case and organisation events",
                "description": "The topic is `<prefix>.case-events.v1`: the prefix is the "
                "deployment's topic prefix setting (CASEBOOK_TOPIC_PREFIX), `casebook` by "
                "default as in this address. Payloads carry no secrets, and no personal data "
                "unless the deployment publishes it (CASEBOOK_RELAY_INCLUDE_PERSONAL_DATA; "
                "see each payload schema). Events recorded by a command sent through the API "
                "carry where it came from in optional headers (API key id, client address, "
                "request id); consumers must accept records without them.",
                "messages": {kind: {"$ref": f"#/components/messages/{kind}"} for kind in messages},
            },
            "auditCheckpoints": {
                "address": CHECKPOINT_TOPIC,
                "title": "Signed audit checkpoints",
                "description": "The topic is `<prefix>.audit-checkpoints.v1`. One message per "
                "checkpoint the audit trail signs over its log, each published exactly once; "
                "auditors keep them to check evidence bundles against.",
                "messages": {CHECKPOINT_TYPE: {"$ref": f"#/components/messages/{CHECKPOINT_TYPE}"}},
            },
            "slaEvents": {
                "address": SLA_TOPIC,
                "title": "SLA clock transitions",
                "description": "The topic is `<prefix>.sla-events.v1`. One message per "
                "transition of a case's SLA clock (initial response; follow-up where the "
                "policy sets a cadence), each published exactly once.",
                "messages": {
                    kind: {"$ref": f"#/components/messages/{kind}"} for kind in sla_messages
                },
            },
        },
        "operations": {
            "publishCaseEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/caseEvents"},
                "summary": "The relay publishes every recorded event once it is committed.",
                "messages": [{"$ref": f"#/channels/caseEvents/messages/{k}"} for k in messages],
            },
            "publishAuditCheckpoints": {
                "action": "send",
                "channel": {"$ref": "#/channels/auditCheckpoints"},
                "summary": "The audit trail publishes each signed checkpoint from its outbox.",
                "messages": [{"$ref": f"#/channels/auditCheckpoints/messages/{CHECKPOINT_TYPE}"}],
            },
            "publishSlaEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/slaEvents"},
                "summary": "The SLA tracker publishes each clock transition from its outbox.",
                "messages": [{"$ref": f"#/channels/slaEvents/messages/{k}"} for k in sla_messages],
            },
        },
        "components": {
            "schemas": {
                **{f"{a}EventHeaders": _headers(a) for a in ("case", "organisation")},
                "slaEventHeaders": _sla_headers(),
            },
            "messages": messages | sla_messages | {CHECKPOINT_TYPE: _checkpoint_message()},
        },
    }


def _render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Every schema file the code defines, by path relative to the schemas directory."""
    files = {
        f"events/{kind}.json": _render(json_schema(cls)) for kind, cls in EVENT_CLASSES.items()
    }
    files |= {f"events/{kind}.json": _render(sla_json_schema(kind)) for kind in SLA_EVENT_TYPES}
    files |= {f"events/{kind}.json": _render(retired_json_schema(kind)) for kind in RETIRED_TYPES}
    files[f"events/{CHECKPOINT_TYPE}.json"] = _render(checkpoint_json_schema())
    files["asyncapi.json"] = _render(asyncapi_document())
    return dict(sorted(files.items()))


def _stale(directory: Path, files: dict[str, str]) -> list[str]:
    found = sorted(p.relative_to(directory).as_posix() for p in directory.glob("events/*.json"))
    return [path for path in found if path not in files]


def write_schemas(directory: Path) -> list[Path]:
    """Write the schema files under `directory`, removing event schemas no longer defined."""
    files = generated_files()
    for stale in _stale(directory, files):
        (directory / stale).unlink()
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def drift(directory: Path) -> dict[str, str]:
    """Files under `directory` that differ from the code, with what is wrong with each."""
    files = generated_files()
    found: dict[str, str] = {}
    for relative, text in files.items():
        path = directory / relative
        if not path.is_file():
            found[relative] = "is missing"
        elif path.read_text(encoding="utf-8") != text:
            found[relative] = "differs from the code"
    for relative in _stale(directory, files):
        found[relative] = "is no longer generated by the code"
    return dict(sorted(found.items()))
