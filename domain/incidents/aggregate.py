"""The ServiceIncident aggregate: a service problem as the service health dashboard shows it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.clocked import ClockedAggregate
from domain.errors import require_time_order
from domain.incidents import errors, events
from domain.values import Actor, Category, Role


class ServiceIncident(ClockedAggregate):
    """An incident declared by a supervisor, updated while it lasts, then closed.

    In force from `started_at` until it is closed. Like `ServiceRequest`, a command
    method checks the rules and triggers one event; the `@event` method only sets state.
    """

    Declared = events.Declared
    Updated = events.Updated
    Closed = events.Closed

    @classmethod
    def declare(
        cls,
        *,
        services: Sequence[str],
        categories: Sequence[str],
        summary: str,
        started_at: datetime,
        by: Actor,
        at: datetime,
        incident_id: UUID | None = None,
    ) -> ServiceIncident:
        """Declare an incident affecting services and/or categories (supervisors)."""
        require_time_order(at)
        require_time_order(started_at)
        _require_supervisor(by, "declare")
        scope = _scope(services, categories, summary)
        return cls._create(
            cls.Declared,
            id=incident_id,
            timestamp=at,
            services=scope[0],
            categories=scope[1],
            summary=summary.strip(),
            started_at=started_at,
            by=by,
            at=at,
        )

    @event(Declared)
    def __init__(
        self,
        *,
        services: Sequence[str],
        categories: Sequence[str],
        summary: str,
        started_at: datetime,
        at: datetime,
    ) -> None:
        self.services = tuple(services)
        self.categories = tuple(Category(c) for c in categories)
        self.summary = summary
        self.started_at = started_at
        self.declared_at = at
        self.ended_at: datetime | None = None

    @property
    def closed(self) -> bool:
        """True once a supervisor closed it."""
        return self.ended_at is not None

    def in_force(self, at: datetime) -> bool:
        """Started by `at` and not closed."""
        return not self.closed and self.started_at <= at

    def affects(self, category: str, service: str | None) -> bool:
        """True when the incident names the category, or the service (case-insensitively)."""
        named = service is not None and service.strip().casefold() in {
            s.casefold() for s in self.services
        }
        return category in self.categories or named

    def update(
        self,
        *,
        by: Actor,
        at: datetime,
        summary: str | None = None,
        services: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
    ) -> None:
        """Change the summary and/or the scope of an incident still open (supervisors)."""
        self._require_open(by, at, "update")
        new_summary = self.summary if summary is None else summary
        scope = _scope(
            self.services if services is None else services,
            self.categories if categories is None else categories,
            new_summary,
        )
        if (new_summary.strip(), *scope) == (self.summary, self.services, self.categories):
            raise errors.IncidentUnchanged("The update gives the incident's current values.")
        self.trigger_event(
            self.Updated,
            services=scope[0],
            categories=scope[1],
            summary=new_summary.strip(),
            by=by,
            at=at,
        )

    @event(Updated)
    def _updated(self, services: Sequence[str], categories: Sequence[str], summary: str) -> None:
        self.services = tuple(services)
        self.categories = tuple(Category(c) for c in categories)
        self.summary = summary

    def close(self, *, ended_at: datetime, by: Actor, at: datetime) -> None:
        """Close the incident: it ended at `ended_at`, no earlier than it started."""
        self._require_open(by, at, "close")
        require_time_order(ended_at)
        if ended_at < self.started_at:
            raise errors.IncidentEndsAfterStart(
                f"The incident started at {self.started_at.isoformat()}; it cannot end at "
                f"{ended_at.isoformat()}."
            )
        self.trigger_event(self.Closed, ended_at=ended_at, by=by, at=at)

    @event(Closed)
    def _closed(self, ended_at: datetime) -> None:
        self.ended_at = ended_at

    def _require_open(self, by: Actor, at: datetime, action: str) -> None:
        require_time_order(at, after=self.modified_on)
        _require_supervisor(by, action)
        if self.closed:
            raise errors.IncidentIsClosed(
                f"The incident was closed (it ended at {self.ended_at}); declare a new one."
            )


def _require_supervisor(by: Actor, action: str) -> None:
    if by.role is not Role.SUPERVISOR:
        raise errors.SupervisorsManageIncidents(
            f"Only supervisors can {action} a service incident; {by.principal_id} is "
            f"{by.role.value}."
        )


def _scope(
    services: Sequence[str], categories: Sequence[str], summary: str
) -> tuple[tuple[str, ...], tuple[Category, ...]]:
    """The scope without blanks or repeats, in the order given; refused when empty."""
    named = tuple(dict.fromkeys(s.strip() for s in services if s.strip()))
    kinds = tuple(dict.fromkeys(Category(c) for c in categories))
    if not named and not kinds:
        raise errors.IncidentScopeRequired(
            "Name at least one affected service or category (technical, billing, presales)."
        )
    if not summary.strip():
        raise errors.IncidentSummaryRequired(
            "Give a summary customers will read on the service health dashboard."
        )
    return named, kinds
