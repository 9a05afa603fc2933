"""Public names of events and their JSON-safe payloads.

A stored event's type is `casebook.<aggregate>.<event>.v<class_version>`, e.g.
`casebook.case.severity_assigned.v1`; the names are a contract for readers of the
history and of the topics, so they follow the class name and never change.
"""

from __future__ import annotations

import re
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from domain.values import Actor

# eventsourcing re-creates event classes inside the aggregate's module, so name the
# aggregate by the domain package the class lives in.
_AGGREGATE_OF_PACKAGE = {"cases": "case", "organisations": "organisation", "incidents": "incident"}
# Envelope fields every event has; the payload is the rest.
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


def event_type(event: object) -> str:
    """The versioned public name of an event."""
    cls = type(event)
    package = cls.__module__.split(".")[1]
    aggregate = _AGGREGATE_OF_PACKAGE.get(package, package)
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    version = getattr(cls, "class_version", 1)
    return f"casebook.{aggregate}.{name}.v{version}"


def payload(event: object) -> dict[str, Any]:
    """The event's own fields as JSON-safe values (envelope fields left out)."""
    return {
        key: json_safe(value)
        for key, value in vars(event).items()
        if key not in ENVELOPE and not key.startswith("_")
    }


def json_safe(value: Any) -> Any:
    """Convert UUIDs, datetimes, enums, actors and tuples for JSON."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Actor):
        return {
            "principal_id": value.principal_id,
            "role": str(value.role),
            "channel": str(value.channel),
        }
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return value
