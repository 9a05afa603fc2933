"""Fixtures for the aggregate rules: the shipped policy, people, a clock, factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.cases import ServiceRequest
from domain.errors import DomainError
from domain.organisations import Organisation
from domain.policy import Policy
from domain.values import Actor, Agreement, Category, Channel, ContactKind, Role, Severity

ADA = Actor("ada", Role.CUSTOMER_ADMIN, Channel.ONLINE)  # the customer's admin
ADA_ON_PHONE = Actor("ada", Role.CUSTOMER_ADMIN, Channel.PHONE)
USER = Actor("uma", Role.CUSTOMER_ADMIN, Channel.ONLINE)  # signed in, but not an admin of Acme
AGENT = Actor("bob", Role.AGENT, Channel.ONLINE)
AGENT_ON_PHONE = Actor("bob", Role.AGENT, Channel.PHONE)
OTHER_AGENT = Actor("cyd", Role.AGENT, Channel.ONLINE)
SUPERVISOR = Actor("sue", Role.SUPERVISOR, Channel.ONLINE)
SURVEY = Actor("survey", Role.SYSTEM, Channel.API)
AUDITOR = Actor("aud", Role.AUDITOR, Channel.ONLINE)

REGISTERED_PHONE = "+48 22 123 45 67"
REGISTERED_EMAIL = "it@acme.example"


@contextmanager
def refused(error: type[DomainError], rule: str, says: str) -> Iterator[None]:
    """Expect the block to raise `error`, naming `rule`, with `says` in its message."""
    with pytest.raises(error) as caught:
        yield
    assert caught.value.rule == rule
    assert says in caught.value.message


@pytest.fixture(scope="session")
def policy(default_policy: Policy) -> Policy:
    """The shipped policy, parsed."""
    return default_policy


@dataclass
class Clock:
    """A hand-driven clock: every call to `tick` moves time forward."""

    now: datetime = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def tick(self, **delta: float) -> datetime:
        """Advance by `delta` (default one minute) and return the new time."""
        self.now += timedelta(**delta) if delta else timedelta(minutes=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock starting on Monday 2025-03-03 09:00 UTC."""
    return Clock()


MakeOrganisation = Callable[..., Organisation]
OpenCase = Callable[..., ServiceRequest]


@pytest.fixture
def make_organisation(clock: Clock) -> MakeOrganisation:
    """Register Acme (admin ada, standard agreement), with any field overridden."""

    def make(**overrides: Any) -> Organisation:
        fields: dict[str, Any] = {
            "name": "Acme",
            "country": "PL",
            "timezone": "Europe/Warsaw",
            "agreement": Agreement.STANDARD,
            "admins": ["ada"],
            "phones": [REGISTERED_PHONE],
            "emails": [REGISTERED_EMAIL],
            "by": SUPERVISOR,
            "at": clock.now,
        }
        return Organisation.register(**(fields | overrides))

    return make


@pytest.fixture
def acme(make_organisation: MakeOrganisation) -> Organisation:
    """Acme on a standard agreement, bought directly."""
    return make_organisation()


@pytest.fixture
def open_case(acme: Organisation, policy: Policy, clock: Clock) -> OpenCase:
    """Open a technical request by ada online, with any argument overridden."""

    def open_(**overrides: Any) -> ServiceRequest:
        fields: dict[str, Any] = {
            "organisation": acme,
            "requester_id": "ada",
            "category": Category.TECHNICAL,
            "title": "Mail is not delivered",
            "description": "Since 08:00 no mail reaches our users.",
            "contact_phone": REGISTERED_PHONE,
            "contact_email": REGISTERED_EMAIL,
            "preferred_contact": ContactKind.EMAIL,
            "policy": policy,
            "by": ADA,
            "at": clock.tick(),
        }
        return ServiceRequest.open(**(fields | overrides))

    return open_


@pytest.fixture
def case(open_case: OpenCase) -> ServiceRequest:
    """A technical request just opened, awaiting assessment."""
    return open_case()


@pytest.fixture
def assessed(
    case: ServiceRequest, acme: Organisation, policy: Policy, clock: Clock
) -> ServiceRequest:
    """The request assessed at severity B by agent bob."""
    case.assign_severity(
        Severity.B, agreement=acme.agreement, policy=policy, by=AGENT, at=clock.tick()
    )
    return case


@pytest.fixture
def responded(assessed: ServiceRequest, policy: Policy, clock: Clock) -> ServiceRequest:
    """The assessed request with a first response."""
    assessed.respond(
        message_summary="Checking the mail flow", policy=policy, by=AGENT, at=clock.tick()
    )
    return assessed


@pytest.fixture
def resolved(responded: ServiceRequest, policy: Policy, clock: Clock) -> ServiceRequest:
    """The request resolved by agent bob."""
    responded.resolve(
        reason="fixed", resolution="Connector re-enabled", policy=policy, by=AGENT, at=clock.tick()
    )
    return responded


def record_unresponsive(case: ServiceRequest, policy: Policy, clock: Clock) -> None:
    """Ask the customer for a message trace now; record two days later they never sent it."""
    case.record_customer_unresponsive(
        requested="Message trace",
        asked_at=clock.now,
        policy=policy,
        by=AGENT,
        at=clock.tick(days=2),
    )
