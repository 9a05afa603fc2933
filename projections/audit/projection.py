"""The audit trail as a projection of the case-events and SLA-events topics (group "audit")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from consumers.envelope import Envelope, Poison
from contract.case_events import ORIGIN_HEADERS
from projections.audit.entries import Head, NotAuditable, make_entry, stream_of

ENTRY_COLUMNS = (
    "stream, subject, seq, event_id, event_type, case_id, organisation_id, occurred_at, "
    "recorded_at, actor_id, actor_role, channel, outcome, changes, prev_hash, hash, "
    "api_key_id, client_address, request_id"
)
_COLUMNS = tuple(name.strip() for name in ENTRY_COLUMNS.split(","))


class AuditProjection:
    """Appends one hash-chained entry per event; never updates or deletes an entry."""

    name = "audit"
    topics = ("case-events.v1", "sla-events.v1")
    # Both number each subject's events 1, 2, ... (SLA events by the outbox's `sequence`).
    contiguous_topics = ("case-events.v1", "sla-events.v1")

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[Envelope]) -> None:
        keys = []
        for event in events:
            try:
                keys.append((stream_of(event.type), event.subject))
            except NotAuditable as error:
                raise Poison(str(error)) from None
        heads = load_heads(conn, set(keys))
        entries = []
        for event, key in zip(events, keys, strict=True):
            try:
                entry, heads[key] = make_entry(
                    event_id=event.id,
                    event_type=event.type,
                    subject=event.subject,
                    recorded_at=event.time,
                    data=event.data,
                    head=heads.get(key),
                    origin=_origin(event),
                )
            except (KeyError, ValueError, TypeError) as error:
                raise Poison(f"{event.type} {event.id}: cannot audit ({error!r})") from None
            entries.append(entry)
        save(conn, entries, heads, touched=set(keys))


def _origin(event: Envelope) -> dict[str, str]:
    """The record's origin headers (absent on most: SLA events, commands not from the API),
    by entry field. Not UTF-8: a ValueError, so the event is poison."""
    return {
        ORIGIN_HEADERS[name]: value.decode()
        for name, value in event.headers
        if name in ORIGIN_HEADERS
    }


def load_heads(
    conn: psycopg.Connection[Any], keys: set[tuple[str, str]]
) -> dict[tuple[str, str], Head]:
    if not keys:
        return {}
    streams, subjects = zip(*sorted(keys), strict=True)
    rows = conn.execute(
        "SELECT h.stream, h.subject, h.seq, h.hash, h.organisation_id, h.fields "
        "FROM casebook_audit_heads h "
        "JOIN unnest(%s::text[], %s::uuid[]) AS k(stream, subject) USING (stream, subject) "
        "ORDER BY h.stream, h.subject FOR UPDATE OF h",
        (list(streams), list(subjects)),
    ).fetchall()
    return {
        (stream, str(subject)): Head(seq, hash_, str(org) if org else None, fields)
        for stream, subject, seq, hash_, org, fields in rows
    }


def save(
    conn: psycopg.Connection[Any],
    entries: list[dict[str, Any]],
    heads: dict[tuple[str, str], Head],
    *,
    touched: set[tuple[str, str]],
) -> None:
    """The entries in their order (one COPY: entry ids follow it) and the touched heads
    (one upsert of column arrays)."""
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY casebook_audit_entries ({ENTRY_COLUMNS}) FROM STDIN") as copy:
            for e in entries:
                copy.write_row([Jsonb(e[c]) if c == "changes" else e[c] for c in _COLUMNS])
        changed = sorted(key for key in heads if key in touched)
        if not changed:
            return
        cursor.execute(
            "INSERT INTO casebook_audit_heads (stream, subject, seq, hash, organisation_id, "
            "fields) SELECT * FROM unnest(%s::text[], %s::uuid[], %s::int[], %s::text[], "
            "%s::uuid[], %s::jsonb[]) ON CONFLICT (stream, subject) DO UPDATE "
            "SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
            "organisation_id = EXCLUDED.organisation_id, fields = EXCLUDED.fields",
            (
                [stream for stream, _ in changed],
                [subject for _, subject in changed],
                [heads[key].seq for key in changed],
                [heads[key].hash for key in changed],
                [heads[key].organisation_id for key in changed],
                [Jsonb(heads[key].fields) for key in changed],
            ),
        )
