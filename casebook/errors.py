"""Refusals of the write side that are not rules of the support policy."""

from __future__ import annotations

from uuid import UUID

from domain.errors import DomainError, NotFound


class CaseNotFound(NotFound):
    """No service request has this id."""

    rule = "case-exists"

    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"no service request {case_id}")
        self.case_id = case_id


class OrganisationNotFound(NotFound):
    """No organisation has this id."""

    rule = "organisation-exists"

    def __init__(self, organisation_id: UUID) -> None:
        super().__init__(f"no organisation {organisation_id}")
        self.organisation_id = organisation_id


class IncidentNotFound(NotFound):
    """No service incident has this id."""

    rule = "incident-exists"

    def __init__(self, incident_id: UUID) -> None:
        super().__init__(f"no service incident {incident_id}")
        self.incident_id = incident_id


class VersionConflict(DomainError):
    """The client expected another version of the aggregate than the current one."""

    rule = "expected-version-matches"

    def __init__(self, aggregate_id: UUID, expected: int, current: int) -> None:
        super().__init__(
            f"{aggregate_id} is at version {current}, not {expected}: reload and retry"
        )
        self.aggregate_id = aggregate_id
        self.expected_version = expected
        self.current_version = current

    @property
    def details(self) -> dict[str, object]:
        return {"current_version": self.current_version, "expected_version": self.expected_version}


class IdempotencyKeyReused(DomainError):
    """An idempotency key came back with a different request than its first one."""

    rule = "idempotency-key-matches-request"


class InvalidCursor(DomainError):
    """A paging cursor that this service did not hand out."""

    rule = "cursor-is-valid"


class WriteUnavailable(Exception):
    """The event store could not be reached or kept refusing; nothing was written."""


class AuditQueryInvalid(DomainError):
    """An audit read's instants or versions are malformed, ambiguous or out of order."""

    rule = "audit-query-is-valid"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class CaseNotOpenYet(DomainError):
    """The instant asked for is before the case was opened: it had no state then."""

    rule = "case-opened-by-then"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class CaseVersionNotFound(NotFound):
    """The case has no such version (yet)."""

    rule = "case-version-exists"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def first_line(error: BaseException) -> str:
    """An error's first non-blank line, or its class name: enough to say why in one line,
    and short of the DETAIL lines where PostgreSQL quotes the values written."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
