"""Response bodies of the HTTP API, built from aggregates and read models."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from casebook.commands import CommandResult
from casebook.reads import CasePage, CaseSummary, RecordedEvent
from domain.cases import ServiceRequest
from domain.organisations import Organisation
from domain.values import Actor


class CommandAccepted(BaseModel):
    """What a command recorded: the aggregate, its new version (also the ETag), the events."""

    aggregate_id: UUID
    version: int
    events: list[str] = Field(description="Event types, e.g. casebook.case.note_added.v1.")

    @classmethod
    def of(cls, result: CommandResult) -> CommandAccepted:
        return cls(
            aggregate_id=result.aggregate_id, version=result.version, events=list(result.events)
        )


class ExpectedResponseView(BaseModel):
    """The first response promised at opening and how it was estimated (docs/sla.md)."""

    at: datetime = Field(description="When the first response is expected.")
    business_seconds: int = Field(description="The expected wait, in business time.")
    method: str = Field(description="recent_median, or policy_target with no recent history.")
    basis: str = Field(description="How it was estimated, in words.")
    severity: str = Field(description="The severity whose queue and target it used.")
    calendar: str = Field(description="The calendar the business time runs on.")
    queue_ahead: int = Field(description="Cases of that category and severity still waiting.")
    sample_size: int = Field(description="First responses in the window.")
    median_seconds: float | None = Field(description="Their median, in business seconds.")
    rate_per_business_hour: float | None = Field(description="First responses per business hour.")
    window_days: int = Field(description="The days of first responses looked at.")

    @classmethod
    def of(cls, opened: dict[str, Any]) -> ExpectedResponseView | None:
        """From an opening's recorded payload; None for an opening that made no promise."""
        estimate, at = opened.get("waiting_estimate"), opened.get("expected_response_at")
        return cls(at=at, **estimate) if estimate and at else None


class CaseOpened(CommandAccepted):
    """An opened request, with the expected waiting time for its first response."""

    expected_response: ExpectedResponseView | None = Field(
        description="The promise recorded on the opening; null if none could be made."
    )

    @classmethod
    def of_opening(cls, accepted: CommandAccepted, opened: RecordedEvent) -> CaseOpened:
        expected = ExpectedResponseView.of(opened.data)
        return cls(**accepted.model_dump(), expected_response=expected)


class ActorView(BaseModel):
    """Who acted, as which role, through which channel."""

    principal_id: str
    role: str
    channel: str

    @classmethod
    def of(cls, actor: Actor) -> ActorView:
        return cls(
            principal_id=actor.principal_id, role=actor.role.value, channel=actor.channel.value
        )


class OrganisationView(BaseModel):
    """An organisation's current profile."""

    id: UUID
    version: int
    name: str
    country: str
    timezone: str
    agreement: str
    purchase_channel: str
    partner_name: str | None
    partner_contact: str | None
    admins: list[str]
    phones: list[str]
    emails: list[str]
    registered_at: datetime

    @classmethod
    def of(cls, org: Organisation) -> OrganisationView:
        return cls(
            id=org.id,
            version=org.version,
            name=org.name,
            country=org.country,
            timezone=org.timezone,
            agreement=org.agreement.value,
            purchase_channel=org.purchase_channel.value,
            partner_name=org.partner_name,
            partner_contact=org.partner_contact,
            admins=sorted(org.admins),
            phones=sorted(org.phones),
            emails=sorted(org.emails),
            registered_at=org.registered_at,
        )


class SeverityChangeView(BaseModel):
    """One entry of the severity history."""

    at: datetime
    severity: str
    reason: str


class NoteView(BaseModel):
    """A note on a case."""

    at: datetime
    by: ActorView
    visibility: str
    text: str


class SatisfactionView(BaseModel):
    """The customer's survey answer."""

    score: int
    comment: str | None
    at: datetime


class CaseView(BaseModel):
    """A service request's current state; `version` is also its ETag."""

    id: UUID
    version: int
    organisation_id: UUID
    requester_id: str
    category: str
    title: str
    description: str
    status: str
    severity: str | None
    policy_version: str
    opened_at: datetime
    opened_by: ActorView
    first_responded_at: datetime | None
    resolved_at: datetime | None
    assigned_agent: str | None
    preferred_contact: str
    severity_history: list[SeverityChangeView]
    notes: list[NoteView]
    satisfaction: SatisfactionView | None
    incident_id: UUID | None = Field(
        default=None, description="The service incident the case is linked to, if any."
    )

    @classmethod
    def of(cls, case: ServiceRequest) -> CaseView:
        satisfaction = case.satisfaction
        return cls(
            id=case.id,
            version=case.version,
            organisation_id=case.organisation_id,
            requester_id=case.requester_id,
            category=case.category.value,
            title=case.title,
            description=case.description,
            status=case.status.value,
            severity=case.severity.value if case.severity else None,
            policy_version=case.policy_version,
            opened_at=case.opened_at,
            opened_by=ActorView.of(case.opened_by),
            first_responded_at=case.first_responded_at,
            resolved_at=case.resolved_at,
            assigned_agent=case.assigned_agent,
            preferred_contact=case.preferred_contact.value,
            severity_history=[
                SeverityChangeView(at=c.at, severity=c.severity.value, reason=c.reason)
                for c in case.severity_history
            ],
            notes=[
                NoteView(at=n.at, by=ActorView.of(n.by), visibility=n.visibility.value, text=n.text)
                for n in case.notes
            ],
            satisfaction=(
                SatisfactionView(
                    score=satisfaction.score, comment=satisfaction.comment, at=satisfaction.at
                )
                if satisfaction
                else None
            ),
            incident_id=case.incident_id,
        )


class EventView(BaseModel):
    """One recorded event of a case."""

    version: int
    type: str = Field(description="Versioned event type, e.g. casebook.case.opened.v1.")
    occurred_at: datetime
    actor: ActorView | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: RecordedEvent) -> EventView:
        return cls(
            version=event.version,
            type=event.type,
            occurred_at=event.occurred_at,
            actor=ActorView.of(event.actor) if event.actor else None,
            data=event.data,
        )


class CaseHistoryView(BaseModel):
    """Every event of a case, in version order."""

    case_id: UUID
    events: list[EventView]


class CaseSummaryView(BaseModel):
    """A case as listed for its organisation."""

    case_id: UUID
    organisation_id: UUID
    category: str
    status: str
    severity: str | None
    title: str
    opened_at: datetime

    @classmethod
    def of(cls, summary: CaseSummary) -> CaseSummaryView:
        return cls(
            case_id=summary.case_id,
            organisation_id=summary.organisation_id,
            category=summary.category,
            status=summary.status,
            severity=summary.severity,
            title=summary.title,
            opened_at=summary.opened_at,
        )


class CasePageView(BaseModel):
    """One page of an organisation's cases, oldest first."""

    items: list[CaseSummaryView]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )
    next: str | None = Field(description="The next page's URL; null at the end.")

    @classmethod
    def of(cls, page: CasePage, next_url: str | None) -> CasePageView:
        return cls(
            items=[CaseSummaryView.of(item) for item in page.items],
            next_cursor=page.next_cursor,
            next=next_url,
        )


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
