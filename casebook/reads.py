"""Read models of the write side: a case's history and an organisation's cases."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import tuple_row

from casebook.errors import InvalidCursor
from casebook.event_types import event_type, payload
from domain.values import Actor


@dataclass(frozen=True)
class RecordedEvent:
    """One stored event as readers see it."""

    version: int
    type: str
    occurred_at: datetime
    actor: Actor | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Any) -> RecordedEvent:
        data = payload(event)
        data.pop("by", None)
        occurred_at = data.pop("at", None)
        return cls(
            version=event.originator_version,
            type=event_type(event),
            occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else event.timestamp,
            actor=getattr(event, "by", None),
            data=data,
        )


@dataclass(frozen=True)
class CaseSummary:
    """A case as listed for its organisation (a row of `casebook_case_index`)."""

    case_id: UUID
    organisation_id: UUID
    category: str
    status: str
    severity: str | None
    title: str
    opened_at: datetime
    requester_id: str | None = None  # whose data key seals it (privacy erase --subject)


@dataclass(frozen=True)
class CasePage:
    """One page of an organisation's cases, oldest first; `next_cursor` continues it."""

    items: list[CaseSummary]
    next_cursor: str | None


_PAGE = (
    "SELECT case_id, organisation_id, category, status, severity, title, opened_at"
    " FROM casebook_case_index WHERE organisation_id = %s"
    " AND (opened_at, case_id) > (%s, %s)"
    " ORDER BY opened_at, case_id LIMIT %s"
)
_BEGINNING = (datetime.fromisoformat("0001-01-01T00:00:00+00:00"), UUID(int=0))


def cases_page(
    conn: Connection[Any], organisation_id: UUID, *, limit: int, after: str | None
) -> CasePage:
    """Cases of an organisation after `after`, at most `limit` of them."""
    opened_at, case_id = decode_cursor(after) if after else _BEGINNING
    # The pool's connections return dict rows; this read wants tuples.
    with conn.cursor(row_factory=tuple_row) as cursor:
        rows = cursor.execute(_PAGE, (organisation_id, opened_at, case_id, limit + 1)).fetchall()
    items = [CaseSummary(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return CasePage(items, encode_cursor(items[-1]) if more and items else None)


def encode_cursor(last: CaseSummary) -> str:
    raw = f"{last.opened_at.isoformat()}|{last.case_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        opened_at, case_id = raw.split("|")
        return datetime.fromisoformat(opened_at), UUID(case_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out") from None
