"""Service incidents and the service health dashboard (policy §1: check it before filing)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from api import schemas as s
from api.deps import Caller, CasebookApp, GuardedRoute, IdempotencyKey
from api.incident_views import IncidentView, ServiceHealthView
from api.routes.commanding import READ_RESPONSES, Runner, command_responses, run
from api.views import CommandAccepted
from casebook import commands as c

router = APIRouter(tags=["service health"], route_class=GuardedRoute)


@router.post("/service-incidents", status_code=201, responses=command_responses(created=True))
async def declare_incident(
    body: s.DeclareIncidentBody,
    caller: Caller,
    casebook: CasebookApp,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> CommandAccepted:
    """Declare a service incident (supervisors): the services and/or categories it affects,
    the summary customers read, and when it started (default: now)."""
    command = c.DeclareIncident(
        services=tuple(body.services),
        categories=tuple(body.categories),
        summary=body.summary,
        started_at=body.started_at,
    )
    return await run(
        casebook,
        command,
        caller,
        response,
        idempotency_key=idempotency_key,
        if_match=None,
        location="/service-incidents/{id}",
    )


@router.get("/service-incidents/{incident_id}", responses=READ_RESPONSES)
def get_incident(incident_id: UUID, caller: Caller, casebook: CasebookApp) -> IncidentView:
    """One service incident, in force, scheduled or closed."""
    return IncidentView.of(casebook.get_incident(incident_id), casebook.now())


@router.patch("/service-incidents/{incident_id}", responses=command_responses())
async def update_incident(
    incident_id: UUID, body: s.UpdateIncidentBody, run_command: Runner
) -> CommandAccepted:
    """Change an open incident's summary and/or scope (supervisors); a closed one is final."""
    command = c.UpdateIncident(
        incident_id,
        summary=body.summary,
        services=tuple(body.services) if body.services is not None else None,
        categories=tuple(body.categories) if body.categories is not None else None,
    )
    return await run_command(command, body)


@router.post("/service-incidents/{incident_id}/close", responses=command_responses())
async def close_incident(
    incident_id: UUID, body: s.CloseIncidentBody, run_command: Runner
) -> CommandAccepted:
    """Close an incident (supervisors): it ended at `ended_at` (default: now)."""
    return await run_command(c.CloseIncident(incident_id, body.ended_at), body)


@router.get("/service-health", responses=READ_RESPONSES)
def service_health(caller: Caller, casebook: CasebookApp) -> ServiceHealthView:
    """The service health dashboard: incidents in force, scheduled, and closed in the last
    30 days. The same for every caller: incidents belong to no organisation."""
    at = casebook.now()
    return ServiceHealthView.of(casebook.service_health(at), at)
