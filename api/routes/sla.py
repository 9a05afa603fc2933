"""SLA read routes over the tracker's projection: the agent queue, a case's clocks, compliance.

They read what the SLA consumer has applied, so a command shows here once it has passed
relay, broker and consumer (normally well under a second).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from api.compliance_views import ComplianceView
from api.deps import Caller, GuardedRoute, Reads
from api.errors import CaseNotTracked, ReportRangeInvalid
from api.instants import within_range
from api.routes.commanding import READ_RESPONSES
from api.satisfaction_views import SatisfactionReportView
from api.schemas import QueryInstant
from api.sla_views import CaseSlaView, QueueItemView, QueueView
from casebook.errors import InvalidCursor
from domain.sla import Metric
from domain.values import Category, Severity
from projections.sla import satisfaction
from projections.sla.queries import Period, QueueEntry

router = APIRouter(tags=["sla"], route_class=GuardedRoute)
_CURSOR = r"^[A-Za-z0-9_=-]*$"
DEFAULT_REPORT_DAYS = 30


@router.get("/queue", responses=READ_RESPONSES)
def agent_queue(
    caller: Caller,
    reads: Reads,
    request: Request,
    response: Response,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    category: Annotated[Category | None, Query(description="Only this category.")] = None,
    agent: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this agent's cases.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Cases per page.")] = 50,
    after: Annotated[
        str | None, Query(max_length=300, pattern=_CURSOR, description="A next_cursor.")
    ] = None,
) -> QueueView:
    """Unresolved cases, nearest SLA deadline first, with the business time remaining."""
    with reads.connection() as conn:
        entries = reads.sla.queue(
            conn,
            reads.clock(),
            severity=severity.value if severity else None,
            category=category.value if category else None,
            agent=agent,
            after=_decode(after) if after else None,
            limit=limit + 1,
        )
    items, more = entries[:limit], len(entries) > limit
    cursor = _encode(items[-1]) if more and items else None
    next_url = None
    if cursor is not None:
        query = {k: v for k, v in request.query_params.items() if k != "after"}
        next_url = f"{request.url.path}?{urlencode({**query, 'after': cursor})}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return QueueView(items=[QueueItemView.of(e) for e in items], next_cursor=cursor, next=next_url)


@router.get("/cases/{case_id}/sla", responses=READ_RESPONSES)
def get_case_sla(case_id: UUID, caller: Caller, reads: Reads) -> CaseSlaView:
    """The case's SLA clocks (state, deadline and why, time left) and their history."""
    with reads.connection() as conn:
        sla = reads.sla.case(conn, str(case_id), reads.clock())
    if sla is None:
        raise CaseNotTracked(
            f"The SLA tracker has no case {case_id}: it does not exist, or its opening "
            "has not reached the tracker yet (normally within a second)."
        )
    return CaseSlaView.of(sla)


# A report's range: [since, until), both with a UTC offset (see `report_range`).
ReportSince = Annotated[
    QueryInstant | None,
    Query(description="Start (inclusive, with offset); default 30 days ago."),
]
ReportUntil = Annotated[
    QueryInstant | None, Query(description="End (exclusive, with offset); default now.")
]


@router.get("/reports/sla-compliance", responses=READ_RESPONSES)
def sla_compliance_report(
    caller: Caller,
    reads: Reads,
    since: ReportSince = None,
    until: ReportUntil = None,
    period: Annotated[Period, Query(description="Group outcomes by day, week or month.")] = "month",
    metric: Annotated[Metric, Query(description="Which target.")] = Metric.INITIAL_RESPONSE,
) -> ComplianceView:
    """Met and breached targets, with rates, per severity, category and period."""
    start, end = report_range(since, until, reads.clock())
    with reads.connection() as conn:
        report = reads.sla.compliance(conn, since=start, until=end, period=period, metric=metric)
    return ComplianceView.of(report)


@router.get("/reports/satisfaction", responses=READ_RESPONSES)
def satisfaction_report(
    caller: Caller,
    reads: Reads,
    since: ReportSince = None,
    until: ReportUntil = None,
    period: Annotated[Period, Query(description="Group by day, week or month.")] = "month",
) -> SatisfactionReportView:
    """CSAT and response rate of the cases resolved in the range (each resolution invites
    a survey), overall and by period, category, severity and agent (§6)."""
    start, end = report_range(since, until, reads.clock())
    with reads.connection() as conn:
        report = satisfaction.satisfaction_report(conn, since=start, until=end, period=period)
    return SatisfactionReportView.of(report)


def report_range(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """A report's [since, until): UTC offsets required, 30 days to now by default."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ReportRangeInvalid(
                f"{name} needs a UTC offset, e.g. 2025-03-01T00:00:00Z", f"query.{name}"
            )
    end = until or now
    start = since or end - timedelta(days=DEFAULT_REPORT_DAYS)  # in range: no overflow
    if start >= end:
        raise ReportRangeInvalid(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()})", "query.until"
        )
    return start, end


def _encode(entry: QueueEntry) -> str:
    due = entry.due_at.isoformat() if entry.due_at else "-"
    return base64.urlsafe_b64encode(f"{due}|{entry.case_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime | None, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due, case_id = raw.split("|")
        return (None if due == "-" else _due(due)), str(UUID(case_id))
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor(f"cursor {cursor!r} is not one this service handed out") from None


def _due(text: str) -> datetime:
    """A cursor's deadline: one this service could have handed out (aware, in range)."""
    due = within_range(datetime.fromisoformat(text))
    if due.utcoffset() is None:
        raise ValueError("a cursor's deadline has a UTC offset")
    return due
