"""Refusals the HTTP layer makes itself, before any command reaches casebook.

They join the domain's hierarchy (each names a `rule`) so `api.problems` maps every
refusal, whoever made it, through one table.
"""

from __future__ import annotations

from domain.errors import DomainError, NotFound


class NotAuthenticated(DomainError):
    """The request carries no valid bearer API key."""

    rule = "bearer-api-key-required"


class RoleNotAllowed(DomainError):
    """The API key's role may not use this route."""

    rule = "role-may-use-route"


class VersionGuardsDisagree(DomainError):
    """If-Match and the body's expected_version name different versions."""

    rule = "one-expected-version"


class NotReady(Exception):
    """The database does not answer, so this process cannot serve requests."""


class CaseNotTracked(NotFound):
    """The SLA tracker has no such case (yet)."""

    rule = "case-is-tracked"


class ReportRangeInvalid(DomainError):
    """A report's time range must be ordered and carry UTC offsets."""

    rule = "report-range-is-valid"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class AccessNotRecorded(DomainError):
    """A read of case data whose access record could not be written is refused."""

    rule = "access-is-recorded"
