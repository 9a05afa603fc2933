"""What the API answers about service incidents: one incident, and the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from casebook.incident_index import IncidentRow, ServiceHealth
from domain.incidents import ServiceIncident

Status = Literal["in_force", "scheduled", "closed"]


class IncidentView(BaseModel):
    """A service incident as customers and support see it (nothing in it is internal)."""

    id: UUID
    status: Status = Field(description="in_force, scheduled (starts later) or closed.")
    summary: str
    services: list[str]
    categories: list[str]
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def of_row(cls, row: IncidentRow, at: datetime) -> IncidentView:
        return cls(
            id=row.incident_id,
            status=_status(row.started_at, row.ended_at, at),
            summary=row.summary,
            services=row.services,
            categories=row.categories,
            started_at=row.started_at,
            ended_at=row.ended_at,
        )

    @classmethod
    def of(cls, incident: ServiceIncident, at: datetime) -> IncidentView:
        return cls(
            id=incident.id,
            status=_status(incident.started_at, incident.ended_at, at),
            summary=incident.summary,
            services=list(incident.services),
            categories=[c.value for c in incident.categories],
            started_at=incident.started_at,
            ended_at=incident.ended_at,
        )


class ServiceHealthView(BaseModel):
    """The service health dashboard: what is wrong now, what is planned, what was."""

    at: datetime
    in_force: list[IncidentView] = Field(description="Started and not closed, oldest first.")
    scheduled: list[IncidentView] = Field(description="Declared to start later.")
    history: list[IncidentView] = Field(description="Closed in the last 30 days, latest end first.")

    @classmethod
    def of(cls, health: ServiceHealth, at: datetime) -> ServiceHealthView:
        return cls(
            at=at,
            in_force=[IncidentView.of_row(r, at) for r in health.in_force],
            scheduled=[IncidentView.of_row(r, at) for r in health.scheduled],
            history=[IncidentView.of_row(r, at) for r in health.history],
        )


def _status(started_at: datetime, ended_at: datetime | None, at: datetime) -> Status:
    if ended_at is not None:
        return "closed"
    return "in_force" if started_at <= at else "scheduled"
