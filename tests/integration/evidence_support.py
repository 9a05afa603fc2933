"""An organisation with thousands of audited cases, for evidence bundles at scale.

One case is lived through the write side and the SLA tracker (`live_a_case`: eight
case events and the clock events the tracker publishes for them); its events are then
cloned under new case and event ids and audited by the real `AuditProjection`, so every
chain links and hashes as in production, at a few thousand cases a second.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casebook.application import Casebook
from casebook.database import Database
from casebook.settings import Settings
from consumers.envelope import Envelope
from projections.audit.checkpointer import checkpoint_now
from projections.audit.projection import AuditProjection
from tests.integration.audit_support import live_a_case
from tests.integration.sla_support import project, rows, stored_envelopes

_BATCH = 500  # cases audited per transaction


@dataclass(frozen=True)
class AuditedOrganisation:
    """The organisation, how many cases and audit entries it has, and the case lived
    through the write side (the only one the event store knows; it has no entries)."""

    organisation_id: UUID
    cases: int
    entries: int
    lived_case: UUID


def audit_many_cases(database: Database, cases: int, key: Ed25519PrivateKey) -> AuditedOrganisation:
    """`cases` cases of one organisation in the audit log (all alike but for their ids),
    every entry covered by checkpoints signed with `key`."""
    past = live_a_case(database, audit=False)
    casebook = Casebook.connect(database, Settings(database_url=database.url))
    try:
        stored = stored_envelopes(casebook)
    finally:
        casebook.close()
    project(database, stored)  # the SLA tracker: clock events in its outbox
    template = str(past.case_id)
    case_events = [e for e in stored if e.subject == template]
    once = [e for e in stored if e.subject != template]  # the organisation's registration
    template_events = case_events + _clock_events(database, template)
    with psycopg.connect(database.url) as conn:
        with conn.transaction():
            AuditProjection().apply(conn, once)
        for first in range(0, cases, _BATCH):
            batch = [
                clone
                for _ in range(first, min(first + _BATCH, cases))
                for clone in _cloned(template_events, template, str(uuid.uuid4()))
            ]
            with conn.transaction():
                AuditProjection().apply(conn, batch)
    with psycopg.connect(database.url, autocommit=True) as conn:
        checkpoint_now(conn, key)
    [[entries]] = rows(database, "SELECT count(*) FROM casebook_audit_entries")
    return AuditedOrganisation(past.organisation_id, cases, int(entries), past.case_id)


def _clock_events(database: Database, case_id: str) -> list[Envelope]:
    """The SLA tracker's outbox rows of the case, as the audit consumer would read them."""
    found = rows(
        database,
        "SELECT event_id, type, subject, time, payload FROM casebook_sla_outbox "
        "WHERE subject = %s ORDER BY id",
        case_id,
    )
    return [
        Envelope(
            id=event_id,
            type=type_,
            source="/sla",
            subject=subject,
            sequence=number,
            time=time,
            data=payload,
            topic="sla-events.v1",
            partition=0,
            offset=number,
            headers=(),
            value=b"",
        )
        for number, (event_id, type_, subject, time, payload) in enumerate(found, start=1)
    ]


def _cloned(events: list[Envelope], template: str, case_id: str) -> list[Envelope]:
    return [
        replace(
            event,
            id=str(uuid.uuid4()),
            subject=case_id,
            data=_renamed(event.data, template, case_id),
        )
        for event in events
    ]


def _renamed(data: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    renamed: dict[str, Any] = json.loads(json.dumps(data).replace(old, new))
    return renamed
