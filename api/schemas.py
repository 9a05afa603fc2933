"""Request bodies of the HTTP API, one model per command, plain and strict; and instants.

Unknown fields are refused (a typo is a 422, not a silently ignored field). Texts
refuse NUL characters, which PostgreSQL cannot store; whether a text may be blank is
the domain's rule to decide, so its refusal names that rule.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from api.instants import within_range
from domain.cases import NoteVisibility
from domain.organisations import PurchaseChannel
from domain.values import Agreement, Category, Channel, ClosureReason, ContactKind, Severity

_NO_NUL = r"^[^\x00]*$"
Line = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]
Prose = Annotated[str, StringConstraints(max_length=10_000, pattern=_NO_NUL)]
PrincipalId = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]
Contact = Annotated[str, StringConstraints(max_length=254, pattern=_NO_NUL)]
Country = Annotated[str, StringConstraints(max_length=8, pattern=_NO_NUL)]
TimeZone = Annotated[str, StringConstraints(max_length=64, pattern=_NO_NUL)]
MAX_VERSION = 2**53 - 1  # JSON-safe in every client


Instant = Annotated[AwareDatetime, AfterValidator(within_range)]
"""An instant in a body: with a UTC offset, in the range casebook computes in."""
QueryInstant = Annotated[datetime, AfterValidator(within_range)]
"""An instant in a query: in range; each route refuses a missing offset by its own rule."""


class CommandBody(BaseModel):
    """Fields every command accepts."""

    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(
        default=None,
        ge=0,
        le=MAX_VERSION,
        description="Like If-Match: refuse with 409 unless the target is at this version.",
    )


# --- organisations -----------------------------------------------------------------


class RegisterOrganisationBody(CommandBody):
    """A new customer organisation."""

    name: Line
    country: Country = Field(description="ISO 3166 country code, e.g. PL.")
    timezone: TimeZone = Field(description="IANA time zone, e.g. Europe/Warsaw.")
    agreement: Agreement = Agreement.STANDARD
    admins: list[PrincipalId] = Field(max_length=50, description="Its customer admins.")
    phones: list[Contact] = Field(default_factory=list, max_length=50)
    emails: list[Contact] = Field(default_factory=list, max_length=50)
    purchase_channel: PurchaseChannel = PurchaseChannel.DIRECT
    partner_name: Line | None = None
    partner_contact: Line | None = None


class AdminBody(CommandBody):
    """A principal to make a customer admin."""

    principal_id: PrincipalId


class ContactBody(CommandBody):
    """A phone number or e-mail address."""

    kind: ContactKind
    value: Contact


class AgreementBody(CommandBody):
    """The support agreement."""

    agreement: Agreement


class PurchaseChannelBody(CommandBody):
    """Where the subscription was bought."""

    purchase_channel: PurchaseChannel
    partner_name: Line | None = None
    partner_contact: Line | None = None


class LocaleBody(CommandBody):
    """The organisation's country and time zone."""

    country: Country
    timezone: TimeZone


class CallerVerificationBody(BaseModel):
    """A caller on a number the organisation has not registered, to verify by a code (§2)."""

    model_config = ConfigDict(extra="forbid")

    caller_phone: Contact = Field(description="The number the caller uses.")
    send_to: Contact | None = Field(
        default=None,
        description="A registered e-mail or phone to send the code to; default: the first "
        "registered e-mail, else phone.",
    )


