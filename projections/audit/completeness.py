"""Is the audit log complete? Every stored event and every SLA event has its entry.

Hash chains prove a chain unmodified, not complete: a consumer that never received some
records (a broker that lost its topics, say) builds chains that link perfectly around
the hole. So this checks the log against its sources, in one set-based statement (an
anti-join the server streams; only a bounded report comes back, whatever the store holds):

- every event in the event store (`casebook_events`) of a case, an organisation or a
  service incident has the entry with its `ce_id`, `<aggregate id>:<version>`, in stream
  `case`, `organisation` or `incident`;
- every row of the SLA tracker's outbox (`casebook_sla_outbox`) has the entry with its
  event id in stream `sla`.

Nothing is left out on purpose: the relay publishes every stored event and the audit
projection has a stream for every published type, so an event without an entry is
missing. An event an operator skipped with `casebook dlq skip` is missing too (the trail
does lack it); the report says so, as it says when an event is dead-lettered, held by the
runtime, or simply not published yet (the pipeline is behind: nothing is lost yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from psycopg.rows import dict_row

from consumers.holds import holds
from contract.case_events import EVENT_CLASSES
from projections.audit.entries import STREAMS

GROUP = "audit"
FIRST_MISSING = 20  # chains listed at most; the counts cover all of them
# Stored topics name the event class (`domain.cases.aggregate:ServiceRequest.Opened`);
# the audit names it by its published type, and the aggregate by its stream.
_TYPES = {get_topic(cls): kind for kind, cls in EVENT_CLASSES.items()}
_STREAMS = {
    get_topic(cls).rsplit(".", 1)[0] + ".": STREAMS[kind.split(".")[1]]
    for kind, cls in EVENT_CLASSES.items()
}

# Entries are matched by event id, not by seq: a chain's seq counts its entries, so a
# chain that skipped an event numbers on without a gap. One relay publishes the log at a
# time (leadership), so the furthest relay position is how far it got.
_MISSING = """
WITH relay AS (
    SELECT coalesce(max(position), 0) AS position FROM casebook_relay_positions
), missing AS (
    SELECT k.stream, e.originator_id AS subject, e.originator_version::bigint AS sequence,
           e.notification_id <= relay.position AS published
    FROM casebook_events e
    JOIN unnest(%(prefixes)s::text[], %(streams)s::text[]) AS k(prefix, stream)
        ON starts_with(e.topic, k.prefix)
    CROSS JOIN relay
    WHERE e.notification_id <= %(events_upto)s {store_filter}
      AND NOT EXISTS (
        SELECT 1 FROM casebook_audit_entries a
        WHERE a.stream = k.stream AND a.subject = e.originator_id
          AND a.event_id = e.originator_id::text || ':' || e.originator_version)
    UNION ALL
    SELECT 'sla', o.subject::uuid, o.id, o.published_at IS NOT NULL
    FROM casebook_sla_outbox o
    WHERE o.id <= %(outbox_upto)s {outbox_filter}
      AND NOT EXISTS (
        SELECT 1 FROM casebook_audit_entries a
        WHERE a.stream = 'sla' AND a.subject = o.subject::uuid AND a.event_id = o.event_id)
), chains AS (
    SELECT stream, subject, min(sequence) AS first, count(*) AS missing,
           count(*) FILTER (WHERE NOT published) AS unpublished
    FROM missing GROUP BY stream, subject
), listed AS (
    SELECT *, count(*) OVER () AS all_chains, sum(missing) OVER ()::bigint AS all_missing,
           sum(unpublished) OVER ()::bigint AS all_unpublished
    FROM chains ORDER BY stream, subject LIMIT %(limit)s
)
SELECT l.*, coalesce(o.event_id, l.subject::text || ':' || l.first) AS event_id,
       coalesce(o.type, e.topic) AS kind,
       CASE WHEN l.stream = 'sla' THEN o.published_at IS NOT NULL
            ELSE e.notification_id <= relay.position END AS published
FROM listed l CROSS JOIN relay
LEFT JOIN casebook_events e
    ON l.stream <> 'sla' AND e.originator_id = l.subject AND e.originator_version = l.first
