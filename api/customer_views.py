"""What a customer admin sees of a case, through the customer portal.

Only what support shares with the customer: no internal notes, no agent names or ids,
no policy bookkeeping, no free-text reasons staff wrote for one another. Support's
actions are shown as `support`; the admins' own as their principal id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from casebook.reads import RecordedEvent
from domain.cases import NoteVisibility, ServiceRequest
from domain.values import Actor, Role

# Per event (the name in its type, casebook.case.<name>.v<n>): the payload fields the
# customer sees. An event not listed (agent assignment, ...) is not shown at all.
_SHOWN: dict[str, tuple[str, ...]] = {
    "opened": ("category", "title", "description", "preferred_contact"),
    "severity_assigned": ("severity",),
    "escalated": ("severity", "previous_severity"),
    "customer_unresponsive": ("requested", "asked_at"),
    "downgraded": ("severity", "previous_severity", "evidence_requested"),
    "responded": ("message_summary", "via"),
    "note_added": ("text",),
    "resolved": ("resolution", "reason"),
    "reopened": (),
    "survey_invited": ("to",),  # the kind of contact, as the customer chose it
    "satisfaction_recorded": ("score", "comment"),
    "linked_to_incident": ("incident_id",),
}


class CustomerNoteView(BaseModel):
    """A note the customer can see."""

    at: datetime
    by: str = Field(description="`support`, or the customer admin who wrote it.")
    text: str


class CustomerCaseView(BaseModel):
    """A service request as its organisation's admins see it; `version` is its ETag."""

    view: Literal["customer"] = "customer"
    id: UUID
    version: int
    organisation_id: UUID
    requester_id: str
    category: str
    title: str
    description: str
    status: str
    severity: str | None
    opened_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closure_reason: str | None
    preferred_contact: str
    notes: list[CustomerNoteView]
    satisfaction_score: int | None
    incident_id: UUID | None = Field(
        default=None, description="The service incident the request is about (see /service-health)."
    )

    @classmethod
    def of(cls, case: ServiceRequest) -> CustomerCaseView:
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
            opened_at=case.opened_at,
            first_responded_at=case.first_responded_at,
            resolved_at=case.resolved_at,
            closure_reason=case.closure_reason,
            preferred_contact=case.preferred_contact.value,
            notes=[
                CustomerNoteView(at=n.at, by=shown_actor(n.by), text=n.text)
                for n in case.notes
                if n.visibility is NoteVisibility.CUSTOMER
            ],
            satisfaction_score=case.satisfaction.score if case.satisfaction else None,
            incident_id=case.incident_id,
        )


class CustomerEventView(BaseModel):
    """One step of the case the customer can see."""

    version: int
    what: str = Field(description="opened, severity_assigned, responded, note_added, ...")
    at: datetime
    by: str = Field(description="`support`, `system`, or the customer admin's id.")
    details: dict[str, Any]


class CustomerTimelineView(BaseModel):
    """The case's history as its organisation's admins see it, oldest first."""

    case_id: UUID
    events: list[CustomerEventView]

    @classmethod
    def of(cls, case_id: UUID, history: list[RecordedEvent]) -> CustomerTimelineView:
        return cls(case_id=case_id, events=[e for e in map(customer_event, history) if e])


def customer_event(event: RecordedEvent) -> CustomerEventView | None:
    """The customer's view of one event; None for what support keeps to itself."""
    what = event.type.split(".")[2]
    if what not in _SHOWN:
        return None
    if what == "note_added" and event.data.get("visibility") != NoteVisibility.CUSTOMER.value:
        return None
    return CustomerEventView(
        version=event.version,
        what=what,
        at=event.occurred_at,
        by=shown_actor(event.actor) if event.actor else "system",
        details={name: event.data.get(name) for name in _SHOWN[what]},
    )


def shown_actor(actor: Actor) -> str:
    """The admins' own ids; everyone on the provider's side is `support`."""
    if actor.role is Role.CUSTOMER_ADMIN:
        return actor.principal_id
    return "system" if actor.role is Role.SYSTEM else "support"
