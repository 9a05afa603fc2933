"""Refusals of the ServiceIncident aggregate and of openings it shows first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.errors import DomainError


class SupervisorsManageIncidents(DomainError):
    """Only supervisors declare, update and close service incidents."""

    rule = "only-supervisors-manage-incidents"


class IncidentScopeRequired(DomainError):
    """An incident names at least one affected service or category."""

    rule = "incident-names-what-it-affects"
    field = "body.services"


class IncidentSummaryRequired(DomainError):
    """An incident tells customers what is happening."""

    rule = "incident-has-a-summary"
    field = "body.summary"


class IncidentEndsAfterStart(DomainError):
    """An incident ends no earlier than it started."""

    rule = "incident-ends-after-it-starts"
    field = "body.ended_at"


class IncidentIsClosed(DomainError):
    """A closed incident is history: it is neither updated nor closed again."""

    rule = "closed-incidents-are-final"


class IncidentUnchanged(DomainError):
    """An update changes the summary or the scope."""

    rule = "incident-update-changes-something"


class IncidentAnswerAmbiguous(DomainError):
    """An opening either links an incident or says it is unrelated, not both."""

    rule = "incident-answer-is-one-choice"
    field = "body.incident_acknowledged"


class IncidentShownFirst(DomainError):
    """Incidents in force that affect a request are shown before it is filed (§1)."""

    rule = "service-incident-shown-first"

    def __init__(self, message: str, incidents: Sequence[dict[str, Any]]) -> None:
        super().__init__(message)
        self.incidents = list(incidents)

    @property
    def details(self) -> dict[str, object]:
        """The incidents to show before filing; confirming one (or none) goes on."""
        return {"incidents": self.incidents}


def notice(
    incident_id: UUID,
    summary: str,
    services: Sequence[str],
    categories: Sequence[str],
    started_at: datetime,
) -> dict[str, Any]:
    """What the shown-first refusal tells about one incident (JSON-ready)."""
    return {
        "id": str(incident_id),
        "summary": summary,
        "services": list(services),
        "categories": list(categories),
        "started_at": started_at.isoformat(),
    }
