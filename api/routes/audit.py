"""Auditor routes (role `auditor` only): timelines, state as of any instant, verification.

A case's state as of an instant or version is rebuilt from the event store; timelines,
verification and access records read the audit log. Every one of these reads leaves
an access record like any other read of case data (see `api.access`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.audit_views import (
    AccessPageView,
    AccessView,
    AuditEntryView,
    CaseDiffView,
    CaseStateView,
    TimelineView,
    VerificationView,
)
from api.deps import Caller, CasebookApp, GuardedRoute, Reads
from api.problems import problem_responses
from api.schemas import QueryInstant
from casebook.errors import AuditQueryInvalid, InvalidCursor
from projections.audit.history import Point, aware, changes_between, state_as_of
from projections.audit.queries import AccessFilter, decode_cursor, encode_cursor

router = APIRouter(prefix="/audit", tags=["audit"], route_class=GuardedRoute)
RESPONSES = problem_responses(401, 403, 404, 422, 429, 503)
_VERSION = 2_147_483_647
Instant = Annotated[QueryInstant | None, Query(description="An instant, ISO 8601 with UTC offset.")]
Version = Annotated[int | None, Query(ge=1, le=_VERSION, description="A version of the case.")]


@router.get("/cases/{case_id}/timeline", responses=RESPONSES)
def audit_timeline(
    case_id: UUID, caller: Caller, reads: Reads, casebook: CasebookApp
) -> TimelineView:
    """The case's audit entries (its own and its SLA clocks'), in the order they happened."""
    entries = reads.audit_timeline(str(case_id))
    if not entries:
        casebook.get_case(case_id)  # 404 when there is no such case; else not audited yet
    return TimelineView(
        case_id=case_id, entries=[AuditEntryView.model_validate(e) for e in entries]
    )


@router.get("/cases/{case_id}/state", responses=RESPONSES)
def audit_case_state(
    case_id: UUID,
    caller: Caller,
    casebook: CasebookApp,
    at: Instant = None,
    version: Version = None,
) -> CaseStateView:
    """The case as it was at an instant (`at`) or a version, rebuilt from its events."""
    point = Point(at, version, "query.at", "query.version")
    return CaseStateView.of(case_id, state_as_of(casebook, case_id, point))


@router.get("/cases/{case_id}/diff", responses=RESPONSES)
def audit_case_diff(
    case_id: UUID,
    caller: Caller,
    casebook: CasebookApp,
    from_: Annotated[
        QueryInstant | None, Query(alias="from", description="Start instant (with UTC offset).")
    ] = None,
    to: Annotated[
        QueryInstant | None, Query(description="End instant (with UTC offset); default: now.")
    ] = None,
    from_version: Annotated[
        int | None, Query(ge=0, le=_VERSION, description="Start version (0: before opening).")
    ] = None,
    to_version: Annotated[
        int | None, Query(ge=0, le=_VERSION, description="End version; default: the latest.")
    ] = None,
) -> CaseDiffView:
    """Each field of the case before -> after between two instants or versions, and the
    events in between."""
    start = Point(from_, from_version, "query.from", "query.from_version")
    end = Point(to, to_version, "query.to", "query.to_version")
    return CaseDiffView.of(case_id, changes_between(casebook, case_id, start, end))


@router.get("/cases/{case_id}/verification", responses=RESPONSES)
def verify_case_audit(
    case_id: UUID, caller: Caller, reads: Reads, casebook: CasebookApp
) -> VerificationView:
    """Check the case's hash chains (case and SLA): the first broken link of each, and why;
    and that every stored event of the case and its SLA clocks has its entry."""
    result = reads.verify(str(case_id))
    if result.chains == 0:
        casebook.get_case(case_id)  # 404 when there is no such case
    return VerificationView.of(result)


@router.get("/verification", responses=RESPONSES)
async def verify_audit_log(caller: Caller, reads: Reads) -> VerificationView:
    """Check every hash chain of the log: the first broken link of each, and why; and that
    every stored event and SLA event has its entry (the first missing one per chain)."""
    return VerificationView.of(await run_in_threadpool(reads.verify, None))


@router.get("/access", responses=RESPONSES)
def list_access_records(
    caller: Caller,
    reads: Reads,
    request: Request,
    case_id: Annotated[UUID | None, Query(description="Only reads of this case.")] = None,
    principal: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="Only this reader."),
    ] = None,
    since: Annotated[
        QueryInstant | None, Query(description="From (inclusive, with offset).")
    ] = None,
    until: Annotated[QueryInstant | None, Query(description="To (exclusive, with offset).")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Records per page.")] = 100,
    after: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[A-Za-z0-9_=-]*$", description="A next_cursor."),
    ] = None,
) -> AccessPageView:
    """Who read which case data, when, through which route and why; oldest first, paged."""
    if since is not None:
        aware(since, "query.since")
    if until is not None:
        aware(until, "query.until")
    if since is not None and until is not None and since >= until:
        raise AuditQueryInvalid(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})",
            "query.until",
        )
    start = decode_cursor(after) if after else None
    if after and start is None:
        raise InvalidCursor(f"cursor {after!r} is not one this service handed out")
    where = AccessFilter(str(case_id) if case_id else None, principal, since, until)
    rows = reads.access_records(where, limit=limit + 1, after=start)
    items, more = rows[:limit], len(rows) > limit
    cursor = encode_cursor(items[-1]["access_id"]) if more else None
    next_url = None
    if cursor is not None:
        query = {k: v for k, v in request.query_params.items() if k != "after"}
        next_url = f"{request.url.path}?{urlencode({**query, 'after': cursor})}"
    return AccessPageView(
        items=[AccessView.model_validate(row) for row in items], next_cursor=cursor, next=next_url
    )
