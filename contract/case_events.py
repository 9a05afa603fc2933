"""The events published on `<prefix>.case-events.v1` and what their payloads carry.

Every event of `ServiceRequest`, `Organisation` and `ServiceIncident` is published as a
CloudEvent in Kafka binary mode. Its payload is `analytics_payload(event)`: the event's
own fields, without secrets, and without personal data unless the deployment chooses to
publish it.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from casebook.event_types import ENVELOPE, event_type, payload
from domain.cases import NoteVisibility, ServiceRequest
from domain.incidents import ServiceIncident
from domain.organisations import Organisation, PurchaseChannel
from domain.values import Agreement, Category, ContactKind, Severity
from privacy.fields import personal_fields

TOPIC = "casebook.case-events.v1"
# Event types no longer written but still on the topic (records published before their
# class version was bumped): their schemas stay published, so a consumer reading the
# topic from the beginning can validate every record. Each is its successor's schema
# without the fields the newer version added.
_PROMISE = ("expected_response_at", "waiting_estimate", "support_line")  # opened.v4, v5
RETIRED_TYPES: dict[str, tuple[type, tuple[str, ...]]] = {
    "casebook.case.responded.v1": (ServiceRequest.Responded, ("via",)),
    "casebook.case.opened.v1": (
        ServiceRequest.Opened,
        ("customer_timezone", "customer_country", "triage_severity", *_PROMISE),
    ),
    "casebook.case.opened.v2": (ServiceRequest.Opened, ("triage_severity", *_PROMISE)),
    "casebook.case.opened.v3": (ServiceRequest.Opened, _PROMISE),
    "casebook.case.opened.v4": (ServiceRequest.Opened, ("support_line",)),
    "casebook.case.resolved.v1": (ServiceRequest.Resolved, ("reason", "out_of_scope")),
}
_AGGREGATES: tuple[type, ...] = (ServiceRequest, Organisation, ServiceIncident)
# Where the command that recorded an event came from (NIST SP 800-53 AU-3 "from where"):
# optional CloudEvent extension attributes (lowercase alphanumeric names, as the spec
# asks; `ce_` + name in Kafka binary mode), by header, with the `Origin` field and audit
# entry column each one carries. Only events of commands sent through the API have them.
ORIGIN_HEADERS: dict[str, str] = {
    "ce_casebookclient": "api_key_id",
    "ce_casebookaddress": "client_address",
    "ce_casebookrequestid": "request_id",
}
# The W3C trace context of that API request, as the CloudEvents distributed-tracing
# extension (`traceparent`, `tracestate`): a consumer joins its work to the request.
TRACE_HEADERS: dict[str, str] = {
    "ce_traceparent": "traceparent",
    "ce_tracestate": "tracestate",
}
ORIGIN_MEANS = {
    "api_key_id": "the id of the API key the command that recorded this event was sent "
    "with. Absent for events recorded otherwise (the command line) and for events recorded "
    "before origins were kept.",
    "client_address": "the network address of the API client that sent the command, as "
    "the API saw it.",
    "request_id": "the request id of that API request (its X-Request-ID), to find it in "
    "the API's logs.",
    "traceparent": "the W3C Trace Context `traceparent` of that API request's span "
    "(CloudEvents distributed-tracing extension): the caller's trace id when it sent one, "
    "else a trace the API started; join a consumer's work to the request by its trace id.",
    "tracestate": "the caller's W3C `tracestate`, passed on unchanged, when it sent one.",
}


def type_name(event_class: type) -> str:
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
    type_name(cls): cls for aggregate in _AGGREGATES for cls in _published(aggregate)
}


def payload_fields(event_class: type) -> list[dataclasses.Field[Any]]:
    fields = dataclasses.fields(event_class)
    return [f for f in fields if f.name not in ENVELOPE and not f.name.startswith("_")]


def _by_type(table: dict[type, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """One entry per published type; a name that is no field of its event is a bug."""
    for cls, names in table.items():
        unknown = set(names) - {f.name for f in payload_fields(cls)}
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return {kind: frozenset(table.get(cls, ())) for kind, cls in EVENT_CLASSES.items()}


# Sealed in the event store and left off the topics by default (privacy.fields).
PERSONAL_FIELDS: dict[str, frozenset[str]] = _by_type(
    {cls: personal_fields(cls) for cls in EVENT_CLASSES.values() if personal_fields(cls)}
)
# A short numeric code is guessable offline from its digest: never published.
SECRET_FIELDS: dict[str, frozenset[str]] = _by_type(
    {Organisation.CallerVerificationRequested: ("code_digest",)}
)

# Events type enum-valued attributes as `str` (they come back from the store as plain
# strings); the contract still names the allowed values.
ENUM_OF_FIELD: dict[str, type[StrEnum]] = {
    "category": Category,
    "categories": Category,  # a list of them
    "severity": Severity,
    "previous_severity": Severity,
    "triage_severity": Severity,
    "agreement": Agreement,
    "preferred_contact": ContactKind,
    "kind": ContactKind,
    "send_to_kind": ContactKind,
    "to": ContactKind,  # survey_invited: the kind of contact, never the address
    "visibility": NoteVisibility,
    "purchase_channel": PurchaseChannel,
}


def left_out(kind: str, include_personal: bool) -> frozenset[str]:
    if kind not in EVENT_CLASSES:
        raise ValueError(f"{kind} is not a published event type")
    return SECRET_FIELDS[kind] | (frozenset() if include_personal else PERSONAL_FIELDS[kind])


def analytics_payload(event: object, *, include_personal: bool) -> dict[str, Any]:
    """The published payload: the event's fields minus secrets and, by default, personal data."""
    dropped = left_out(event_type(event), include_personal)
    return {key: value for key, value in payload(event).items() if key not in dropped}
