"""One consumed Kafka record as the CloudEvent it carries.

The relay and the SLA outbox publish CloudEvents in Kafka binary mode: the attributes
travel as `ce_*` headers and the value is the JSON payload. A record that is not such an
event can never be applied, so decoding it raises `Poison`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumers.records import trace_id


class Poison(Exception):
    """An event that can never be applied as it is (bad envelope, bad payload, unknown type).

    Raised by decoding and by projections; the runtime dead-letters the event at once
    instead of retrying it.
    """


@dataclass(frozen=True)
class Envelope:
    """A consumed CloudEvent: its attributes, its payload, and where it was read."""

    id: str
    type: str
    source: str
    subject: str
    sequence: int
    time: datetime
    data: dict[str, Any]
    topic: str
    partition: int
    offset: int
    # The record as received, kept to dead-letter or park it unchanged.
    headers: tuple[tuple[str, bytes], ...]
    value: bytes

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    @property
    def trace_id(self) -> str | None:
        """The trace of the API request that caused the event, when it carries one."""
        return trace_id(self.headers)

    @property
    def sequence_key(self) -> str:
        return sequence_key(self.topic, self.subject)


def sequence_key(topic: str, subject: str) -> str:
    """Where a subject's last applied sequence is kept: per topic and subject.

    A case's SLA events number themselves apart from the case's own events, so one
    consumer reading both topics keeps one sequence per topic for the same case.
    """
    return f"{topic}|{subject}"


_REQUIRED = ("ce_id", "ce_type", "ce_source", "ce_subject", "ce_sequence", "ce_time")


def decode(
    topic: str,
    partition: int,
    offset: int,
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
    value: bytes | None,
) -> Envelope:
    """The envelope of one record; `Poison` names what is missing or malformed."""
    attributes = {name: raw for name, raw in headers}
    missing = [name for name in _REQUIRED if name not in attributes]
    if missing:
        raise Poison(f"missing header(s) {', '.join(missing)}")
    try:
        text = {name: attributes[name].decode() for name in _REQUIRED}
        sequence = int(text["ce_sequence"])
        time = datetime.fromisoformat(text["ce_time"])
        data = json.loads(value or b"")
    except (UnicodeDecodeError, ValueError) as error:
        raise Poison(f"malformed CloudEvent: {error}") from None
    if not isinstance(data, dict):
        raise Poison("payload is not a JSON object")
    return Envelope(
        id=text["ce_id"],
        type=text["ce_type"],
        source=text["ce_source"],
        subject=text["ce_subject"],
        sequence=sequence,
        time=time,
        data=data,
        topic=topic,
        partition=partition,
        offset=offset,
        headers=tuple(headers),
        value=value or b"",
    )
