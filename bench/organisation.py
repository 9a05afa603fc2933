"""An organisation with thousands of audited cases, for evidence bundles at scale.

One case lived through the write side and the SLA tracker is cloned under new case and
event ids and audited by the real `AuditProjection`, so every chain links and hashes as
in production, at thousands of cases a second. bench.bundle lives its own case; the
evidence tests live a longer one and clone it the same way.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.write import AGENT, seed
from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.policy_source import load_policy
from casebook.settings import Settings
from consumers.envelope import Envelope, decode
from domain.cases import NoteVisibility
from domain.values import ClosureReason, Severity
from projections.audit.checkpointer import checkpoint_now
from projections.audit.projection import AuditProjection
from projections.sla.projection import SlaProjection
from projections.sla.targets import TargetBook
from relay.cloudevents import record_for

CASE_TOPIC = "casebook.case-events.v1"
SLA_TOPIC = "casebook.sla-events.v1"
_BATCH = 500  # cases audited per transaction


@dataclass(frozen=True)
class AuditedOrganisation:
    """The organisation, how many cases and audit entries it has, and the case lived
    through the write side (the only one the event store knows; it has no entries)."""

    organisation_id: UUID
    cases: int
    entries: int
    lived_case: UUID


def audited_organisation(
    database: Database, cases: int, key: Ed25519PrivateKey
) -> AuditedOrganisation:
    """A case lived as support works one (assessed, escalated, noted, answered, resolved),
    cloned by `audit_clones`."""
    casebook = Casebook.connect(database, Settings(database_url=database.url))
    try:
        [case_id] = seed(casebook, 1)
        context = c.CommandContext(AGENT)
        for command in (
            c.AssignSeverity(case_id, Severity.B),
            c.EscalateSeverity(case_id, Severity.A, "users cannot sign in"),
            c.AddNote(case_id, "looked at the sign-in logs", NoteVisibility.INTERNAL),
            c.Respond(case_id, "the identity provider's certificate expired"),
            c.Resolve(case_id, "certificate renewed", ClosureReason.FIXED.value),
        ):
            casebook.execute(command, context)
        organisation_id = casebook.get_case(case_id).organisation_id
    finally:
        casebook.close()
    return audit_clones(database, organisation_id, case_id, cases, key)


def audit_clones(
    database: Database,
    organisation_id: UUID,
    lived_case: UUID,
    cases: int,
    key: Ed25519PrivateKey,
) -> AuditedOrganisation:
    """`cases` clones of `lived_case` (all alike but for their ids) in the audit log with
    the organisation's own chain, every entry covered by checkpoints signed with `key`.

    The SLA tracker runs over the stored events first, so each clone carries the clock
    events of the lived case as well as its case events.
    """
    stored = stored_envelopes(database)
    template = str(lived_case)
    with psycopg.connect(database.url) as conn:
        with conn.transaction():
            SlaProjection(TargetBook([load_policy()])).apply(conn, stored)
        lived = [e for e in stored if e.subject == template] + _clock_events(conn, template)
        once = [e for e in stored if e.subject != template]  # the organisation's registration
        with conn.transaction():
            AuditProjection().apply(conn, once)
        for first in range(0, cases, _BATCH):
            batch = [
                clone
                for _ in range(first, min(first + _BATCH, cases))
                for clone in _cloned(lived, template, str(uuid.uuid4()))
            ]
            with conn.transaction():
                AuditProjection().apply(conn, batch)
    with psycopg.connect(database.url, autocommit=True) as conn:
        checkpoint_now(conn, key)
        [[entries]] = conn.execute("SELECT count(*) FROM casebook_audit_entries").fetchall()
    return AuditedOrganisation(organisation_id, cases, int(entries), lived_case)


def stored_envelopes(database: Database) -> list[Envelope]:
    """Every stored event as the consumers decode it from the case-events topic."""
    casebook = Casebook.connect(database, Settings(database_url=database.url))
    try:
        notifications = casebook.store.recorder.select_notifications(start=1, limit=1_000_000)
        envelopes = []
        for n in notifications:
            event = casebook.store.mapper.to_domain_event(n)
            record = record_for(event, n.id, source="/bench", include_personal=False)
            envelopes.append(decode(CASE_TOPIC, 0, n.id - 1, record.headers, record.value))
        return envelopes
    finally:
        casebook.close()


def _clock_events(conn: psycopg.Connection[Any], case_id: str) -> list[Envelope]:
    """The SLA tracker's outbox rows of the case, as the audit consumer reads them."""
    found = conn.execute(
        "SELECT event_id, type, subject, time, payload, sequence FROM casebook_sla_outbox "
        "WHERE subject = %s ORDER BY sequence",
        (case_id,),
    ).fetchall()
    return [
        Envelope(
            id=event_id,
            type=type_,
            source="/sla",
            subject=subject,
            sequence=sequence,
            time=at,
            data=payload,
            topic=SLA_TOPIC,
            partition=0,
            offset=sequence - 1,
            headers=(),
            value=b"",
        )
        for event_id, type_, subject, at, payload, sequence in found
    ]


def _cloned(events: list[Envelope], template: str, case_id: str) -> list[Envelope]:
    def renamed(data: dict[str, Any]) -> dict[str, Any]:
        clone: dict[str, Any] = json.loads(json.dumps(data).replace(template, case_id))
        return clone

    return [
        replace(event, id=str(uuid.uuid4()), subject=case_id, data=renamed(event.data))
        for event in events
    ]
