"""Small factories for write-side tests: an organisation, a case, actors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from casebook import commands as c
from casebook.application import Casebook
from casebook.database import Database
from casebook.incident_index import OpenIncidents
from casebook.settings import Settings
from domain.values import Actor, Agreement, Category, Channel, ContactKind, Role

ADMIN = c.CommandContext(Actor("ops", Role.ADMIN, Channel.API))
AGENT = Actor("bob", Role.AGENT, Channel.API)
AGENT_ON_PHONE = Actor("bob", Role.AGENT, Channel.PHONE)
PHONE = "+86 10 1234 5678"
EMAIL = "it@acme.example"


def as_agent(*, key: str | None = None, expected: int | None = None) -> c.CommandContext:
    return c.CommandContext(AGENT, idempotency_key=key, expected_version=expected)


def register_organisation(casebook: Casebook, *, agreement: Agreement = Agreement.ADVANCED) -> UUID:
    return casebook.execute(
        c.RegisterOrganisation(
            name="Acme",
            country="CN",
            timezone="Asia/Shanghai",
            agreement=agreement,
            admins=("ada",),
            phones=(PHONE,),
            emails=(EMAIL,),
        ),
        ADMIN,
    ).aggregate_id


def open_request(
    casebook: Casebook, organisation_id: UUID, *, category: Category = Category.TECHNICAL
) -> UUID:
    return casebook.execute(
        c.OpenRequest(
            organisation_id=organisation_id,
            requester_id="ada",
            category=category,
            title="Mail is down",
            description="Nobody receives mail since 09:00",
            contact_phone=PHONE,
            contact_email=EMAIL,
            preferred_contact=ContactKind.EMAIL,
            caller_phone=PHONE,
        ),
        c.CommandContext(AGENT_ON_PHONE),
    ).aggregate_id


def close_open_incidents(casebook: Casebook) -> None:
    """Close every service incident still open: an incident in force changes every opening
    it may explain, so a test that declares one leaves none open for the tests after it
    on the session's shared database."""
    supervisor = c.CommandContext(Actor("sue", Role.SUPERVISOR, Channel.API))
    connection = casebook.store.recorder.datastore.get_connection  # type: ignore[attr-defined]
    for incident_id in OpenIncidents(connection).started_by(datetime.max.replace(tzinfo=UTC)):
        # One declared to start later ends as it would have started (never before).
        ended_at = max(casebook.get_incident(incident_id).started_at, datetime.now(UTC))
        casebook.execute(c.CloseIncident(incident_id, ended_at), supervisor)


@contextmanager
def connected(database: Database, **settings: Any) -> Iterator[Casebook]:
    """The write side on `database` (with these settings besides its URL), closed after."""
    casebook = Casebook.connect(database, Settings(database_url=database.url, **settings))
    try:
        yield casebook
    finally:
        casebook.close()
