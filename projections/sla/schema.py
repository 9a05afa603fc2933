"""The SLA-events topic as the SLA tracker publishes it: types, payload schema, headers."""

from __future__ import annotations

from typing import Any

from contract.schema_parts import (
    DECIMAL,
    DRAFT,
    GAP_RULE,
    SCHEMA_BASE,
    kafka_message,
    text,
    without_property_titles,
)
from domain.sla import Change
from projections.sla.events import ClockEvent
from projections.sla.events import event_type as sla_event_type

SLA_TOPIC = "casebook.sla-events.v1"
# Every SLA transition kind shares the payload `ClockEvent`; the type names the change.
SLA_EVENT_TYPES: dict[str, Change] = {sla_event_type(change): change for change in Change}


def sla_json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of an SLA clock event's payload (every kind has the same shape)."""
    change = SLA_EVENT_TYPES[kind]
    schema: dict[str, Any] = without_property_titles(ClockEvent.model_json_schema())
    return schema | {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_BASE}events/{kind}.json",
        "title": kind,
        "description": f"A case's SLA clock {change.value.replace('_', ' ')}: "
        "what changed, when it truly happened, why, and the clock after it.",
    }


def sla_headers() -> dict[str, Any]:
    properties = {
        "ce_specversion": text("CloudEvents version.", const="1.0"),
        "ce_id": text(
            "<case id>:<metric>:<n>, the clock's n-th transition: stable, so a consumer "
            "deduplicates on it and a rebuilt tracker names the same transition alike.",
            minLength=1,
        ),
        "ce_source": text("The casebook deployment.", format="uri-reference"),
        "ce_type": text(
            "casebook.sla.clock_<change>.v<version>.", pattern=r"^casebook\.sla\.[a-z_]+\.v[0-9]+$"
        ),
        "ce_time": text(
            "When the transition happened (a breach: its deadline), RFC 3339.", format="date-time"
        ),
        "ce_subject": text("The case id, as in the message key.", format="uuid"),
        "content-type": text("The payload is JSON.", const="application/json"),
        "ce_sequence": text(
            "The SLA event's number among the case's SLA events, contiguous from 1 per key "
            "(1, 2, ...), a decimal integer as a string. " + GAP_RULE,
            pattern=DECIMAL,
        ),
        "ce_position": text(
            "The transition's position in the tracker's outbox, a decimal integer as a string.",
            pattern=DECIMAL,
        ),
    }
    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary-mode headers of an SLA event.",
        "required": sorted(properties),
        "properties": properties,
    }


def sla_message(kind: str) -> dict[str, Any]:
    return kafka_message(
        kind,
        title=f"Clock {SLA_EVENT_TYPES[kind].value.replace('_', ' ')}",
        summary=sla_json_schema(kind)["description"],
        headers="slaEventHeaders",
        key={
            "type": "string",
            "format": "uuid",
            "description": "The case id: a case's transitions share a partition, in order.",
        },
    )
