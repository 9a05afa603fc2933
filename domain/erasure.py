"""Erasure of personal data (GDPR art. 17) as the domain records it.

Destroying the data key is what makes the data unreadable (`privacy`); this records
on each aggregate who erased it, when and why, so its history says so and a replay
forgets the same fields. An erasure is never refused: the only rule is that it names
the request it honours.
"""

from __future__ import annotations

from datetime import datetime

from domain.cases import ServiceRequest
from domain.errors import DomainError, require_time_order
from domain.organisations import Organisation
from domain.values import Actor

MAX_REASON = 200


class ErasureNeedsReason(DomainError):
    """An erasure must name the request it honours (without personal data)."""

    rule = "erasure-names-its-request"


def erasure_reason(reason: str) -> str:
    """The reason, trimmed; refused when empty or longer than `MAX_REASON`."""
    trimmed = reason.strip()
    if not trimmed or len(trimmed) > MAX_REASON:
        raise ErasureNeedsReason(
            f"Give the erasure's reason (1-{MAX_REASON} characters): the request it "
            "honours, such as a ticket number, never personal data."
        )
    return trimmed


def erase_personal_data(
    aggregate: ServiceRequest | Organisation,
    *,
    subject: str | None,
    reason: str,
    by: Actor,
    at: datetime,
) -> None:
    """Record that the aggregate's personal data was erased; it forgets it at once."""
    require_time_order(at, after=aggregate.modified_on)
    aggregate.trigger_event(
        aggregate.PersonalDataErased, subject=subject, reason=erasure_reason(reason), by=by, at=at
    )