LEFT JOIN casebook_sla_outbox o ON l.stream = 'sla' AND o.id = l.first
ORDER BY l.stream, l.subject
"""
# One case: its own events by primary key; its SLA events through the clock history
# (indexed by case, written with the outbox rows, same event ids), as the outbox has no
# index by subject.
_CASE_FILTERS = {
    "store_filter": "AND e.originator_id = %(subject)s",
    "outbox_filter": "AND o.event_id IN (SELECT h.event_id FROM casebook_sla_clock_history h"
    " WHERE h.case_id = %(subject)s)",
}


@dataclass(frozen=True)
class Horizon:
    """The newest stored event and SLA outbox row a check covers; later ones are not due."""

    events: int
    outbox: int


@dataclass(frozen=True)
class MissingEntry:
    """The first event of a chain that has no audit entry, and how many more it lacks."""

    stream: str
    subject: str
    event_id: str
    sequence: int  # case and organisation: the event's version; sla: its outbox id
    event_type: str
    missing_in_chain: int
    published: bool
    why: str | None = None

    def describe(self) -> str:
        where = "outbox id" if self.stream == "sla" else "version"
        text = (
            f"{self.stream} {self.subject}: event {self.event_id} ({where} {self.sequence}, "
            f"{self.event_type}) has no audit entry"
        )
        if self.missing_in_chain > 1:
            text += f"; {self.missing_in_chain - 1} more missing in this chain"
        if not self.published:
            text += "; not published yet"
        return text + (f"; {self.why}" if self.why else "")


@dataclass(frozen=True)
class Completeness:
    """What the log lacks up to `horizon`: counts over everything, the first few chains."""

    horizon: Horizon
    missing_entries: int = 0
    incomplete_chains: int = 0
    unpublished: int = 0  # of the missing: not published yet (behind, not lost)
    first_missing: tuple[MissingEntry, ...] = ()

    @property
    def complete(self) -> bool:
        return self.missing_entries == 0

    def summary(self) -> str:
        behind = f", {self.unpublished} not published yet" if self.unpublished else ""
        return (
            f"{self.missing_entries} stored event(s) without an audit entry in "
            f"{self.incomplete_chains} chain(s){behind}"
        )


def horizon_now(conn: psycopg.Connection[Any]) -> Horizon:
    """The newest stored event and outbox row now (both found through their indexes)."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(notification_id), 0) FROM casebook_events),"
        " (SELECT coalesce(max(id), 0) FROM casebook_sla_outbox)"
    ).fetchone()
    assert row is not None
    return Horizon(int(row[0]), int(row[1]))


def check(
    conn: psycopg.Connection[Any],
    *,
    case_id: str | None = None,
    horizon: Horizon | None = None,
    limit: int = FIRST_MISSING,
) -> Completeness:
    """Stored events (of one case and its SLA clocks, or of the whole store) and SLA
    outbox rows, up to `horizon` (default: now), that have no audit entry."""
    upto = horizon or horizon_now(conn)
    filters = _CASE_FILTERS if case_id is not None else {"store_filter": "", "outbox_filter": ""}
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            _MISSING.format(**filters),
            {
                "prefixes": list(_STREAMS),
                "streams": list(_STREAMS.values()),
                "events_upto": upto.events,
                "outbox_upto": upto.outbox,
                "subject": case_id,
                "limit": max(limit, 1),
            },
        ).fetchall()
    if not rows:
        return Completeness(upto)
    known = holds(conn, GROUP, {str(r["subject"]) for r in rows}, {r["event_id"] for r in rows})
    first = tuple(
        MissingEntry(
            stream=r["stream"],
            subject=str(r["subject"]),
            event_id=r["event_id"],
            sequence=r["first"],
            event_type=_TYPES.get(r["kind"]) or str(r["kind"]),  # an unknown topic: as stored
            missing_in_chain=r["missing"],
            published=r["published"],
            why=known.why(str(r["subject"]), r["event_id"]),
        )
        for r in rows
    )
    return Completeness(
        upto,
        missing_entries=rows[0]["all_missing"],
        incomplete_chains=rows[0]["all_chains"],
        unpublished=rows[0]["all_unpublished"],
        first_missing=first,
    )
