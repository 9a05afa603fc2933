"""A demo organisation and one open case, so `make run` has something to show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from casebook import commands as c
from casebook.application import Casebook
from casebook.errors import OrganisationNotFound
from domain.values import Actor, Agreement, Category, Channel, ContactKind, Role

# Fixed ids: a restart finds the demo instead of creating another.
DEMO_ORGANISATION = uuid5(UUID("6d1c8e8e-55c4-4c1e-9b8a-2f1f4c5c0a11"), "demo-organisation")
DEMO_CASE = uuid5(DEMO_ORGANISATION, "demo-case")
DEMO_PHONE = "+86 10 8888 0000"
DEMO_EMAIL = "it@demo-cloud.example"
DEMO_ADMIN = "demo-customer-admin"  # the customer admin the demo portal key can act for


@dataclass(frozen=True)
class DemoInfo:
    """What the demo holds, for the start-up banner."""

    organisation_id: UUID
    case_id: UUID
    created: bool

    def __str__(self) -> str:
        state = "created" if self.created else "found"
        return f"organisation {self.organisation_id}, case {self.case_id} ({state})"


def seed(casebook: Casebook, keys: Any = None) -> DemoInfo:
    """Create the demo organisation and its first case unless they exist."""
    try:
        casebook.get_organisation(DEMO_ORGANISATION)
        return DemoInfo(DEMO_ORGANISATION, DEMO_CASE, created=False)
    except OrganisationNotFound:
        pass
    setup = c.CommandContext(Actor("demo-admin", Role.ADMIN, Channel.API))
    casebook.execute(
        c.RegisterOrganisation(
            name="Demo Cloud Co",
            country="CN",
            timezone="Asia/Shanghai",
            agreement=Agreement.ADVANCED,
            admins=(DEMO_ADMIN,),
            phones=(DEMO_PHONE,),
            emails=(DEMO_EMAIL,),
            organisation_id=DEMO_ORGANISATION,
        ),
        setup,
    )
    casebook.execute(
        c.OpenRequest(
            organisation_id=DEMO_ORGANISATION,
            requester_id=DEMO_ADMIN,
            category=Category.TECHNICAL,
            title="Exchange Online: users cannot send mail",
            description="Since 09:00 every outgoing message bounces.",
            contact_phone=DEMO_PHONE,
            contact_email=DEMO_EMAIL,
            preferred_contact=ContactKind.EMAIL,
            caller_phone=DEMO_PHONE,
            case_id=DEMO_CASE,
        ),
        c.CommandContext(Actor("demo-agent", Role.AGENT, Channel.PHONE)),
    )
    return DemoInfo(DEMO_ORGANISATION, DEMO_CASE, created=True)
