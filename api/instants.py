"""Instants that callers give (API queries and bodies, CLI options): the range we accept.

Every such instant is converted to UTC, compared with stored instants, and moved by
calendar arithmetic: a deadline some business days later, a report 30 days earlier.
Python's datetime ends at years 1 and 9999, so an instant near either end overflows
somewhere downstream (a 500, a traceback). Refusing instants outside [EARLIEST, LATEST)
where they enter keeps every such computation representable, with room to spare.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
RANGE = "from 1970-01-01T00:00:00Z to 8999-12-31T23:59:59Z"


class InstantOutOfRange(ValueError):
    """An instant outside the range casebook computes in; the message says the range."""


def within_range(at: datetime) -> datetime:
    """`at` itself, refused unless EARLIEST <= at < LATEST.

    A time without a UTC offset is read as UTC here: it has to be in range too, and each
    caller refuses the missing offset by its own rule, naming its own field.
    """
    instant = at if at.utcoffset() is not None else at.replace(tzinfo=UTC)
    if not EARLIEST <= instant < LATEST:  # comparing never converts, so never overflows
        raise InstantOutOfRange(f"{at.isoformat()} is outside the instants accepted ({RANGE})")
    return at
