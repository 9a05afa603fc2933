"""What the write side's application reads back from the event store: aggregates as
they are now (never from the writer's cache), a case's events, an organisation's cases,
and the service health board."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

from casebook import incident_index
from casebook.errors import CaseNotFound, IncidentNotFound, OrganisationNotFound
from casebook.event_store import EventStore
from casebook.reads import CasePage, RecordedEvent, cases_page
from domain.cases import ServiceRequest
from domain.errors import DomainError
from domain.incidents import ServiceIncident
from domain.organisations import Organisation


class StoreReads:
    """Reads for `Casebook`, over its event store (`store`) and a cache-free repository."""

    store: EventStore
    _fresh: Repository[UUID]
    _clock: Callable[[], datetime]

    def get_case(self, case_id: UUID) -> ServiceRequest:
        """The case's current state, read from the event store."""
        return self._read(case_id, ServiceRequest, CaseNotFound)  # type: ignore[no-any-return]

    def get_organisation(self, organisation_id: UUID) -> Organisation:
        """The organisation's current state, read from the event store."""
        return self._read(organisation_id, Organisation, OrganisationNotFound)  # type: ignore[no-any-return]

    def get_incident(self, incident_id: UUID) -> ServiceIncident:
        """The service incident's current state, read from the event store."""
        return self._read(incident_id, ServiceIncident, IncidentNotFound)  # type: ignore[no-any-return]

    def now(self) -> datetime:
        """The write side's clock (what commands are stamped with)."""
        return self._clock()

    def service_health(self, at: datetime) -> incident_index.ServiceHealth:
        """The incidents in force at `at`, those declared to start later, and the history."""
        with self.store.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            return incident_index.service_health(conn, at)

    def case_history(self, case_id: UUID) -> list[RecordedEvent]:
        """Every event of the case, in version order."""
        self.get_case(case_id)
        return [RecordedEvent.of(event) for event in self.store.events.get(case_id)]

    def cases_of_organisation(
        self, organisation_id: UUID, *, limit: int = 50, after: str | None = None
    ) -> CasePage:
        """The organisation's cases, oldest first, one page at a time."""
        self.get_organisation(organisation_id)
        with self.store.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            return cases_page(conn, organisation_id, limit=limit, after=after)

    def _read(
        self, aggregate_id: UUID, kind: type[Any], missing: Callable[[UUID], DomainError]
    ) -> Any:
        try:
            aggregate: object = self._fresh.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing(aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise missing(aggregate_id)
        return aggregate
