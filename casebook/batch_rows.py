"""What a batch of commands writes besides its events, and which commands go together.

The write side (`casebook.application`) saves a batch's aggregates in one transaction
with the rows derived here: the origin of each recorded event, the case index rows for
listings, the messages to send, and each command's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from casebook import commands as c
from casebook.event_types import event_type
from casebook.handlers import Written, target_id
from casebook.incident_index import IncidentRow, row_of
from casebook.pending_notifications import PendingMessage, invitations
from casebook.reads import CaseSummary
from casebook.store import OriginRow
from casebook.writer import Pending
from domain.cases import ServiceRequest
from domain.incidents import ServiceIncident
from domain.organisations import Organisation

Item = Pending[c.Command, c.CommandContext, c.CommandResult]


@dataclass(frozen=True)
class Prepared:
    """A command that passed its rules: the aggregate to save and what it decided on."""

    item: Item
    aggregate: Written
    result: c.CommandResult
    # Versions of the other aggregates the rules consulted; the save refuses if any
    # moved on meanwhile (another process changed the organisation, say).
    reads: tuple[tuple[UUID, int], ...]
    # Changed besides it and saved with it: the organisation whose PIN an opening used.
    also: tuple[Organisation, ...] = ()


def one_per_aggregate(batch: list[Item]) -> tuple[list[Item], list[Item]]:
    """Keep the first command per aggregate and per idempotency key; defer the rest."""
    seen: set[object] = set()
    now: list[Item] = []
    later: list[Item] = []
    for item in batch:
        marks: set[tuple[object, ...]] = {("aggregate", target_id(item.command))}
        if isinstance(item.command, c.OpenRequest) and item.command.verification_id:
            marks.add(("aggregate", item.command.organisation_id))  # it may use it up
        marks -= {("aggregate", None)}
        if item.context.idempotency_key is not None:
            marks.add(("key", item.context.actor.principal_id, item.context.idempotency_key))
        if marks & seen:
            later.append(item)
        else:
            seen |= marks
            now.append(item)
    return now, later


def origin_rows(prepared: Prepared) -> list[OriginRow]:
    """The command's origin once per event it recorded (none without an origin)."""
    origin = prepared.item.context.origin
    if origin is None:
        return []
    return [
        OriginRow(event.originator_id, event.originator_version, origin)
        for aggregate in (prepared.aggregate, *prepared.also)
        for event in aggregate.pending_events
    ]


def result_of(aggregate: Written) -> c.CommandResult:
    return c.CommandResult(
        aggregate.id, aggregate.version, tuple(event_type(e) for e in aggregate.pending_events)
    )


# Events after which a case's listed fields (status, severity, title) differ.
_LISTING_EVENTS = (
    ServiceRequest.Opened,
    ServiceRequest.SeverityAssigned,
    ServiceRequest.Escalated,
    ServiceRequest.Downgraded,
    ServiceRequest.Resolved,
    ServiceRequest.Reopened,
    ServiceRequest.PersonalDataErased,  # the title reads as erased
)


def changes_listing(aggregate: Written) -> bool:
    return isinstance(aggregate, ServiceRequest) and any(
        isinstance(event, _LISTING_EVENTS) for event in aggregate.pending_events
    )


def incident_rows(ready: list[Prepared]) -> list[IncidentRow]:
    """The index row of every incident the batch changed (every incident event does)."""
    return [row_of(p.aggregate) for p in ready if isinstance(p.aggregate, ServiceIncident)]


def notification_rows(ready: list[Prepared]) -> list[PendingMessage]:
    """The messages the batch's events decided to send (survey invitations)."""
    return [
        m
        for p in ready
        if isinstance(p.aggregate, ServiceRequest)
        for m in invitations(p.aggregate)
    ]


def index_row(case: Written) -> CaseSummary:
    assert isinstance(case, ServiceRequest)
    return CaseSummary(
        case_id=case.id,
        organisation_id=case.organisation_id,
        category=str(case.category),
        status=str(case.status),
        severity=str(case.severity) if case.severity else None,
        title=case.title,
        opened_at=case.opened_at,
        requester_id=case.requester_id,
    )