class VerificationCodeBody(BaseModel):
    """The code the caller read back."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        pattern=r"^[0-9 ]{1,20}$", description="The digits read back (spaces are ignored)."
    )


# --- cases -------------------------------------------------------------------------


class CustomerChannel(StrEnum):
    """How the customer reached support."""

    PHONE = Channel.PHONE.value
    ONLINE = Channel.ONLINE.value


class OpenCaseBody(BaseModel):
    """A service request opened for one of the organisation's admins."""

    model_config = ConfigDict(extra="forbid")

    organisation_id: UUID
    requester_id: PrincipalId = Field(description="The customer admin asking for help.")
    channel: CustomerChannel = Field(
        description="How the customer reached support: staff open requests during a phone call."
    )
    category: Category
    title: Line
    description: Prose = ""
    contact_phone: Contact
    contact_email: Contact
    preferred_contact: ContactKind = ContactKind.EMAIL
    caller_phone: Contact | None = Field(
        default=None, description="The number the caller uses (phone requests)."
    )
    verification_id: UUID | None = Field(
        default=None, description="The PIN check of a caller on an unregistered number."
    )
    partner_contact_acknowledged: bool = False
    support_line: Line | None = Field(
        default=None,
        description="Phone requests: the support line the call came in on (an id of "
        "GET /support-lines, e.g. gb).",
    )
    service: Line | None = Field(
        default=None,
        description="The service the request is about (e.g. `Exchange Online`): incidents "
        "in force naming it are shown first, like those naming the category.",
    )
    incident_acknowledged: UUID | None = Field(
        default=None,
        description="File the request about this service incident (one shown first): the "
        "case is linked to it.",
    )
    incident_unrelated: bool = Field(
        default=False,
        description="The incidents shown first do not explain this request: file it unlinked.",
    )


class SeverityBody(CommandBody):
    """The initial severity assessment."""

    severity: Severity


class SeverityChangeBody(CommandBody):
    """A new severity and why."""

    severity: Severity
    reason: Prose


class UnresponsiveBody(CommandBody):
    """What the customer was asked for, and when."""

    requested: Prose
    asked_at: Instant = Field(description="When the customer was asked (with offset).")


class ResponseBody(CommandBody):
    """A response sent to the customer."""

    message_summary: Prose
    via: ContactKind | None = Field(
        default=None, description="phone or email; default: the customer's preferred contact."
    )


class AgentBody(CommandBody):
    """Who works the case (agents assign themselves; supervisors anyone)."""

    agent_id: PrincipalId


class NoteBody(CommandBody):
    """A note on the case."""

    text: Prose
    visibility: NoteVisibility = NoteVisibility.INTERNAL


class ResolutionBody(CommandBody):
    """Why and how the case was resolved."""

    # A plain string checked by the domain against the policy in force, so an unknown
    # code is refused by its rule (`closure-reason-is-known`, naming body.reason).
    reason: Line = Field(
        description="The closure reason: a code of the policy's closure_reasons; the "
        "out-of-scope ones (support-policy §3) are counted apart in the compliance report.",
        json_schema_extra={"enum": [r.value for r in ClosureReason]},
    )
    resolution: Prose


class ReopenBody(CommandBody):
    """Why the case is reopened."""

    reason: Prose


class SatisfactionBody(CommandBody):
    """The customer's survey answer."""

    score: int = Field(ge=1, le=5)
    comment: Prose | None = None


# --- service incidents -------------------------------------------------------------

ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_NUL)]


class DeclareIncidentBody(BaseModel):
    """A service incident: what it affects, what customers are told, when it started."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceName] = Field(
        default_factory=list, max_length=50, description="Affected services, by name."
    )
    categories: list[Category] = Field(
        default_factory=list, max_length=3, description="Affected request categories."
    )
    summary: Prose = Field(description="Customer-visible: what happens, what to expect.")
    started_at: Instant | None = Field(default=None, description="Default: now.")


class UpdateIncidentBody(CommandBody):
    """New values for an open incident; a field left out keeps its value."""

    summary: Prose | None = None
    services: list[ServiceName] | None = Field(default=None, max_length=50)
    categories: list[Category] | None = Field(default=None, max_length=3)


class CloseIncidentBody(CommandBody):
    """When the incident ended."""

    ended_at: Instant | None = Field(default=None, description="Default: now.")


class CaseIncidentBody(CommandBody):
    """The service incident a case is about."""

    incident_id: UUID
