"""Messages the write side decided to send, kept with their events until delivered.

A resolution invites the customer to the satisfaction survey (`SurveyInvited`); its
message goes into `casebook_notification_outbox` in the same transaction as the event
(`casebook.store`): never an invitation recorded without its message, nor a message
without its record. The notifier part (`messaging.delivery`) delivers the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from domain.cases import ServiceRequest
from domain.cases.survey import invitation_subject, invitation_text
from domain.values import ContactKind

INSERT = (
    "INSERT INTO casebook_notification_outbox (case_id, event_version, organisation_id,"
    " kind, recipient, subject, message) SELECT * FROM unnest(%s::uuid[], %s::bigint[],"
    " %s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[])"
)


@dataclass(frozen=True)
class PendingMessage:
    """A message to send because of one event of a case (fields in `INSERT`'s order)."""

    case_id: UUID
    event_version: int  # the `SurveyInvited` it carries out
    organisation_id: UUID
    kind: str  # "email" or "phone"
    recipient: str
    subject: str
    message: str = field(repr=False)


def invitations(case: ServiceRequest) -> list[PendingMessage]:
    """The survey invitation of each `SurveyInvited` among the case's unsaved events."""
    return [
        PendingMessage(
            case.id,
            event.originator_version,
            case.organisation_id,
            str(event.to),
            case.contact_email if event.to == ContactKind.EMAIL else case.contact_phone,
            invitation_subject(case.id),
            invitation_text(case.id, case.title),
        )
        for event in case.pending_events
        if isinstance(event, ServiceRequest.SurveyInvited)
    ]
