"""A consumed Kafka record as received, and how its headers are kept in PostgreSQL."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Raw:
    """One record exactly as the broker delivered it (what is parked and dead-lettered)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Headers
    value: bytes | None

    @classmethod
    def of(cls, record: Any) -> Raw:
        """From a kafka-python `ConsumerRecord`."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=tuple((name, value or b"") for name, value in record.headers or ()),
            value=record.value,
        )

    def header(self, name: str) -> str | None:
        """A header as text (undecodable bytes replaced), or None when absent."""
        for header, value in self.headers:
            if header == name:
                return value.decode(errors="replace")
        return None

    @property
    def subject(self) -> str | None:
        """The subject the record is about, even when it is not a valid CloudEvent."""
        subject = self.header("ce_subject")
        if subject:
            return subject
        return self.key.decode(errors="replace") if self.key else None

    @property
    def ce_id(self) -> str | None:
        """The CloudEvent id, when the record has one."""
        return self.header("ce_id")

    @property
    def trace_id(self) -> str | None:
        """The trace of the API request that caused the record, when it carries one."""
        return trace_id(self.headers)

    @property
    def sequence(self) -> int | None:
        """The subject's sequence number, when the record carries a readable one."""
        text = self.header("ce_sequence")
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None


def trace_id(headers: Headers) -> str | None:
    """The trace id in a `ce_traceparent` header (W3C Trace Context), or None.

    Only for joining log lines to a request: a malformed header reads as None.
    """
    for name, value in headers:
        if name == "ce_traceparent":
            fields = value.decode(errors="replace").split("-")
            if len(fields) >= 4 and len(fields[1]) == 32:
                return fields[1]
    return None


def headers_to_json(headers: Headers) -> list[dict[str, str]]:
    """Headers as JSON: readable text where they are UTF-8, base64 otherwise (lossless)."""
    encoded: list[dict[str, str]] = []
    for name, value in headers:
        try:
            encoded.append({"name": name, "value": value.decode()})
        except UnicodeDecodeError:
            encoded.append({"name": name, "base64": base64.b64encode(value).decode()})
    return encoded


def headers_from_json(encoded: list[dict[str, str]]) -> Headers:
    """The inverse of `headers_to_json`."""
    return tuple(
        (
            item["name"],
            item["value"].encode() if "value" in item else base64.b64decode(item["base64"]),
        )
        for item in encoded
    )


def raw_from_row(
    topic: str, partition: int, offset: int, key: Any, headers: Any, value: Any
) -> Raw:
    """A record as kept in PostgreSQL (bytea columns, headers as `headers_to_json`)."""
    return Raw(
        topic,
        partition,
        offset,
        bytes(key) if key is not None else None,
        headers_from_json(headers),
        bytes(value) if value is not None else None,
    )
