"""One error hierarchy for every rule the domain protects."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """A command was refused because it would break a rule.

    `rule` is a stable, kebab-case name of the protected rule: adapters map it to
    HTTP problem types and CLI messages, so never rename one.
    """

    rule: str = "domain-rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [rule: {self.rule}]"

    @property
    def details(self) -> dict[str, object]:
        """Facts about the refusal a client needs to act on it (none by default)."""
        return {}


class NotFound(DomainError):
    """A referenced entity does not exist."""

    rule = "not-found"


class NaiveTimestamp(DomainError):
    """A command's time had no time zone, so it cannot be placed on any clock."""

    rule = "timestamps-are-timezone-aware"


class OutOfOrderTimestamp(DomainError):
    """A command claims to happen before the last thing that already happened."""

    rule = "actions-in-time-order"


def require_time_order(at: datetime, *, after: datetime | None = None) -> None:
    """Refuse an `at` without a time zone, or one earlier than `after` (the last event)."""
    if at.utcoffset() is None:
        raise NaiveTimestamp(f"{at.isoformat()} has no time zone.")
    if after is not None and at < after:
        raise OutOfOrderTimestamp(
            f"{at.isoformat()} is before the last recorded action ({after.isoformat()})."
        )
