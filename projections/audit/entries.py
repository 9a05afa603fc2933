"""One consumed event as an audit entry (NIST SP 800-53 AU-3): what, when, who, where, outcome.

Pure. `changes` lists the fields the event changed, before -> after, against the
subject's fields as the log last knew them; the first event of a subject changes every
field from nothing. "Where" is the channel and, for commands sent through the API, their
origin: the API key, the client's address and the request id (the record's optional
origin headers). Personal data never reaches the log: the topics carry none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.audit.chain import ORIGIN_FIELDS, entry_hash

STREAMS = {"case": "case", "organisation": "organisation", "incident": "incident", "sla": "sla"}
# Who acts for the SLA tracker's transitions: time, not a person.
SLA_ACTOR = {"principal_id": "sla-tracker", "role": "system", "channel": "system"}
# Envelope-like fields of a payload: recorded in their own columns, not as changes.
_NOT_CHANGES = frozenset({"by", "at"})


class NotAuditable(ValueError):
    """An event the audit trail cannot place (no known stream)."""


@dataclass
class Head:
    """A chain's last entry and the subject's fields as of it."""

    seq: int
    hash: str
    organisation_id: str | None
    fields: dict[str, Any]


def stream_of(event_type: str) -> str:
    parts = event_type.split(".")
    if len(parts) != 4 or parts[0] != "casebook" or parts[1] not in STREAMS:
        raise NotAuditable(f"no audit stream for event type {event_type!r}")
    return STREAMS[parts[1]]


def make_entry(
    *,
    event_id: str,
    event_type: str,
    subject: str,
    recorded_at: datetime,
    data: dict[str, Any],
    head: Head | None,
    origin: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], Head]:
    """The entry for one event, linked after `head`, and the chain's new head.

    `origin` holds what the record says of where its command came from, by entry field
    (`ORIGIN_FIELDS`); fields it lacks stay None and out of the hash.
    """
    stream = stream_of(event_type)
    before = head.fields if head is not None else {}
    after = {**before, **{k: v for k, v in data.items() if k not in _NOT_CHANGES}}
    changes = {
        name: [before.get(name), value]
        for name, value in sorted(after.items())
        if name not in before or before[name] != value
    }
    actor = SLA_ACTOR if stream == "sla" else data.get("by") or {}
    organisation_id = _organisation(stream, subject, data, head)
    occurred = data.get("at")
    entry: dict[str, Any] = {
        "stream": stream,
        "subject": subject,
        "seq": (head.seq if head is not None else 0) + 1,
        "event_id": event_id,
        "event_type": event_type,
        "case_id": subject if stream == "case" else data.get("case_id"),
        "organisation_id": organisation_id,
        "occurred_at": datetime.fromisoformat(occurred) if occurred else recorded_at,
        "recorded_at": recorded_at,
        "actor_id": actor.get("principal_id"),
        "actor_role": actor.get("role"),
        "channel": actor.get("channel"),
        "outcome": f"clock {data.get('change')}" if stream == "sla" else "recorded",
        "changes": changes,
        "prev_hash": head.hash if head is not None else "0" * 64,
        **{name: (origin or {}).get(name) for name in ORIGIN_FIELDS},
    }
    entry["hash"] = entry_hash(entry)
    return entry, Head(entry["seq"], entry["hash"], organisation_id, after)


def _organisation(stream: str, subject: str, data: dict[str, Any], head: Head | None) -> str | None:
    if stream == "organisation":
        return subject
    found = data.get("organisation_id") or (head.organisation_id if head is not None else None)
    return str(found) if found is not None else None
