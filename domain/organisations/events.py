"""What can happen to an organisation: explicit, immutable, past-tense events.

Versioning: every event is at `class_version = 1`. To change one, never rename it:
bump its `class_version` and add `upcast_v1_v2(state)` on the class.

Attributes stay JSON-friendly (str, int, UUID, datetime, tuples of str, Actor), so
enum values are typed `str` here: after a round trip through the event store they come
back as plain strings, and the aggregate normalises them when it applies the event.
Every event says who did it (`by`) and when it happened on the caller's clock (`at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.organisations.erasure import forget_organisation
from domain.values import Actor


class Registered(Aggregate.Created):
    """The organisation was registered with its first admins and contacts."""

    class_version = 1
    name: str
    country: str
    timezone: str
    agreement: str  # an Agreement value
    purchase_channel: str  # a PurchaseChannel value
    partner_name: str | None
    partner_contact: str | None
    admins: tuple[str, ...]
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    by: Actor
    at: datetime


class AdminAdded(Aggregate.Event):
    """A principal became a customer admin of the organisation."""

    class_version = 1
    principal_id: str
    by: Actor
    at: datetime


class AdminRemoved(Aggregate.Event):
    """A principal stopped being a customer admin of the organisation."""

    class_version = 1
    principal_id: str
    by: Actor
    at: datetime


class ContactRegistered(Aggregate.Event):
    """A phone number or e-mail address was added to the profile."""

    class_version = 1
    kind: str  # a ContactKind value
    value: str  # normalised
    by: Actor
    at: datetime


class ContactRemoved(Aggregate.Event):
    """A phone number or e-mail address was removed from the profile."""

    class_version = 1
    kind: str
    value: str
    by: Actor
    at: datetime


class AgreementChanged(Aggregate.Event):
    """The organisation's support agreement changed."""

    class_version = 1
    agreement: str
    by: Actor
    at: datetime


class PurchaseChannelChanged(Aggregate.Event):
    """The subscription is now bought directly or through a (different) partner."""

    class_version = 1
    purchase_channel: str
    partner_name: str | None
    partner_contact: str | None
    by: Actor
    at: datetime


class LocaleChanged(Aggregate.Event):
    """The organisation's country or time zone changed."""

    class_version = 1
    country: str
    timezone: str
    by: Actor
    at: datetime


class CallerVerificationRequested(Aggregate.Event):
    """A one-time code was sent to a registered contact for an unregistered caller.

    Only a salted SHA-256 digest of the code is recorded, never the code itself.
    """

    class_version = 1
    verification_id: UUID
    caller_phone: str
    send_to_kind: str  # a ContactKind value
    send_to: str
    code_digest: str
    expires_at: datetime
    max_attempts: int
    by: Actor
    at: datetime


class CallerVerified(Aggregate.Event):
    """The caller read back the right code in time."""

    class_version = 1
    verification_id: UUID
    by: Actor
    at: datetime


class CallerVerificationFailed(Aggregate.Event):
    """The caller read back a wrong code; `attempt` counts from 1."""

    class_version = 1
    verification_id: UUID
    attempt: int
    locked: bool
    by: Actor
    at: datetime


class CallerVerificationExpired(Aggregate.Event):
    """A code was read back after it expired; the verification is closed."""

    class_version = 1
    verification_id: UUID
    by: Actor
    at: datetime


class CallerVerificationLocked(Aggregate.Event):
    """The last allowed wrong code locked the verification; a new code must be sent."""

    class_version = 1
    verification_id: UUID
    attempts: int
    by: Actor
    at: datetime


class CallerVerificationUsed(Aggregate.Event):
    """The verified caller's case was opened; the verification opens no other."""

    class_version = 1
    verification_id: UUID
    case_id: UUID
    by: Actor
    at: datetime


class PersonalDataErased(Aggregate.Event):
    """The organisation's personal data was erased on an erasure request (crypto-shredding:
    its data key was destroyed, docs/privacy.md); from here on its personal fields,
    in this event's past, read as erased.

    `subject` names the data subject whose erasure reached it; None when the whole
    organisation's personal data was erased. `reason` names the request (a ticket, a
    letter): it stays readable for the audit, so it must hold no personal data.
    """

    class_version = 1
    subject: str | None
    reason: str
    by: Actor
    at: datetime

    def apply(self, aggregate: Any) -> None:
        forget_organisation(aggregate)
