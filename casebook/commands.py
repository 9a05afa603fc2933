"""Commands of the write side: imperative, one per domain operation, plain data.

Adapters (HTTP, CLI) build these; `Casebook.execute` runs them. Each command names
the aggregate it works on, so concurrent commands on different cases can be saved
together while commands on one case stay ordered.

It stays one module because the unions at its end (`Command` and one per aggregate) are
what the writer, the handlers and the idempotency records dispatch on: every command is
listed beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.cases.state import NoteVisibility
from domain.organisations import PurchaseChannel
from domain.sla.waiting import WaitingObservation
from domain.values import Actor, Agreement, Category, ContactKind, Severity


@dataclass(frozen=True)
class Origin:
    """Where a command came from (NIST SP 800-53 AU-3 "from where"), as the API saw it.

    Stored beside the command's events and published with them; commands from the CLI,
    the demo or a bench have none.
    """

    api_key_id: str | None = None
    client_address: str | None = None
    request_id: str | None = None
    # The request's W3C trace context, so a consumer can join its work to the request.
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(frozen=True)
class CommandContext:
    """Who sends a command, from where, and the client's retry and concurrency guards."""

    actor: Actor
    idempotency_key: str | None = None
    expected_version: int | None = None
    origin: Origin | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the aggregate, its new version and the events recorded."""

    aggregate_id: UUID
    version: int
    events: tuple[str, ...]
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "aggregate_id": str(self.aggregate_id),
            "version": self.version,
            "events": list(self.events),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> CommandResult:
        return cls(UUID(data["aggregate_id"]), data["version"], tuple(data["events"]), replayed)


# --- organisations -------------------------------------------------------------


@dataclass(frozen=True)
class RegisterOrganisation:
    """Register a customer organisation with its first admins and contacts."""

    name: str
    country: str
    timezone: str
    agreement: Agreement
    admins: tuple[str, ...]
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    purchase_channel: PurchaseChannel = PurchaseChannel.DIRECT
    partner_name: str | None = None
    partner_contact: str | None = None
    organisation_id: UUID | None = None


@dataclass(frozen=True)
class AddAdmin:
    """Make a principal an admin of the organisation."""

    organisation_id: UUID
    principal_id: str


@dataclass(frozen=True)
class RemoveAdmin:
    """Remove an admin (never the last one)."""

    organisation_id: UUID
    principal_id: str


@dataclass(frozen=True)
class RegisterContact:
    """Register a phone number or e-mail address in the organisation's profile."""

    organisation_id: UUID
    kind: ContactKind
    value: str


@dataclass(frozen=True)
class RemoveContact:
    """Remove a registered phone number or e-mail address."""

    organisation_id: UUID
    kind: ContactKind
    value: str


@dataclass(frozen=True)
class ChangeAgreement:
    """Switch between the standard and the advanced online-services agreement."""

    organisation_id: UUID
    agreement: Agreement


@dataclass(frozen=True)
class ChangePurchaseChannel:
    """Record whether the subscription was bought directly or through a partner."""

    organisation_id: UUID
    purchase_channel: PurchaseChannel
    partner_name: str | None = None
    partner_contact: str | None = None


@dataclass(frozen=True)
class ChangeLocale:
    """Change the organisation's country and time zone."""

    organisation_id: UUID
    country: str
    timezone: str


@dataclass(frozen=True)
class RequestCallerVerification:
    """Record a one-time code sent for a caller on an unregistered number (§2)."""

    organisation_id: UUID
    verification_id: UUID
    caller_phone: str
    code: str = field(repr=False)  # only its salted digest is recorded
    send_to: str | None = None


@dataclass(frozen=True)
class ConfirmCallerVerification:
    """Check the code the caller read back."""

    organisation_id: UUID
    verification_id: UUID
    code: str = field(repr=False)


# --- service requests ------------------------------------------------------------


