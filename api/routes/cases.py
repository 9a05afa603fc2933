"""Service requests: opening, severity, responses, notes, resolution and satisfaction."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from api import portal
from api import schemas as s
from api.customer_views import CustomerCaseView, CustomerTimelineView
from api.deps import AppSettings, Caller, CasebookApp, GuardedRoute, IdempotencyKey, Reads
from api.routes.commanding import READ_RESPONSES, Runner, command_responses, etag, run
from api.views import CaseHistoryView, CaseOpened, CaseView, CommandAccepted, EventView
from casebook import commands as c
from domain.cases import NoteVisibility
from domain.values import Channel

router = APIRouter(prefix="/cases", tags=["cases"], route_class=GuardedRoute)


@router.post("", status_code=201, responses=command_responses(created=True))
async def open_case(
    body: s.OpenCaseBody,
    caller: Caller,
    casebook: CasebookApp,
    response: Response,
    idempotency_key: IdempotencyKey,
    reads: Reads,
    settings: AppSettings,
) -> CaseOpened:
    """Open a service request for a customer admin (staff do so during a phone call; the
    customer portal online, for the admin it acts for); the answer says when the first
    response is expected and how that was estimated."""
    if caller.on_behalf_of is not None:
        await run_in_threadpool(portal.check_opening_body, casebook, caller.on_behalf_of, body)
    waiting = await run_in_threadpool(
        reads.waiting, body.category.value, settings.waiting_window_days
    )
    command = c.OpenRequest(
        organisation_id=body.organisation_id,
        requester_id=body.requester_id,
        category=body.category,
        title=body.title,
        description=body.description,
        contact_phone=body.contact_phone,
        contact_email=body.contact_email,
        preferred_contact=body.preferred_contact,
        caller_phone=body.caller_phone,
        verification_id=body.verification_id,
        partner_contact_acknowledged=body.partner_contact_acknowledged,
        support_line=body.support_line,
        service=body.service,
        incident_acknowledged=body.incident_acknowledged,
        incident_unrelated=body.incident_unrelated,
        waiting=waiting,
    )
    accepted = await run(
        casebook,
        command,
        caller,
        response,
        idempotency_key=idempotency_key,
        if_match=None,
        channel=Channel(body.channel.value),
        location="/cases/{id}",
    )
    # The promise the domain recorded (also on a retry answered from the first response).
    history = await run_in_threadpool(casebook.case_history, accepted.aggregate_id)
    return CaseOpened.of_opening(accepted, history[0])


@router.get("/{case_id}", responses=READ_RESPONSES)
def get_case(
    case_id: UUID, caller: Caller, casebook: CasebookApp, response: Response
) -> CaseView | CustomerCaseView:
    """The case's current state; its ETag is its version, for If-Match on commands. The
    customer portal gets the customer's view (`view: customer`)."""
    case = casebook.get_case(case_id)
    response.headers["ETag"] = etag(case.version)
    if caller.on_behalf_of is not None:
        return CustomerCaseView.of(case)
    return CaseView.of(case)


@router.get("/{case_id}/timeline", responses=READ_RESPONSES)
def get_case_timeline(case_id: UUID, caller: Caller, casebook: CasebookApp) -> CustomerTimelineView:
    """The case's history as the customer sees it: no internal notes, no agent names."""
    return CustomerTimelineView.of(case_id, casebook.case_history(case_id))


@router.get("/{case_id}/events", responses=READ_RESPONSES)
def get_case_history(case_id: UUID, caller: Caller, casebook: CasebookApp) -> CaseHistoryView:
    """Every event of the case, in version order: who did what, when, under which policy."""
    history = casebook.case_history(case_id)
    return CaseHistoryView(case_id=case_id, events=[EventView.of(e) for e in history])


@router.post("/{case_id}/severity", responses=command_responses())
async def assign_severity(
    case_id: UUID,
    body: s.SeverityBody,
    run_command: Runner,
) -> CommandAccepted:
    """Record support's initial severity assessment (once; later changes escalate or downgrade)."""
    command = c.AssignSeverity(case_id, body.severity)
    return await run_command(command, body)


