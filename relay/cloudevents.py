"""The topic contract: one stored event as one Kafka record in CloudEvents binary mode.

Headers carry the CloudEvents attributes (`ce_*`), the value is the JSON payload, and
the key is the aggregate id, so one case's events share a partition in version order.
`ce_id` is the stored event's identity (aggregate id and version): a record published
twice carries the same `ce_id`, and consumers drop the second. An event recorded by a
command sent through the API also carries where it came from, as optional extension
attributes (`ORIGIN_HEADERS`) and the request's W3C trace context as the CloudEvents
distributed-tracing extension (`TRACE_HEADERS`); events without an origin have none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from casebook.commands import Origin
from casebook.event_types import event_type
from contract.case_events import ORIGIN_HEADERS, TRACE_HEADERS, analytics_payload

SPEC_VERSION = b"1.0"
CASE_EVENTS = "case-events.v1"


def topic_name(prefix: str, name: str = CASE_EVENTS) -> str:
    """A topic's full name under the configured prefix."""
    return f"{prefix}.{name}"


@dataclass(frozen=True)
class Record:
    """What the producer sends for one stored event."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    position: int


def record_for(
    event: Any,
    position: int,
    *,
    source: str,
    include_personal: bool,
    origin: Origin | None = None,
) -> Record:
    """The Kafka record of a stored event at notification-log `position`."""
    aggregate_id = str(event.originator_id)
    version = event.originator_version
    body = analytics_payload(event, include_personal=include_personal)
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", f"{aggregate_id}:{version}".encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type(event).encode()),
        ("ce_time", event.timestamp.isoformat().encode()),
        ("ce_subject", aggregate_id.encode()),
        ("content-type", b"application/json"),
        ("ce_sequence", str(version).encode()),
        ("ce_position", str(position).encode()),
    ]
    if origin is not None:
        headers += [
            (header, value.encode())
            for header, field in (ORIGIN_HEADERS | TRACE_HEADERS).items()
            if (value := getattr(origin, field)) is not None
        ]
    value = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return Record(aggregate_id.encode(), value, headers, position)