@dataclass(frozen=True)
class OpenRequest:
    """Open a service request for an admin of the organisation."""

    organisation_id: UUID
    requester_id: str
    category: Category
    title: str
    description: str
    contact_phone: str
    contact_email: str
    preferred_contact: ContactKind
    caller_phone: str | None = None
    verification_id: UUID | None = None
    partner_contact_acknowledged: bool = False
    support_line: str | None = None  # the policy's phone line the call came in on
    service: str | None = None  # the service it is about, for the incidents shown first
    incident_acknowledged: UUID | None = None  # file it about this incident (linked)
    incident_unrelated: bool = False  # the incidents shown do not explain it
    case_id: UUID | None = field(default=None)
    # The SLA tracker's observations per severity, for the promised first response: what
    # the service saw, not what was asked (compare=False: a retry is the same request).
    waiting: dict[str, WaitingObservation] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AssignSeverity:
    """Record support's initial severity assessment."""

    case_id: UUID
    severity: Severity


@dataclass(frozen=True)
class EscalateSeverity:
    """Raise the severity."""

    case_id: UUID
    severity: Severity
    reason: str


@dataclass(frozen=True)
class RecordCustomerUnresponsive:
    """Record that the customer left a request for information unanswered."""

    case_id: UUID
    requested: str
    asked_at: datetime


@dataclass(frozen=True)
class DowngradeSeverity:
    """Lower the severity on a standing record that the customer did not respond."""

    case_id: UUID
    severity: Severity
    reason: str


@dataclass(frozen=True)
class Respond:
    """Record a response to the customer; `via` defaults to their preferred contact."""

    case_id: UUID
    message_summary: str
    via: ContactKind | None = None


@dataclass(frozen=True)
class AssignAgent:
    """Assign the case to an agent."""

    case_id: UUID
    agent_id: str


@dataclass(frozen=True)
class AddNote:
    """Add an internal or customer-visible note."""

    case_id: UUID
    text: str
    visibility: NoteVisibility


@dataclass(frozen=True)
class Resolve:
    """Resolve the case with a closure reason of the policy and the free-text resolution."""

    case_id: UUID
    resolution: str
    reason: str  # a closure reason code of the policy in force (a ClosureReason value)


@dataclass(frozen=True)
class Reopen:
    """Reopen a resolved case."""

    case_id: UUID
    reason: str


@dataclass(frozen=True)
class RecordSatisfaction:
    """Record the customer's satisfaction answer."""

    case_id: UUID
    score: int
    comment: str | None = None


@dataclass(frozen=True)
class LinkCaseToIncident:
    """Link a case to the service incident it is about (support staff)."""

    case_id: UUID
    incident_id: UUID


@dataclass(frozen=True)
class EraseCaseData:
    """Record that a case's personal data was erased (its data key is already destroyed)."""

    case_id: UUID
    subject: str | None  # the data subject whose erasure reached it; None: its organisation's
    reason: str


@dataclass(frozen=True)
class EraseOrganisationData:
    """Record that an organisation's own personal data (its contacts) was erased."""

    organisation_id: UUID
    reason: str


# --- service incidents -------------------------------------------------------------


@dataclass(frozen=True)
class DeclareIncident:
    """Declare a service incident (supervisors); it starts now unless `started_at` says."""

    services: tuple[str, ...]
    categories: tuple[Category, ...]
    summary: str
    started_at: datetime | None = None
    incident_id: UUID | None = None


@dataclass(frozen=True)
class UpdateIncident:
    """Change an open incident's summary and/or scope; None keeps a value."""

    incident_id: UUID
    summary: str | None = None
    services: tuple[str, ...] | None = None
    categories: tuple[Category, ...] | None = None


@dataclass(frozen=True)
class CloseIncident:
    """Close an incident; it ended now unless `ended_at` says."""

    incident_id: UUID
    ended_at: datetime | None = None


OrganisationCommand = (
    RegisterOrganisation
    | AddAdmin
    | RemoveAdmin
    | RegisterContact
    | RemoveContact
    | ChangeAgreement
    | ChangePurchaseChannel
    | ChangeLocale
    | RequestCallerVerification
    | ConfirmCallerVerification
    | EraseOrganisationData
)
CaseCommand = (
    OpenRequest
    | AssignSeverity
    | EscalateSeverity
    | RecordCustomerUnresponsive
    | DowngradeSeverity
    | Respond
    | AssignAgent
    | AddNote
    | Resolve
    | Reopen
    | RecordSatisfaction
    | LinkCaseToIncident
    | EraseCaseData
)
IncidentCommand = DeclareIncident | UpdateIncident | CloseIncident
Command = OrganisationCommand | CaseCommand | IncidentCommand