@router.post("/{case_id}/escalations", responses=command_responses())
async def escalate_severity(
    case_id: UUID,
    body: s.SeverityChangeBody,
    run_command: Runner,
) -> CommandAccepted:
    """Raise the case's severity, giving a reason."""
    command = c.EscalateSeverity(case_id, body.severity, body.reason)
    return await run_command(command, body)


@router.post("/{case_id}/downgrades", responses=command_responses())
async def downgrade_severity(
    case_id: UUID,
    body: s.SeverityChangeBody,
    run_command: Runner,
) -> CommandAccepted:
    """Lower the severity, on a standing record that the customer did not respond."""
    command = c.DowngradeSeverity(case_id, body.severity, body.reason)
    return await run_command(command, body)


@router.post("/{case_id}/unresponsive", responses=command_responses())
async def record_customer_unresponsive(
    case_id: UUID,
    body: s.UnresponsiveBody,
    run_command: Runner,
) -> CommandAccepted:
    """Record that the customer left a request for information unanswered."""
    command = c.RecordCustomerUnresponsive(case_id, body.requested, body.asked_at)
    return await run_command(command, body)


@router.post("/{case_id}/responses", responses=command_responses())
async def respond_to_customer(
    case_id: UUID,
    body: s.ResponseBody,
    run_command: Runner,
) -> CommandAccepted:
    """Record a response to the customer; the first one stops the response clock."""
    command = c.Respond(case_id, body.message_summary, body.via)
    return await run_command(command, body)


@router.put("/{case_id}/agent", responses=command_responses())
async def assign_agent(
    case_id: UUID,
    body: s.AgentBody,
    run_command: Runner,
) -> CommandAccepted:
    """Assign the case: agents take it themselves, supervisors give it to anyone."""
    command = c.AssignAgent(case_id, body.agent_id)
    return await run_command(command, body)


@router.post("/{case_id}/notes", responses=command_responses())
async def add_note(
    case_id: UUID,
    body: s.NoteBody,
    run_command: Runner,
) -> CommandAccepted:
    """Add an internal or customer-visible note. A customer admin's note (through the
    portal) is customer-visible, and answers any request for information: a standing
    record that the customer did not respond no longer justifies a downgrade."""
    visibility = body.visibility
    if run_command.acts_for_customer and "visibility" not in body.model_fields_set:
        visibility = NoteVisibility.CUSTOMER
    command = c.AddNote(case_id, body.text, visibility)
    return await run_command(command, body)


@router.post("/{case_id}/resolution", responses=command_responses())
async def resolve_case(
    case_id: UUID,
    body: s.ResolutionBody,
    run_command: Runner,
) -> CommandAccepted:
    """Resolve the case (after a first response) with a closure reason of the policy."""
    command = c.Resolve(case_id, body.resolution, body.reason)
    return await run_command(command, body)


@router.post("/{case_id}/reopen", responses=command_responses())
async def reopen_case(
    case_id: UUID,
    body: s.ReopenBody,
    run_command: Runner,
) -> CommandAccepted:
    """Reopen a resolved case, giving a reason."""
    command = c.Reopen(case_id, body.reason)
    return await run_command(command, body)


@router.post("/{case_id}/satisfaction", responses=command_responses())
async def record_satisfaction(
    case_id: UUID,
    body: s.SatisfactionBody,
    run_command: Runner,
) -> CommandAccepted:
    """Record the customer's one satisfaction answer (imported from the survey)."""
    command = c.RecordSatisfaction(case_id, body.score, body.comment)
    return await run_command(command, body)


@router.put("/{case_id}/incident", responses=command_responses())
async def link_case_to_incident(
    case_id: UUID, body: s.CaseIncidentBody, run_command: Runner
) -> CommandAccepted:
    """Link the case to the service incident it is about (support staff); a later link
    replaces an earlier one. The queue and the compliance report show the link."""
    return await run_command(c.LinkCaseToIncident(case_id, body.incident_id), body)
